"""NetworkPolicies of the Ray namespaces, judged as data: every flow Ray documents for the
pinned version is allowed between a namespace's Ray pods, and nothing else gets in."""
from __future__ import annotations

import copy

import pytest

from tests.helpers.network_policy_model import Cluster, Endpoint
from tests.helpers.program import STACKS, run_program, stack_file_config, with_cluster
from tests.helpers.ray_flows import DNS, INTERNET, OPERATOR_LABELS, OUTSIDER, blocked_flows, outsider_reaches, pods_of
from tests.helpers.ray_ports import head_service_ports
from raykube.settings import SettingsError, parse_settings

NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
API_SERVER = Endpoint("kube-apiserver", None, {}, "192.168.1.10")
SUBMITTER = {"app.kubernetes.io/created-by": "kuberay-operator", "batch.kubernetes.io/job-name": "wine-shap"}


def objects(run) -> list[dict]:
    return [copy.deepcopy(resource.inputs) for resource in run.kubernetes_objects()]


def model_of(run, *extra_namespaces: str) -> Cluster:
    return Cluster(objects(run), ["kube-system", OUTSIDER.namespace, *extra_namespaces])


def namespaces_of(run) -> list[str]:
    return sorted({obj["metadata"]["namespace"] for obj in objects(run) if obj["kind"] in ("RayCluster", "RayJob")})


@pytest.mark.parametrize("stack", STACKS)
def test_every_flow_ray_documents_is_allowed_and_other_namespaces_stay_out(stack_runs, stack):
    run = stack_runs[stack]
    model = model_of(run)
    for namespace in namespaces_of(run):
        pods = pods_of(objects(run), namespace)
        assert pods["head"] and pods["worker"], namespace
        client = Endpoint("rayjob-submitter", namespace, SUBMITTER)
        assert blocked_flows(model, pods["head"], pods["worker"], [client]) == []
        assert outsider_reaches(model, pods["head"]) == []
        for pod in [*pods["head"], *pods["worker"]]:
            for port in (6379, 52365, 15000):  # GCS, the dashboard agent, a worker port: nothing from elsewhere
                assert not model.connects(OUTSIDER, pod, port), (pod.name, port)
            # Every pod resolves names; none talks to another namespace's pods.
            assert model.connects(pod, DNS, 53, "UDP") and model.connects(pod, DNS, 53, "TCP")
            assert not model.connects(pod, OUTSIDER, 8080)
            # Only a head with the autoscaler calls the Kubernetes API (the others have no
            # token either). Where jobs get HTTPS out (S3), port 443 anywhere is open anyway.
            calls_api = pod in pods["autoscaled-head"]
            assert model.connects(pod, API_SERVER, 6443) is calls_api, pod.name
            assert model.connects(pod, API_SERVER, 443) is (calls_api or model.connects(pod, INTERNET, 443)), pod.name


@pytest.mark.parametrize("stack", STACKS)
def test_the_operator_reaches_the_api_and_the_jobs_api_and_nothing_reaches_it(stack_runs, stack):
    run = stack_runs[stack]
    model = model_of(run)
    for namespace in namespaces_of(run):
        operator = Endpoint("kuberay-operator", namespace, OPERATOR_LABELS)
        heads = pods_of(objects(run), namespace)["head"]
        assert model.connects(operator, API_SERVER, 6443) and model.connects(operator, API_SERVER, 443)
        assert all(model.connects(operator, head, head_service_ports()["Jobs API"]) for head in heads)
        assert not model.connects(OUTSIDER, operator, 8080)  # no metrics scraper named: nobody
        for worker in pods_of(objects(run), namespace)["worker"]:
            assert not model.connects(operator, worker, head_service_ports()["GCS"])  # it only needs the heads' Jobs API


def test_https_leaves_ray_pods_only_where_jobs_need_it(stack_runs):
    # eks: awsAccess (S3, STS) and a RayJob that pip-installs; gke: neither.
    for stack, expected in (("eks", True), ("gke", False)):
        run = stack_runs[stack]
        model = model_of(run)
        for namespace in namespaces_of(run):
            pods = pods_of(objects(run), namespace)
            # (A head with the autoscaler reaches the managed API server, which is at a cloud address on 443.)
            for pod in [pod for pod in [*pods["head"], *pods["worker"]] if pod not in pods["autoscaled-head"]]:
                assert model.connects(pod, INTERNET, 443) is expected, (stack, pod.name)
                assert not model.connects(pod, INTERNET, 80)


