"""KubeRay: CRDs once, a namespace-scoped operator per namespace, RayClusters that validate and wait."""
from __future__ import annotations

import json

import pytest

from components.kuberay_operator import operator_values
from components.ray_cluster import ray_cluster_spec
from components.ray_node import ray_resources, ray_start_args
from tests.helpers.program import run_program, stack_file_config
from tests.helpers.upstream import KUBERAY_OPERATOR_VALUES, unknown_chart_values, validate_kubernetes, validate_raycluster

CHART = "kubernetes:helm.sh/v4:Chart"
CRDS = "kubernetes:yaml/v2:ConfigGroup"
RAYCLUSTER = "kubernetes:ray.io/v1:RayCluster"

TWO_NAMESPACES = {
    "raykube:target": "eks",
    "raykube:rayClusters": [
        {"name": "a", "namespace": "team-a"},
        {"name": "b", "namespace": "team-b", "dashboardIngress": {"enabled": True, "className": "nginx", "path": "/ray"}},
        {"name": "c", "namespace": "team-b"},
    ],
}


@pytest.fixture(scope="module")
def two_namespaces():
    from tests.helpers.program import run_program

    return run_program(TWO_NAMESPACES, "eks")


def operator_charts(result) -> list:
    return [chart for chart in result.of_type(CHART) if chart.inputs["chart"] == "kuberay-operator"]


def _ancestry_dependencies(result, resource) -> set[str]:
    """Dependencies of a resource and of every ancestor: what Pulumi waits for before creating it."""
    deps: set[str] = set()
    current = resource
    while current is not None:
        deps.update(current.dependencies)
        current = next((r for r in result.resources if r.urn == current.parent), None)
    return deps


def test_crds_once_and_one_operator_per_namespace(two_namespaces):
    crds = two_namespaces.of_type(CRDS)
    assert len(crds) == 1
    assert [url.rsplit("/", 1)[1] for url in crds[0].inputs["files"]] == [
        "ray.io_rayclusters.yaml", "ray.io_rayjobs.yaml", "ray.io_rayservices.yaml", "ray.io_raycronjobs.yaml"
    ]
    assert all("/v1.7.0/" in url for url in crds[0].inputs["files"])
    operators = {chart.inputs["namespace"]: chart.inputs for chart in operator_charts(two_namespaces)}
    assert set(operators) == {"team-a", "team-b"}
    for namespace, chart in operators.items():
        assert chart["skipCrds"] is True
        assert chart["values"]["singleNamespaceInstall"] is True
        assert chart["values"]["watchNamespace"] == [namespace]
        assert chart["values"]["rbacEnable"] is True and chart["values"]["crNamespacedRbacEnable"] is True
        assert chart["version"] == "1.7.0"
    assert not [r for r in two_namespaces.resources if r.inputs.get("kind") in ("ClusterRole", "ClusterRoleBinding")]


def test_provider_uses_server_side_apply(two_namespaces):
    provider = two_namespaces.of_type("pulumi:providers:kubernetes")[0]
    assert provider.inputs["enableServerSideApply"] == "true"
    assert all(r.provider.startswith(provider.urn) for r in two_namespaces.resources if r.custom and r.type.startswith("kubernetes:") and not r.type.startswith("pulumi:"))


def test_operator_chart_values_exist_upstream(two_namespaces):
    for chart in operator_charts(two_namespaces):
        assert unknown_chart_values(chart.inputs["values"], KUBERAY_OPERATOR_VALUES) == []
    # The escape hatch passes a value through and wins over typed ones.
    values = operator_values({"namespace": "ray", "values": {"reconcileConcurrency": 4, "image": {"tag": "v1.7.0-custom"}}})
    assert values["reconcileConcurrency"] == 4 and values["image"]["tag"] == "v1.7.0-custom"
    assert values["image"]["repository"] == "quay.io/kuberay/operator"


def test_dependency_order_crds_then_operator_then_raycluster(two_namespaces):
    crd_urn = two_namespaces.of_type(CRDS)[0].urn
    charts = {chart.inputs["namespace"]: chart for chart in operator_charts(two_namespaces)}
    for chart in charts.values():
        assert crd_urn in _ancestry_dependencies(two_namespaces, chart)
    for cluster in two_namespaces.of_type(RAYCLUSTER):
        namespace = cluster.inputs["metadata"]["namespace"]
        assert charts[namespace].urn in _ancestry_dependencies(two_namespaces, cluster)


def test_rayclusters_validate_and_wait_for_ready(two_namespaces):
    clusters = two_namespaces.of_type(RAYCLUSTER)
    assert len(clusters) == 3
    for cluster in clusters:
        validate_raycluster(cluster.inputs)
        annotations = cluster.inputs["metadata"]["annotations"]
        assert annotations["pulumi.com/waitFor"] == "jsonpath={.status.state}=ready"
        assert int(annotations["pulumi.com/timeoutSeconds"]) == 900


