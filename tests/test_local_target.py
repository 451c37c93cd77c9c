"""Local kubeadm target: kubeadm config, Flannel, metrics-server, and the HPA-scaled worker pool."""
from __future__ import annotations

import time

import pytest
import yaml

from components.kubeadm_config import kubeadm_api_version, render_kubeadm_config
from components.ray_worker_pool import worker_pool_deployment
from tests.helpers.program import stack_file_config
from tests.helpers.upstream import (
    FLANNEL_VALUES,
    METRICS_SERVER_VALUES,
    unknown_chart_values,
    validate_kubernetes,
)

CHART = "kubernetes:helm.sh/v4:Chart"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def local(overrides: dict) -> dict:
    """The local stack file's config with some keys replaced."""
    return {**stack_file_config("local"), **overrides}


def charts(result) -> dict[str, dict]:
    return {chart.inputs["chart"]: chart.inputs for chart in result.of_type(CHART)}


def kubeadm_docs(result) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(result.outputs["kubeadmConfig"]) if doc]


@pytest.mark.parametrize("version, api, shape", [("1.30", "kubeadm.k8s.io/v1beta3", dict), ("1.33", "kubeadm.k8s.io/v1beta4", list)])
def test_kubeadm_config_follows_the_kubernetes_version(run, version, api, shape):
    result = run(local({"raykube:kubernetesVersion": version}), "local")
    docs = kubeadm_docs(result)
    assert [(doc["apiVersion"], doc["kind"]) for doc in docs] == [
        (api, "InitConfiguration"), (api, "ClusterConfiguration"), ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration")
    ]
    cluster = docs[1]
    extra = cluster["controllerManager"]["extraArgs"]
    assert isinstance(extra, shape)
    flags = {item["name"]: item["value"] for item in extra} if shape is list else extra
    assert flags == {"horizontal-pod-autoscaler-downscale-stabilization": "15s", "horizontal-pod-autoscaler-sync-period": "15s"}
    assert cluster["kubernetesVersion"] == f"stable-{version}"
    assert docs[2]["cgroupDriver"] == "systemd"
    assert cluster["networking"]["podSubnet"] == charts(result)["flannel"]["values"]["podCidr"]


def test_one_cidr_setting_feeds_kubeadm_and_flannel(run):
    result = run(local({"raykube:network": {"podCidr": "10.32.0.0/16"}}), "local")
    assert kubeadm_docs(result)[1]["networking"]["podSubnet"] == "10.32.0.0/16"
    assert charts(result)["flannel"]["values"]["podCidr"] == "10.32.0.0/16"


