"""raykube owns only what it creates: no Ray namespace in a system or shared namespace; an
existing namespace only when adoptNamespaces names it, and then it is neither created,
labelled nor deleted by raykube, and its policies leave the other workloads' traffic alone."""
from __future__ import annotations

import copy

import pytest

from raykube.settings import SettingsError, parse_settings
from tests.helpers.network_policy_model import Cluster, Endpoint
from tests.helpers.program import run_program, stack_file_config
from tests.helpers.ray_flows import DNS, INTERNET, OPERATOR_LABELS, OUTSIDER, blocked_flows, outsider_reaches, pods_of
from tests.helpers.ray_ports import head_service_ports

SOURCE = "stacks/Pulumi.test.yaml"
NAMESPACE = "kubernetes:core/v1:Namespace"
SUBMITTER = {"app.kubernetes.io/created-by": "kuberay-operator", "batch.kubernetes.io/job-name": "wine-shap"}


def in_namespace(namespace: str, **more) -> dict:
    return {"rayClusters": [{"name": "rc", "namespace": namespace}], **more}


# (the stack config, why the namespace is not Ray's to take)
SHARED = [
    pytest.param(in_namespace("default"), "system or shared", id="default"),
    pytest.param(in_namespace("kube-public"), "reserved for the cluster's system components", id="kube-*"),
    pytest.param(in_namespace("app-routing-system"), "system or shared", id="AKS app routing's controller"),
    pytest.param(in_namespace("gke-managed-system"), "reserved for the cluster's system components", id="GKE managed"),
    pytest.param(in_namespace("raykube-credentials-prod"), "credentials renewers", id="any stack's default renewer namespace"),
    pytest.param(in_namespace("traefik", networkPolicies={"ingressControllerNamespace": "traefik"}), "ingressControllerNamespace",
                 id="the Ingress controller's namespace"),
    pytest.param(in_namespace("dns", networkPolicies={"dns": [{"namespace": "dns", "podLabels": {"app": "dns"}}]}), "networkPolicies.dns",
                 id="the DNS namespace"),
    pytest.param(in_namespace("monitoring", observability={"mode": "podMonitors"}), "Ray namespace", id="the observability namespace"),
]


@pytest.mark.parametrize("config, why", SHARED)
def test_a_system_or_shared_namespace_is_refused_as_a_ray_namespace(config, why):
    with pytest.raises(SettingsError) as caught:
        parse_settings(config, SOURCE)
    key = "raykube:observability.namespace" if "observability" in config else "raykube:rayClusters[0].namespace"
    assert caught.value.keys == [key], caught.value.problems
    assert why in str(caught.value) and SOURCE in str(caught.value)


def test_adopting_names_a_ray_namespace():
    with pytest.raises(SettingsError) as caught:
        parse_settings({**in_namespace("team-a"), "adoptNamespaces": ["team-b"]}, SOURCE)
    assert caught.value.keys == ["raykube:adoptNamespaces[0]"]
    assert "team-a" in str(caught.value)  # the Ray namespaces it could have meant


def adopted_stack() -> dict:
    """The gke stack with ray-serving adopted (it exists, other workloads live there) and ray-training raykube's own."""
    config = copy.deepcopy(stack_file_config("gke"))
    config["raykube:adoptNamespaces"] = ["ray-serving"]
    return config


def test_an_adopted_namespace_is_neither_created_nor_labelled_and_the_others_still_are():
    run = run_program(adopted_stack(), "gke")
    namespaces = {r.inputs["metadata"]["name"]: r.inputs["metadata"]["labels"] for r in run.of_type(NAMESPACE)}
    # Not created: not labelled, and not deleted by a destroy.
    assert "ray-serving" not in namespaces
    assert namespaces["ray-training"]["pod-security.kubernetes.io/enforce"] == "baseline"
    # Its Ray cluster and operator are still there.
    assert sorted(r.inputs["metadata"]["name"] for r in run.of_type("kubernetes:ray.io/v1:RayCluster")) == ["serving", "training"]
    assert sorted(r.name for r in run.of_type("raykube:index:KubeRayOperator")) == ["kuberay-operator-ray-serving", "kuberay-operator-ray-training"]
    assert run.outputs["namespaces"] == ["ray-training", "ray-serving"]


def test_the_provider_never_takes_over_an_object_that_exists():
    run = run_program(stack_file_config("gke"), "gke")
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["upsertExistingObjects"] == "false"


def test_in_an_adopted_namespace_the_policies_select_raykubes_pods_alone():
    run = run_program(adopted_stack(), "gke")
    objects = [copy.deepcopy(r.inputs) for r in run.kubernetes_objects()]
    model = Cluster(objects, ["kube-system", OUTSIDER.namespace])
    jobs_api, gcs = head_service_ports()["Jobs API"], head_service_ports()["GCS"]
    for namespace, owned in (("ray-serving", False), ("ray-training", True)):
        pods = pods_of(objects, namespace)
        operator = Endpoint("kuberay-operator", namespace, OPERATOR_LABELS)
        submitter = Endpoint("rayjob-submitter", namespace, SUBMITTER)
        # Ray works the same in both: every flow, the operator's calls, nobody from outside.
        assert blocked_flows(model, pods["head"], pods["worker"], [submitter]) == [], namespace
        assert outsider_reaches(model, pods["head"]) == []
        assert all(model.connects(operator, head, jobs_api) for head in pods["head"])
        assert model.connects(operator, DNS, 53, "UDP")
        # Another workload of the namespace: closed in raykube's own namespace; in an adopted one
        # its traffic is as it was, and it still cannot run code on a head.
        web = Endpoint("web", namespace, {"app": "web"})
        assert model.connects(OUTSIDER, web, 8080) is not owned
        assert model.connects(web, INTERNET, 443) is not owned
        assert model.connects(web, DNS, 53, "UDP")
        for head in pods["head"]:
            assert not model.connects(web, head, gcs)
            assert model.connects(web, head, jobs_api) is owned
