"""HPA-pool workers are built like KubeRay's own (shm, wait-gcs-ready, probes, drain budgets),
and wait for a fault-tolerant head."""
from __future__ import annotations

import pytest

from components.ray_worker_pool import drain_budget, worker_pool_deployment
from tests.helpers.program import DEPLOYMENT, run_program, the_cluster, with_cluster
from tests.helpers.upstream import validate_raycluster


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