def test_one_scale_down_setting_feeds_kubeadm_and_every_hpa(run):
    result = run(local({"raykube:autoscaling": {"scaleDownStabilizationSeconds": 45}}), "local")
    flags = {item["name"]: item["value"] for item in kubeadm_docs(result)[1]["controllerManager"]["extraArgs"]}
    assert flags["horizontal-pod-autoscaler-downscale-stabilization"] == "45s"
    hpas = result.of_type(HPA)
    assert hpas and all(hpa.inputs["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 45 for hpa in hpas)


def test_kubeadm_rejects_versions_it_cannot_write():
    assert kubeadm_api_version("1.31.2") == "kubeadm.k8s.io/v1beta4"
    with pytest.raises(ValueError, match="1.21"):
        render_kubeadm_config({"kubernetes_version": "1.21"})


def test_kubeadm_file_is_written_by_pulumi_up(stack_runs):
    result = stack_runs["local"]
    files = [r for r in result.of_type("pulumi-python:dynamic:Resource") if r.name == "kubeadm-file"]
    assert len(files) == 1
    assert files[0].inputs["path"] == "kubeadm-config.yaml"
    assert files[0].inputs["content"] == result.outputs["kubeadmConfig"]


def test_flannel_namespace_is_privileged_and_chart_values_exist(stack_runs):
    result = stack_runs["local"]
    namespace = next(r.inputs for r in result.of_type("kubernetes:core/v1:Namespace") if r.inputs["metadata"]["name"] == "kube-flannel")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    flannel = charts(result)["flannel"]
    assert (flannel["namespace"], flannel["version"], flannel["repositoryOpts"]["repo"]) == (
        "kube-flannel", "v0.28.9", "https://flannel-io.github.io/flannel/"
    )
    assert flannel["values"]["flannel"]["backend"] == "vxlan"
    assert unknown_chart_values(flannel["values"], FLANNEL_VALUES) == []


def test_metrics_server_resolution_and_insecure_tls_only_where_needed(stack_runs, run):
    local_chart = charts(stack_runs["local"])["metrics-server"]
    assert local_chart["namespace"] == "kube-system" and local_chart["version"] == "3.13.1"
    assert "--metric-resolution=15s" in local_chart["values"]["defaultArgs"]
    assert "--kubelet-insecure-tls" in local_chart["values"]["defaultArgs"]
    assert unknown_chart_values(local_chart["values"], METRICS_SERVER_VALUES) == []
    eks = charts(stack_runs["eks"])["metrics-server"]
    assert "--kubelet-insecure-tls" not in eks["values"]["defaultArgs"]
    off = charts(run(local({"raykube:metrics": {"kubeletInsecureTls": False, "resolutionSeconds": 30}}), "local"))["metrics-server"]
    assert "--kubelet-insecure-tls" not in off["values"]["defaultArgs"]
    assert "--metric-resolution=30s" in off["values"]["defaultArgs"]
    assert sum(arg.startswith("--metric-resolution") for arg in off["values"]["defaultArgs"]) == 1


@pytest.mark.parametrize(
    "stack, expected",
    [("local", {"kuberay-operator", "flannel", "metrics-server", "kube-prometheus-stack"}), ("eks", {"kuberay-operator", "metrics-server"}),
     ("aks", {"kuberay-operator"}), ("gke", {"kuberay-operator"})],
)
def test_target_profile_decides_the_add_ons(stack_runs, stack, expected):
    result = stack_runs[stack]
    assert set(charts(result)) == expected
    assert ("kubeadmConfig" in result.outputs) == (stack == "local")


def test_hpa_pool_deployment_and_hpa(stack_runs):
    result = stack_runs["local"]
    deployment = result.of_type(DEPLOYMENT)[0].inputs
    hpa = result.of_type(HPA)[0].inputs
    for obj in (deployment, hpa):
        validate_kubernetes(obj, "1.33")
        validate_kubernetes(obj, "1.30")
    spec = deployment["spec"]
    assert "replicas" not in spec  # the HPA owns it
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert container["resources"]["requests"]["cpu"] == "1"
    assert "--num-cpus=1" in container["args"]
    assert container["args"][:4] == ["start", "--address=$(RAY_GCS_ADDRESS)", "--node-ip-address=$(RAY_NODE_IP)", "--block"]
    env = {item["name"]: item.get("value") for item in container["env"]}
    assert env["RAY_GCS_ADDRESS"] == "raycluster-head-svc.ray.svc.cluster.local:6379"
    assert pod["terminationGracePeriodSeconds"] == 300
    assert container["lifecycle"]["preStop"]["exec"]["command"][:2] == ["python", "-c"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    # KubeRay finds its pods by these labels: a pool pod must never be counted as a KubeRay worker.
    labels = spec["template"]["metadata"]["labels"]
    assert not {"ray.io/cluster", "ray.io/node-type", "ray.io/group", "ray.io/identifier"} & set(labels)
    assert labels["ray.io/is-ray-node"] == "yes"  # what KubeRay's own Ray pods carry; the NetworkPolicies select it
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 50
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 15


def test_hpa_pool_waits_for_metrics_server_and_the_ray_cluster(stack_runs):
    result = stack_runs["local"]
    pool = result.of_type("raykube:index:RayWorkerPool")[0]
    waited = {result.by_urn(urn).type for urn in pool.dependencies}
    assert "kubernetes:ray.io/v1:RayCluster" in waited
    assert CHART in waited and any(result.by_urn(urn).name == "metrics-server-chart" for urn in pool.dependencies)


def test_hpa_groups_are_not_in_the_raycluster(stack_runs):
    cluster = stack_runs["local"].of_type("kubernetes:ray.io/v1:RayCluster")[0].inputs
    assert cluster["spec"]["workerGroupSpecs"] == []
    assert "enableInTreeAutoscaling" not in cluster["spec"]


def test_pool_without_cpu_request_is_refused():
    with pytest.raises(ValueError, match="cpu request"):
        worker_pool_deployment({"namespace": "ray", "cluster_name": "rc", "image": "img", "group": {"name": "g", "resources": {"limits": {"cpu": "1"}}}})


# --- a real Ray cluster: scale-down drains without losing the running task ----

TASK_SECONDS = 12


def test_pool_worker_joins_and_prestop_drain_keeps_the_running_task(stack_runs, ray_head, tmp_path):
    from tests.helpers.ray_sandbox import OBJECT_STORE_BYTES, RAY

    from tests.helpers.kubelet import container_env, expand, mount_secret_volumes, relocate

    deployment = stack_runs["local"].of_type(DEPLOYMENT)[0].inputs
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    worker_ip = "127.0.0.4"
    # What the kubelet provides: env from the manifest, the pod IP, the token Secret's file, $(VAR) expansion.
    secrets = {("raycluster", "auth_token"): ray_head.auth_token}
    env = relocate(container_env(container, worker_ip, secrets), mount_secret_volumes(pod, container, secrets, tmp_path))
    env["RAY_AUTH_TOKEN"] = ""  # only the file
    env.update(RAY_GCS_ADDRESS=ray_head.gcs_address)  # the head Service's DNS name, here
    argv = [RAY] + [expand(arg, env) for arg in container["args"]]
    worker = ray_head.spawn(argv + [f"--object-store-memory={OBJECT_STORE_BYTES}"], "pool-worker", env=env)
    try:
        nodes = {node["NodeManagerAddress"]: node for node in ray_head.wait_for_nodes(2)}
        assert worker_ip in nodes, ray_head.log("pool-worker")
        assert nodes[worker_ip]["Resources"]["CPU"] == 1
        driver = ray_head.spawn(
            [RAY.replace("/ray", "/python"), "-c",
             "import ray, time\n"
             f"ray.init(address='{ray_head.gcs_address}', _node_ip_address='{ray_head.head_ip}', logging_level='ERROR')\n"
             "@ray.remote(num_cpus=1, max_retries=0)\n"
             f"def work():\n    time.sleep({TASK_SECONDS})\n    return ray.get_runtime_context().get_node_id()\n"
             "ref = work.remote()\n"
             "print('RESULT', ray.get(ref), flush=True)\n"],
            "driver",
        )
        time.sleep(4)  # the task is running on the worker (the head has no CPUs)
        started = time.monotonic()
        hook = ray_head.run(container["lifecycle"]["preStop"]["exec"]["command"], env=env, timeout=120)
        hook_seconds = time.monotonic() - started
        assert hook.returncode == 0, hook.stdout + hook.stderr
        assert "drained" in hook.stdout, hook.stdout
        assert ray_head.wait(driver, timeout=120) == 0, ray_head.log("driver")
        assert "RESULT" in ray_head.log("driver")
        # The hook waited for the task instead of returning at once.
        assert hook_seconds >= TASK_SECONDS - 6
    finally:
        ray_head.signal(worker, 15)  # the kubelet's SIGTERM after the hook
        ray_head.wait(worker, timeout=120)
