"""Day 2: the second `pulumi up`, a destroyed neighbour stack, a restarted head.

Upgrades reach the pods, Ray's autoscaler owns replicas, the CRDs outlive a
stack, GPU groups get GPU images, token authentication, the dashboard
Ingress, HPA-pool parity with KubeRay's workers, head fault tolerance.
"""
from __future__ import annotations

import copy
import re
import time

import pytest

from components.kuberay_crds import CRD_TYPE, retain_crds
from components.ray_worker_pool import drain_budget, worker_pool_deployment
from tests.helpers.program import STACKS, run_program, stack_file_config
from tests.helpers.upstream import validate_kubernetes, validate_raycluster

RAYCLUSTER = "kubernetes:ray.io/v1:RayCluster"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def with_cluster(stack: str, **changes) -> dict:
    """A stack file's config with fields of its first Ray cluster changed."""
    config = copy.deepcopy(stack_file_config(stack))
    config["raykube:rayClusters"][0].update(changes)
    return config


def the_cluster(result, index: int = 0) -> dict:
    return result.of_type(RAYCLUSTER)[index].inputs


# --- upgrades reach the pods ---------------------------------------------------

def test_a_new_ray_version_changes_the_head_the_workers_and_the_pool_together(stack_runs):
    before = stack_runs["local"]
    after = run_program(with_cluster("local", rayVersion="2.59.0", allowVersionMismatch=True), "local")
    old, new = the_cluster(before)["spec"], the_cluster(after)["spec"]
    assert (old["rayVersion"], new["rayVersion"]) == ("2.60.0", "2.59.0")
    assert new["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] == "rayproject/ray:2.59.0-py311"
    # KubeRay recreates the pods of a changed spec only with this strategy.
    assert new["upgradeStrategy"] == {"type": "Recreate"}
    old_pool = before.of_type(DEPLOYMENT)[0].inputs["spec"]["template"]
    new_pool = after.of_type(DEPLOYMENT)[0].inputs["spec"]["template"]
    assert new_pool["spec"]["containers"][0]["image"] == "rayproject/ray:2.59.0-py311"
    assert new_pool["spec"]["initContainers"][0]["image"] == "rayproject/ray:2.59.0-py311"
    assert new_pool["metadata"]["labels"]["raykube.io/ray-version"] == "2.59.0"
    assert old_pool != new_pool  # a new template: the Deployment rolls


def test_upgrade_strategy_can_be_turned_off(stack_runs):
    result = run_program(with_cluster("eks", upgradeStrategy="None"), "eks")
    assert the_cluster(result)["spec"]["upgradeStrategy"] == {"type": "None"}


# --- Ray's autoscaler owns replicas ---------------------------------------------

def test_ray_mode_groups_carry_no_replicas_and_fixed_groups_do(stack_runs):
    for group in the_cluster(stack_runs["eks"])["spec"]["workerGroupSpecs"]:
        assert "replicas" not in group, group["groupName"]
    serving = next(c for c in stack_runs["gke"].of_type(RAYCLUSTER) if c.inputs["metadata"]["name"] == "serving")
    (fixed,) = serving.inputs["spec"]["workerGroupSpecs"]
    assert (fixed["replicas"], fixed["minReplicas"], fixed["maxReplicas"]) == (2, 2, 2)


def test_what_a_second_pulumi_up_does_to_the_autoscalers_replicas(stack_runs, control_plane):
    """On a real API server, with the autoscaler's real patch. workerGroupSpecs is an
    atomic list in KubeRay's CRD, so the autoscaler's patch of one group's replicas
    makes it the owner of the whole list: an unforced apply of a changed RayCluster
    fails, which is why the RayCluster carries pulumi.com/patchForce; the forced
    apply then starts ray-mode groups again from KubeRay's floor (minReplicas)."""
    from tests.helpers.envtest import ApplyError, server_side_apply

    client = control_plane.dynamic()
    objects = [copy.deepcopy(r.revealed_inputs) for r in stack_runs["eks"].kubernetes_objects()]
    for obj in sorted(objects, key=lambda o: o["kind"] != "Namespace"):
        server_side_apply(client, obj, "pulumi-kubernetes", force=True)
    cluster = next(obj for obj in objects if obj["kind"] == "RayCluster")
    assert cluster["metadata"]["annotations"]["pulumi.com/patchForce"] == "true"
    rayclusters = client.resources.get(api_version="ray.io/v1", kind="RayCluster")
    name, namespace = cluster["metadata"]["name"], cluster["metadata"]["namespace"]

    def replicas():
        return [group.get("replicas") for group in rayclusters.get(name=name, namespace=namespace).to_dict()["spec"]["workerGroupSpecs"]]

    assert replicas() == [0, 0]  # no replicas sent: the CRD's default, and KubeRay starts at minReplicas
    # What Ray's autoscaler does: a JSON patch of one group's replicas, as its own manager.
    rayclusters.patch(name=name, namespace=namespace, content_type="application/json-patch+json", field_manager="autoscaler",
                      body=[{"op": "replace", "path": "/spec/workerGroupSpecs/0/replicas", "value": 3}])
    assert replicas() == [3, 0]
    changed = copy.deepcopy(cluster)
    changed["spec"]["workerGroupSpecs"][0]["maxReplicas"] += 1
    with pytest.raises(ApplyError) as conflict:
        server_side_apply(client, changed, "pulumi-kubernetes", force=False)
    assert conflict.value.status == 409 and ".spec.workerGroupSpecs" in conflict.value.message
    server_side_apply(client, changed, "pulumi-kubernetes")  # forced, as the annotation makes Pulumi do
    assert replicas() == [0, 0]


# --- CRDs survive a destroy; several stacks share them --------------------------

def test_crds_are_kept_on_destroy(stack_runs):
    (group,) = stack_runs["eks"].of_type("kubernetes:yaml/v2:ConfigGroup")
    assert group.retain_on_delete and group.transforms == 1
    # The transform marks the CRDs inside the group (remote children) retained, and nothing else.
    import pulumi

    def args(type_):
        return pulumi.ResourceTransformArgs(custom=True, type_=type_, name="x", props={}, opts=pulumi.ResourceOptions())

    assert retain_crds(args(CRD_TYPE)).opts.retain_on_delete is True
    assert retain_crds(args("kubernetes:core/v1:ConfigMap")) is None


def test_a_second_stack_uses_the_crds_the_first_installed():
    config = {**stack_file_config("eks"), "raykube:operator": {"version": "1.7.0", "installCrds": False}}
    result = run_program(config, "eks-b")
    assert result.of_type("kubernetes:yaml/v2:ConfigGroup") == []
    assert result.of_type("raykube:index:KubeRayCrds") == []
    assert result.of_type("raykube:index:KubeRayOperator")


def test_rayclusters_are_deleted_before_their_operator(stack_runs):
    """Pulumi deletes dependents first: the operator is still there to run KubeRay's finalizers."""
    for stack in STACKS:
        result = stack_runs[stack]
        for cluster in result.of_type(RAYCLUSTER):
            waited = set()
            current = cluster
            while current is not None:
                waited.update(current.dependencies)
                current = next((r for r in result.resources if r.urn == current.parent), None)
            namespace = cluster.inputs["metadata"]["namespace"]
            operator = next(r for r in result.of_type("raykube:index:KubeRayOperator") if r.name.endswith(f"-{namespace}"))
            # Pulumi records a dependency on a component as one on its children (the chart).
            operator_parts = {operator.urn} | {r.urn for r in result.resources if r.parent == operator.urn}
            assert operator_parts & waited, f"{stack}: {cluster.name} does not wait for its operator"


# --- images ----------------------------------------------------------------------

def test_gpu_groups_default_to_the_gpu_image_and_groups_can_choose_their_own(stack_runs):
    groups = {g["groupName"]: g for g in the_cluster(stack_runs["eks"])["spec"]["workerGroupSpecs"]}
    assert groups["gpu"]["template"]["spec"]["containers"][0]["image"] == "rayproject/ray:2.60.0-py311-gpu"
    assert groups["cpu"]["template"]["spec"]["containers"][0]["image"] == "rayproject/ray:2.60.0-py311"
    config = with_cluster("eks")
    config["raykube:rayClusters"][0]["workerGroups"][0]["image"] = "my-registry/ray:2.60.0-py311-custom"
    config["raykube:rayClusters"][0]["workerGroups"][1]["idleTimeoutSeconds"] = 600
    groups = {g["groupName"]: g for g in the_cluster(run_program(config, "eks"))["spec"]["workerGroupSpecs"]}
    assert groups["cpu"]["template"]["spec"]["containers"][0]["image"] == "my-registry/ray:2.60.0-py311-custom"
    assert groups["gpu"]["idleTimeoutSeconds"] == 600 and "idleTimeoutSeconds" not in groups["cpu"]


# --- token authentication --------------------------------------------------------

def test_token_auth_reaches_head_kuberay_workers_and_pool_workers(stack_runs):
    for stack in STACKS:
        for cluster in stack_runs[stack].of_type(RAYCLUSTER):
            # KubeRay generates the token Secret and injects it into head and worker pods.
            assert cluster.inputs["spec"]["authOptions"] == {"mode": "token"}, stack
    pool = stack_runs["local"].of_type(DEPLOYMENT)[0].inputs["spec"]["template"]["spec"]
    for container in [*pool["containers"], *pool["initContainers"]]:
        env = {item["name"]: item for item in container["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        assert env["RAY_AUTH_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "raycluster", "key": "auth_token"}}
    outputs = stack_runs["local"].outputs["rayClusters"]["ray/raycluster"]
    assert outputs["authTokenCommand"] == "kubectl -n ray get secret raycluster -o jsonpath='{.data.auth_token}' | base64 -d"


def test_auth_can_be_disabled():
    result = run_program(with_cluster("local", auth={"mode": "disabled"}), "local")
    assert "authOptions" not in the_cluster(result)["spec"]
    pool = result.of_type(DEPLOYMENT)[0].inputs["spec"]["template"]["spec"]["containers"][0]
    assert not {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN"} & {item["name"] for item in pool["env"]}
    assert result.outputs["rayClusters"]["ray/raycluster"]["authTokenCommand"] == ""


def test_ready_timeout_reaches_pulumis_wait():
    result = run_program(with_cluster("eks", readyTimeoutSeconds=1800), "eks")
    assert the_cluster(result)["metadata"]["annotations"]["pulumi.com/timeoutSeconds"] == "1800"


# --- the dashboard Ingress --------------------------------------------------------

def nginx_rewrite(ingress: dict, request_path: str):
    """What ingress-nginx sends upstream for a request: the rule's regex
    (anchored at the start, as nginx's location) and the rewrite target."""
    rule = ingress["spec"]["rules"][0]["http"]["paths"][0]
    target = ingress["metadata"].get("annotations", {}).get("nginx.ingress.kubernetes.io/rewrite-target")
    match = re.match(rule["path"], request_path, re.IGNORECASE)
    if match is None:
        return None
    return re.sub(r"\$(\d)", lambda m: match.group(int(m.group(1))), target) if target else request_path


def test_sub_path_ingress_strips_the_prefix_for_ingress_nginx(stack_runs):
    (ingress,) = [r.inputs for r in stack_runs["aks"].of_type("kubernetes:networking.k8s.io/v1:Ingress")]
    validate_kubernetes(ingress, "1.33")
    assert ingress["spec"]["ingressClassName"] == "webapprouting.kubernetes.azure.com"
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["pathType"] == "ImplementationSpecific"
    assert nginx_rewrite(ingress, "/ray/") == "/"
    assert nginx_rewrite(ingress, "/ray/api/jobs/") == "/api/jobs/"
    assert nginx_rewrite(ingress, "/ray/static/js/main.js") == "/static/js/main.js"
    assert nginx_rewrite(ingress, "/other/api/jobs/") is None


def test_ingress_takes_annotations_and_tls():
    ingress_settings = {"enabled": True, "className": "nginx", "host": "ray.example.com", "path": "/",
                        "annotations": {"nginx.ingress.kubernetes.io/auth-url": "https://auth.example.com/check"},
                        "tls": {"secretName": "ray-tls"}}
    result = run_program(with_cluster("eks", dashboardIngress=ingress_settings), "eks")
    (ingress,) = [r.inputs for r in result.of_type("kubernetes:networking.k8s.io/v1:Ingress")]
    validate_kubernetes(ingress, "1.33")
    assert ingress["metadata"]["annotations"] == {"nginx.ingress.kubernetes.io/auth-url": "https://auth.example.com/check"}
    assert ingress["spec"]["tls"] == [{"secretName": "ray-tls", "hosts": ["ray.example.com"]}]
    assert ingress["spec"]["rules"][0]["http"]["paths"][0] | {"backend": None} == {"path": "/", "pathType": "Prefix", "backend": None}


def test_other_controllers_keep_their_own_rewrite():
    ingress_settings = {"enabled": True, "className": "traefik", "path": "/ray",
                        "annotations": {"traefik.ingress.kubernetes.io/router.middlewares": "ray-strip-prefix@kubernetescrd",
                                        "raykube-note/rewrite": "by the strip-prefix middleware"}}
    result = run_program(with_cluster("eks", dashboardIngress=ingress_settings), "eks")
    (ingress,) = [r.inputs for r in result.of_type("kubernetes:networking.k8s.io/v1:Ingress")]
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/ray"
    assert "nginx.ingress.kubernetes.io/rewrite-target" not in ingress["metadata"]["annotations"]


# --- HPA-pool parity with KubeRay's workers ------------------------------------

def test_pool_pods_have_shm_init_container_and_probes(stack_runs):
    pod = stack_runs["local"].of_type(DEPLOYMENT)[0].inputs["spec"]["template"]["spec"]
    container = pod["containers"][0]
    (shm,) = [v for v in pod["volumes"] if v["name"] == "shared-mem"]
    # Sized like KubeRay's: the container's memory, in RAM.
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": container["resources"]["limits"]["memory"]}
    assert {"name": "shared-mem", "mountPath": "/dev/shm"} in container["volumeMounts"]
    (init,) = pod["initContainers"]
    assert init["name"] == "wait-gcs-ready" and "ray health-check" in init["command"][-1]
    assert init["resources"] == container["resources"]  # the pod's requests stay those of the worker
    for probe in (container["readinessProbe"], container["livenessProbe"]):
        assert probe["httpGet"] == {"path": "/api/healthz", "port": 52365}
    assert container["livenessProbe"]["failureThreshold"] * container["livenessProbe"]["periodSeconds"] >= 300


def test_older_ray_gets_kubeRays_exec_probes():
    deployment = worker_pool_deployment({"namespace": "ray", "cluster_name": "rc", "image": "rayproject/ray:2.50.0",
                                         "ray_version": "2.50.0", "auth_mode": "disabled",
                                         "group": {"name": "cpu", "resources": {"requests": {"cpu": "1"}}}})
    probe = deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
    assert probe["exec"]["command"][:2] == ["bash", "-c"] and "local_raylet_healthz" in probe["exec"]["command"][2]


@pytest.mark.parametrize("grace", [30, 31, 45, 60, 120, 300, 3600, 86400])
def test_both_drains_fit_inside_the_grace_period_for_any_setting(grace):
    deployment = worker_pool_deployment({
        "namespace": "ray", "cluster_name": "rc", "image": "img", "ray_version": "2.60.0",
        "group": {"name": "cpu", "resources": {"requests": {"cpu": "1"}}, "termination_grace_period_seconds": grace}})
    pod = deployment["spec"]["template"]["spec"]
    env = {item["name"]: item.get("value") for item in pod["containers"][0]["env"]}
    hook, sigterm = int(env["RAYKUBE_DRAIN_DEADLINE_SECONDS"]), int(env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"])
    assert (hook, sigterm) == drain_budget(grace)
    assert hook >= 1 and sigterm >= 1
    # The hook, then Ray's own drain on SIGTERM, then a margin for start-up and exit: all before SIGKILL.
    assert hook + sigterm + 5 <= pod["terminationGracePeriodSeconds"] == grace


def test_fault_tolerant_head_makes_pool_workers_wait_for_it():
    config = with_cluster("local", gcsFaultTolerance={"backend": "rocksdb", "storage": {"size": "10Gi", "storageClassName": "standard"}})
    result = run_program(config, "local")
    spec = the_cluster(result)["spec"]
    validate_raycluster(the_cluster(result))
    assert spec["gcsFaultToleranceOptions"] == {
        "backend": "rocksdb", "storage": {"size": "10Gi", "storageClassName": "standard", "deletionPolicy": "DeleteWithCluster"}}
    env = {item["name"]: item.get("value") for item in result.of_type(DEPLOYMENT)[0].inputs["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["RAY_gcs_rpc_server_reconnect_timeout_s"] == "600"


def test_redis_fault_tolerance_reads_the_password_from_an_existing_secret():
    config = with_cluster("eks", gcsFaultTolerance={"backend": "redis", "redis": {
        "address": "redis.ray.svc.cluster.local:6379", "passwordSecret": {"name": "redis", "key": "password"}}})
    result = run_program(config, "eks")
    validate_raycluster(the_cluster(result))
    assert the_cluster(result)["spec"]["gcsFaultToleranceOptions"] == {
        "backend": "redis", "redisAddress": "redis.ray.svc.cluster.local:6379",
        "redisPassword": {"valueFrom": {"secretKeyRef": {"name": "redis", "key": "password"}}}}
    assert "redis" not in str(result.outputs)  # nothing about it is exported


# --- a real Ray cluster with token authentication ---------------------------------

def test_pool_worker_with_init_container_and_probes_joins_with_the_token(stack_runs, ray_head):
    """The init container's wait, `ray start` and the probes, as the kubelet runs them,
    against the session's Ray head, which requires the token."""
    from tests.helpers.kubelet import container_env, expand
    from tests.helpers.ray_sandbox import OBJECT_STORE_BYTES, RAY

    pod = stack_runs["local"].of_type(DEPLOYMENT)[0].inputs["spec"]["template"]["spec"]
    worker_ip = "127.0.0.6"
    secrets = {("raycluster", "auth_token"): ray_head.auth_token}
    (init,) = pod["initContainers"]
    init_env = {**container_env(init, worker_ip, secrets), "RAY_GCS_ADDRESS": ray_head.gcs_address}
    started = time.monotonic()
    done = ray_head.run(init["command"], env=init_env, timeout=60)
    assert done.returncode == 0 and "GCS is ready." in done.stdout, done.stdout + done.stderr
    assert time.monotonic() - started < 30
    # Without the token the head does not answer the init container's check.
    wrong = ray_head.run(["bash", "-c", "ray health-check --address \"$RAY_GCS_ADDRESS\""],
                         env={**init_env, "RAY_AUTH_TOKEN": "0" * 32}, timeout=60)
    assert wrong.returncode != 0

    container = pod["containers"][0]
    env = {**container_env(container, worker_ip, secrets), "RAY_GCS_ADDRESS": ray_head.gcs_address}
    argv = [RAY] + [expand(arg, env) for arg in container["args"]] + [f"--object-store-memory={OBJECT_STORE_BYTES}"]
    worker = ray_head.spawn(argv, "token-worker", env=env)
    try:
        nodes = {node["NodeManagerAddress"] for node in ray_head.wait_for_nodes(2)}
        assert worker_ip in nodes, ray_head.log("token-worker")
        probe = container["readinessProbe"]["httpGet"]
        url = f"http://{worker_ip}:{probe['port']}{probe['path']}"  # the kubelet probes the pod IP
        fetch = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read().decode())"
        deadline = time.monotonic() + 60
        while True:
            answer = ray_head.run(["python3", "-c", fetch], timeout=30)
            if answer.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert answer.returncode == 0 and "raylet: success" in answer.stdout, answer.stderr
        # A client without the token is refused; one with it gets in.
        driver = f"import ray; ray.init(address={ray_head.gcs_address!r}, _node_ip_address={ray_head.head_ip!r}, logging_level='ERROR'); print('IN', len(ray.nodes()))"
        import sys

        allowed = ray_head.run([sys.executable, "-c", driver], timeout=120)
        assert allowed.returncode == 0 and "IN" in allowed.stdout, allowed.stderr
        # (A refused client retries for ~20 s by default; 3 tries say the same faster.)
        for who, extra in {"a wrong token": {"RAY_AUTH_TOKEN": "f" * 32},
                           "no token": {"RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN": ""}}.items():
            refused = ray_head.run([sys.executable, "-c", driver], env={**extra, "RAY_NUM_REDIS_GET_RETRIES": "3"}, timeout=120)
            assert refused.returncode != 0 and "IN" not in refused.stdout, f"{who}: {refused.stdout}"
            assert re.search(r"(?i)auth|unauthenticated|token", refused.stderr), f"{who}: {refused.stderr[-500:]}"
    finally:
        ray_head.signal(worker, 15)
        ray_head.wait(worker, timeout=120)