def test_the_ingress_controller_reaches_the_dashboard_only_when_an_ingress_is_on():
    controller = Endpoint("ingress-nginx-controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
    for enabled in (False, True):
        config = with_cluster("gke", dashboardIngress={"enabled": enabled})
        run = run_program(config, "gke")
        model = model_of(run, "ingress-nginx")
        first = config["raykube:rayClusters"][0]
        (head,) = [pod for pod in pods_of(objects(run), first.get("namespace", "ray"))["head"] if pod.labels["ray.io/cluster"] == first["name"]]
        assert model.connects(controller, head, head_service_ports()["Jobs API"]) is enabled
        assert not model.connects(controller, head, head_service_ports()["GCS"])


def test_aks_app_routing_reaches_its_dashboard_from_its_own_namespace(stack_runs):
    """The aks stack's Ingress class is AKS's application routing, whose controller runs in app-routing-system."""
    run = stack_runs["aks"]
    model = model_of(run, "app-routing-system", "ingress-nginx")
    (head, *_) = pods_of(objects(run), "ray")["head"]
    jobs_api = head_service_ports()["Jobs API"]
    assert model.connects(Endpoint("nginx", "app-routing-system", {"app": "nginx"}), head, jobs_api)
    assert not model.connects(Endpoint("nginx", "ingress-nginx", {"app": "nginx"}), head, jobs_api)


def test_head_access_and_metrics_come_from_the_sources_the_settings_list():
    config = copy.deepcopy(stack_file_config("eks"))
    config["raykube:networkPolicies"] = {
        "headAccessFrom": [{"namespace": "notebooks", "podLabels": {"team": "ml"}}, {"cidr": "10.20.0.0/16"}],
        "metricsFrom": [{"namespace": "monitoring", "podLabels": {"app.kubernetes.io/name": "prometheus"}}],
    }
    run = run_program(config, "eks")
    model = model_of(run, "notebooks", "monitoring")
    pods = pods_of(objects(run), "ray")
    (head, *_) = pods["head"]
    jobs_api, gcs = head_service_ports()["Jobs API"], head_service_ports()["GCS"]
    assert model.connects(Endpoint("nb", "notebooks", {"team": "ml"}), head, jobs_api)
    assert not model.connects(Endpoint("nb", "notebooks", {"team": "web"}), head, jobs_api)
    assert model.connects(Endpoint("vpn", None, {}, "10.20.3.4"), head, jobs_api)
    assert not model.connects(Endpoint("vpn", None, {}, "10.20.3.4"), head, gcs)
    # The namespace itself is no longer listed: its own pods (not Ray's) lose the Jobs API.
    assert not model.connects(Endpoint("submitter", "ray", SUBMITTER), head, jobs_api)
    assert blocked_flows(model, pods["head"], pods["worker"], []) == []
    prometheus = Endpoint("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"})
    for pod in [*pods["head"], *pods["worker"]]:
        assert model.connects(prometheus, pod, 8080) and not model.connects(prometheus, pod, gcs)
    assert model.connects(prometheus, head, 44217) and model.connects(prometheus, head, 44227)
    assert model.connects(prometheus, Endpoint("kuberay-operator", "ray", OPERATOR_LABELS), 8080)


def test_the_local_api_server_is_the_kubeadm_address_and_the_kubernetes_service():
    config = copy.deepcopy(stack_file_config("local"))
    config["raykube:kubeadm"]["advertiseAddress"] = "192.168.1.10"
    run = run_program(config, "local")
    (api,) = [r.inputs for r in run.of_type(NETWORK_POLICY) if r.inputs["metadata"]["name"] == "raykube-kubernetes-api"]
    blocks = [peer["ipBlock"]["cidr"] for rule in api["spec"]["egress"] for peer in rule["to"]]
    # 10.96.0.1: the first address of the stack's serviceCidr (10.96.0.0/12), the `kubernetes` Service.
    assert blocks == ["192.168.1.10/32", "10.96.0.1/32"]
    model = model_of(run)
    operator = Endpoint("kuberay-operator", "ray", OPERATOR_LABELS)
    assert model.connects(operator, Endpoint("apiserver", None, {}, "192.168.1.10"), 6443)
    assert not model.connects(operator, Endpoint("elsewhere", None, {}, "192.168.1.11"), 6443)


def test_flannel_enforces_nothing_so_the_local_stack_says_so_or_installs_an_enforcer(stack_runs):
    assert any("Flannel does not enforce NetworkPolicies" in warning for warning in stack_runs["local"].warnings)
    assert not any("NetworkPolic" in warning for stack in ("eks", "aks", "gke") for warning in stack_runs[stack].warnings)
    config = copy.deepcopy(stack_file_config("local"))
    config["raykube:networkPolicies"] = {"enforcer": "kube-network-policies"}
    run = run_program(config, "local")
    assert not any("NetworkPolic" in warning for warning in run.warnings)
    (manifests,) = [r for r in run.of_type("kubernetes:yaml/v2:ConfigFile")]
    assert manifests.inputs["file"] == "https://raw.githubusercontent.com/kubernetes-sigs/kube-network-policies/v1.1.1/install.yaml"
    # The enforcer is in place before any Ray pod: the operators wait for it.
    operator = [r for r in run.resources if r.type == "raykube:index:KubeRayOperator"][0]
    assert manifests.urn in operator.dependencies


def test_policies_can_be_turned_off():
    config = copy.deepcopy(stack_file_config("eks"))
    config["raykube:networkPolicies"] = {"enabled": False}
    assert run_program(config, "eks").of_type(NETWORK_POLICY) == []


@pytest.mark.parametrize("policies,key", [
    ({"enforcer": "kube-network-policies"}, "networkPolicies.enforcer"),
    ({"headAccessFrom": [{"namespace": "web", "cidr": "10.0.0.0/8"}]}, "networkPolicies.headAccessFrom[0]"),
    ({"metricsFrom": [{"cidr": "10.0.0.0/33"}]}, "networkPolicies.metricsFrom[0].cidr"),
    ({"apiServerCidrs": []}, "networkPolicies.apiServerCidrs"),
    ({"apiServerPorts": [0]}, "networkPolicies.apiServerPorts"),
    ({"ingressControllerNamespace": "Ingress_Nginx"}, "networkPolicies.ingressControllerNamespace"),
    ({"denyAll": True}, "networkPolicies.denyAll"),
])
def test_a_wrong_network_policy_setting_is_one_error_naming_it(policies, key):
    config = {"target": "eks", "networkPolicies": policies}
    with pytest.raises(SettingsError) as error:
        parse_settings(config, "stacks/Pulumi.eks.yaml")
    assert error.value.keys == [f"raykube:{key}"], error.value.problems
    assert "stacks/Pulumi.eks.yaml" in str(error.value)