def test_namespaces_carry_pod_security_labels(two_namespaces):
    namespaces = {r.inputs["metadata"]["name"]: r.inputs for r in two_namespaces.of_type("kubernetes:core/v1:Namespace")}
    assert set(namespaces) == {"team-a", "team-b"}
    for namespace in namespaces.values():
        validate_kubernetes(namespace, "1.33")
        assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"


def test_dashboard_ingress_routes_a_path_to_the_head_service(two_namespaces):
    ingresses = two_namespaces.of_type("kubernetes:networking.k8s.io/v1:Ingress")
    assert len(ingresses) == 1
    ingress = ingresses[0].inputs
    validate_kubernetes(ingress, "1.33")
    path = ingress["spec"]["rules"][0]["http"]["paths"][0]
    assert path["path"].startswith("/ray")
    assert path["backend"]["service"] == {"name": "b-head-svc", "port": {"number": 8265}}
    assert ingress["spec"]["ingressClassName"] == "nginx"


def test_stack_outputs_expose_each_clusters_addresses(two_namespaces):
    b = two_namespaces.outputs["rayClusters"]["team-b/b"]
    assert b["headService"] == "b-head-svc"
    assert b["jobsApi"] == "http://b-head-svc.team-b.svc.cluster.local:8265"
    assert b["client"] == "ray://b-head-svc.team-b.svc.cluster.local:10001"
    assert b["gcs"] == "b-head-svc.team-b.svc.cluster.local:6379"
    assert b["dashboardPortForward"] == "kubectl -n team-b port-forward service/b-head-svc 8265:8265"


def test_ray_pods_run_non_root(two_namespaces):
    spec = two_namespaces.of_type(RAYCLUSTER)[0].inputs["spec"]
    templates = [spec["headGroupSpec"]["template"]] + [group["template"] for group in spec["workerGroupSpecs"]]
    for template in templates:
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True
        for container in template["spec"]["containers"]:
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]


GPU_CLUSTER = {
    "namespace": "ray",
    "cluster_name": "gpu",
    "ray_version": "2.60.0",
    "image": "rayproject/ray:2.60.0-py311",
    "head": {"resources": {"requests": {"cpu": "2", "memory": "4Gi"}}, "ray_resources": {"CPU": 0}},
    "worker_groups": [
        {"name": "cpu", "autoscaling": "ray", "min_replicas": 0, "max_replicas": 5,
         "resources": {"requests": {"cpu": "2500m", "memory": "3Gi"}, "limits": {"cpu": "3", "memory": "3Gi"}},
         "ray_resources": {"spot": 1}, "env": {"MODE": "batch"}, "node_selector": {"pool": "cpu"},
         "pod_template": {"metadata": {"annotations": {"team": "ml"}}}},
        {"name": "gpu", "autoscaling": "fixed", "replicas": 2,
         "resources": {"requests": {"cpu": "4", "memory": "8Gi"}, "limits": {"cpu": "4", "memory": "8Gi", "nvidia.com/gpu": "2"}},
         "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]},
    ],
    "injection": {"secret_volumes": [{"secret_name": "aws", "mount_path": "/etc/aws"}], "env": {"AWS_CONFIG_FILE": "/etc/aws/config"}},
}


def test_raycluster_spec_derives_ray_resources_and_passes_pod_fields():
    spec = ray_cluster_spec(GPU_CLUSTER)
    validate_raycluster({"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "gpu"}, "spec": spec})
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"
    assert head["rayStartParams"]["memory"] == str(4 * 2**30)
    cpu, gpu = spec["workerGroupSpecs"]
    assert cpu["rayStartParams"]["num-cpus"] == "2"  # 2500m rounds down
    assert json.loads(cpu["rayStartParams"]["resources"][1:-1].replace("\\", "")) == {"spot": 1}
    assert gpu["rayStartParams"]["num-gpus"] == "2"
    assert (gpu["replicas"], gpu["minReplicas"], gpu["maxReplicas"]) == (2, 2, 2)
    assert (cpu["minReplicas"], cpu["maxReplicas"]) == (0, 5)
    assert spec["enableInTreeAutoscaling"] is True and spec["autoscalerOptions"]["version"] == "v2"
    pod = cpu["template"]
    assert pod["metadata"]["annotations"] == {"team": "ml"}
    assert pod["spec"]["nodeSelector"] == {"pool": "cpu"}
    assert {"name": "MODE", "value": "batch"} in pod["spec"]["containers"][0]["env"]
    # Secret injection: the same read-only volume and plain env on every Ray container.
    for template in (head["template"], pod, gpu["template"]):
        container = template["spec"]["containers"][0]
        assert "envFrom" not in container
        assert {"name": "AWS_CONFIG_FILE", "value": "/etc/aws/config"} in container["env"]
        assert {"name": "secret-aws", "mountPath": "/etc/aws", "readOnly": True} in container["volumeMounts"]
        assert {"name": "secret-aws", "secret": {"secretName": "aws", "defaultMode": 0o440}} in template["spec"]["volumes"]
        # The image is read-only; Ray writes to its /tmp emptyDir (and KubeRay's /dev/shm).
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
        assert {"name": "tmp", "emptyDir": {}} in template["spec"]["volumes"]
    # Only the head whose autoscaler sidecar calls the Kubernetes API gets a ServiceAccount token.
    assert head["template"]["spec"]["automountServiceAccountToken"] is True
    assert head["template"]["metadata"]["labels"]["raykube.io/kubernetes-api-client"] == "true"
    assert pod["spec"]["automountServiceAccountToken"] is False and gpu["template"]["spec"]["automountServiceAccountToken"] is False
    assert {"name": "tmp", "mountPath": "/tmp"} in spec["autoscalerOptions"]["volumeMounts"]
    assert spec["autoscalerOptions"]["securityContext"]["readOnlyRootFilesystem"] is True


def test_fixed_only_cluster_has_no_autoscaler():
    spec = ray_cluster_spec({**GPU_CLUSTER, "worker_groups": [GPU_CLUSTER["worker_groups"][1]]})
    assert "enableInTreeAutoscaling" not in spec
    # Nothing in this cluster calls the Kubernetes API: no pod gets a token.
    head = spec["headGroupSpec"]["template"]
    assert head["spec"]["automountServiceAccountToken"] is False
    assert "raykube.io/kubernetes-api-client" not in head.get("metadata", {}).get("labels", {})


# --- a real Ray cluster: the resources Ray reports are the ones computed -----

from tests.helpers.ray_sandbox import HEAD_GROUP
WORKER_GROUP = {
    "name": "cpu",
    "resources": {"requests": {"cpu": "2500m", "memory": "1536Mi"}, "limits": {"cpu": "3", "memory": "1536Mi"}},
    "ray_resources": {"accelerator_x": 2, "GPU": 1},  # GPUs faked: the sandbox has none
}


def test_real_ray_nodes_report_the_computed_resources(ray_head):
    worker_params = ray_cluster_spec({**GPU_CLUSTER, "head": HEAD_GROUP, "worker_groups": [WORKER_GROUP]})["workerGroupSpecs"][0]["rayStartParams"]
    expected_worker = ray_resources(WORKER_GROUP["resources"], WORKER_GROUP["ray_resources"])
    assert expected_worker == {"CPU": 2, "GPU": 1, "memory": 1536 * 2**20, "accelerator_x": 2}
    from tests.helpers.ray_sandbox import OBJECT_STORE_BYTES, RAY

    proc = ray_head.spawn(
        [RAY, "start", f"--address={ray_head.gcs_address}", "--node-ip-address=127.0.0.9",
         f"--object-store-memory={OBJECT_STORE_BYTES}", "--block", *ray_start_args(worker_params)],
        "kuberay-worker",
    )
    try:
        nodes = {node["NodeManagerAddress"]: node["Resources"] for node in ray_head.wait_for_nodes(2)}
        assert "127.0.0.9" in nodes, ray_head.log("kuberay-worker")
        head, worker = nodes[ray_head.head_ip], nodes["127.0.0.9"]
        assert head.get("CPU", 0) == 0
        assert head["memory"] == 2**30
        assert worker["CPU"] == 2 and worker["GPU"] == 1 and worker["accelerator_x"] == 2
        assert worker["memory"] == 1536 * 2**20
    finally:
        ray_head.signal(proc, 15)
        ray_head.wait(proc, timeout=120)


def test_the_operator_charts_feature_gates_are_the_charts_own_with_raykubes_laid_over():
    """Helm replaces a list value whole: raykube sends the chart's featureGates list, so it must be the chart's."""
    from components.kuberay_operator import CHART_FEATURE_GATES, EMBEDDED_GCS_STORAGE_GATE, feature_gate_values
    from tests.helpers.upstream import load_upstream

    chart = load_upstream(KUBERAY_OPERATOR_VALUES)["featureGates"]
    assert [(gate["name"], gate["enabled"]) for gate in chart] == list(CHART_FEATURE_GATES)
    laid_over = feature_gate_values({EMBEDDED_GCS_STORAGE_GATE: True, "RayCronJob": True})
    assert laid_over[: len(chart)] == [{**gate, "enabled": True} if gate["name"] == "RayCronJob" else gate for gate in chart]
    assert laid_over[len(chart):] == [{"name": EMBEDDED_GCS_STORAGE_GATE, "enabled": True}]


def test_only_namespaces_with_a_rocksdb_cluster_get_the_embedded_storage_gate():
    config = stack_file_config("gke")
    config["raykube:rayClusters"][0]["gcsFaultTolerance"] = {"backend": "rocksdb", "storage": {"size": "10Gi"}}
    result = run_program(config, "gke")
    gates = {chart.inputs["namespace"]: {g["name"]: g["enabled"] for g in chart.inputs["values"].get("featureGates", [])}
             for chart in result.of_type("kubernetes:helm.sh/v4:Chart") if chart.inputs.get("chart") == "kuberay-operator"}
    assert gates["ray-training"]["GCSFaultToleranceEmbeddedStorage"] is True
    assert gates["ray-serving"] == {}  # the chart's own defaults
