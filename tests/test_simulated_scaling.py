"""Seed 000's autoscaling on a simulated cluster of real parts (kube-scheduler, kwok,
metrics-server, the controller-manager with the local stack's kubeadm flags, the real
KubeRay operator): the HPA pool grows from min to max under CPU load and shrinks back
when it ends, within bounds derived from the stack's settings; Ray's autoscaler protocol
moves exactly the pods it names; a group that fits no node says why."""
from __future__ import annotations

import json
import time

import pytest

from tests.helpers.envtest import wait_for
from tests.helpers.hpa_load import IDLE, LOAD, Load, hpa_steps, local_timings, scale_bounds
from tests.helpers.program import fresh
from tests.helpers.status_command import status


def test_the_hpa_pool_grows_to_max_under_load_and_back_to_min_when_it_ends(simulated_cluster, up, tmp_path):
    sim = simulated_cluster
    config = fresh("local")
    run, deployed = up(config, "local")
    timings = local_timings(run)
    (pool,) = deployed.of_kind("Deployment")
    namespace = pool["metadata"]["namespace"]
    selector = ",".join(f"{key}={value}" for key, value in pool["spec"]["selector"]["matchLabels"].items())
    wait_for(lambda: len(sim.running(namespace, selector)) == timings["min"], 60, "the pool at minReplicas")
    # metrics-server has the pods' usage once it scraped them: the HPA reads a current utilization.
    hpas = sim.dynamic.resources.get(api_version="autoscaling/v2", kind="HorizontalPodAutoscaler")

    def hpa_status() -> dict:
        return hpas.get(name=pool["metadata"]["name"], namespace=namespace).to_dict().get("status") or {}

    wait_for(lambda: any(m.get("resource", {}).get("current", {}).get("averageUtilization") is not None
                         for m in hpa_status().get("currentMetrics") or []), 120, "the HPA to read the pool's CPU from metrics-server")

    code, out, err = status(sim, config, tmp_path)
    assert code == 0, out + err  # ready: the cluster, and the pool at its minimum
    assert "scaled by hpa" in out and "% CPU of 50% CPU" in out, out

    load = Load(sim, namespace, selector)
    try:
        load.cpu = LOAD
        started = time.monotonic()
        steps = hpa_steps(timings["min"], timings["max"], 95, timings["target"])
        up_bound, down_bound = scale_bounds(timings, steps)
        wait_for(lambda: len(sim.running(namespace, selector)) == timings["max"], up_bound,
                 f"{timings['max']} pool workers within {up_bound} s of the load ({steps} HPA steps)")
        scale_up = time.monotonic() - started
        code, out, _ = status(sim, config, tmp_path, "--output", "json")
        (pool_status,) = [group for cluster in json.loads(out)["clusters"] for group in cluster["groups"] if group["scaledBy"] == "hpa"]
        assert pool_status["ready"] == timings["max"] and pool_status["desired"] == timings["max"], pool_status
        for pod in sim.running(namespace, selector):
            assert sim.node_of(pod).gpus == 0  # pool workers ask no GPU: never on the GPU node

        load.cpu = IDLE
        started = time.monotonic()
        wait_for(lambda: len(sim.pods(namespace, selector)) == timings["min"], down_bound,
                 f"back to {timings['min']} worker within {down_bound} s of the load's end")
        scale_down = time.monotonic() - started
    finally:
        load.stop()
    print(f"\nHPA pool {timings['min']} -> {timings['max']}: {scale_up:.0f} s (bound {up_bound} s); "
          f"{timings['max']} -> {timings['min']}: {scale_down:.0f} s (bound {down_bound} s)")
    # Faster than one stabilization window is not possible: the window is what the seed set.
    assert scale_down >= timings["stabilization"]


# --- Ray's autoscaler protocol -------------------------------------------------------------

def ray_autoscaler_patch(sim, namespace: str, name: str, patches: list[dict]) -> None:
    """A patch as Ray's KubeRay node provider sends it: its own payload builders, its content type."""
    sim.dynamic.resources.get(api_version="ray.io/v1", kind="RayCluster").patch(
        name=name, namespace=namespace, body=patches, content_type="application/json-patch+json", field_manager="ray-autoscaler")


def test_rays_autoscaler_adds_and_removes_exactly_the_workers_it_names(simulated_cluster, up):
    from ray.autoscaler._private.kuberay.node_provider import worker_delete_patch, worker_replica_patch

    sim = simulated_cluster
    config = fresh("eks")
    cluster = config["raykube:rayClusters"][0]
    _, deployed = up(config, "eks")
    namespace, name = cluster["namespace"], cluster["name"]
    groups = [group["groupName"] for group in next(c for c in deployed.of_kind("RayCluster") if c["metadata"]["name"] == name)["spec"]["workerGroupSpecs"]]
    cpu, gpu = groups.index("cpu"), groups.index("gpu")

    def workers(group: str) -> dict[str, str]:
        return {pod.metadata.name: pod.metadata.uid for pod in sim.running(namespace, f"ray.io/cluster={name},ray.io/group={group}")}

    # Scale up: Ray raises replicas; the operator creates exactly that many, the scheduler places them.
    ray_autoscaler_patch(sim, namespace, name, [worker_replica_patch(cpu, 3), worker_replica_patch(gpu, 1)])
    wait_for(lambda: len(workers("cpu")) == 3 and len(workers("gpu")) == 1, 60, "3 cpu and 1 gpu workers")
    time.sleep(3)
    assert len(workers("cpu")) == 3 and len(workers("gpu")) == 1  # and no more
    (gpu_pod,) = sim.running(namespace, f"ray.io/cluster={name},ray.io/group=gpu")
    assert sim.node_of(gpu_pod).gpus > 0  # the GPU worker on the GPU node group
    assert all(sim.node_of(pod).gpus == 0 for pod in sim.running(namespace, f"ray.io/cluster={name},ray.io/group=cpu"))

    # Scale down: Ray names the idle worker it removes and lowers replicas in the same patch.
    before = workers("cpu")
    victim, *kept = sorted(before)
    ray_autoscaler_patch(sim, namespace, name, [worker_replica_patch(cpu, 2), worker_delete_patch(cpu, [victim])])
    wait_for(lambda: victim not in workers("cpu"), 60, f"the operator to delete {victim}")
    time.sleep(3)
    assert workers("cpu") == {pod: before[pod] for pod in kept}  # exactly that one, the others untouched

    # Nothing raykube sets fights it: another `pulumi up` (a teammate's) leaves Ray's workers alone.
    up(config, "eks")
    time.sleep(3)
    assert workers("cpu") == {pod: before[pod] for pod in kept}
    assert len(workers("gpu")) == 1


# --- a group that fits no node --------------------------------------------------------------

def test_a_group_that_fits_no_node_stays_pending_and_says_why(simulated_cluster, tmp_path):
    from tests.helpers.program import run_program
    from tests.helpers.pulumi_up import AwaitTimeout, pulumi_destroy, pulumi_up

    sim = simulated_cluster
    config = fresh("gke")
    cluster = config["raykube:rayClusters"][0]
    cluster["workerGroups"] = [{"name": "huge", "autoscaling": "fixed", "replicas": 1,
                                "resources": {"requests": {"cpu": "200", "memory": "1Ti"}, "limits": {"cpu": "200", "memory": "1Ti"}}}]
    namespace, name = cluster["namespace"], cluster["name"]
    run = run_program(config, "gke")
    try:
        with pytest.raises(AwaitTimeout) as waited:
            pulumi_up(sim, run, timeout=12)  # Pulumi would wait readyTimeoutSeconds; the scheduler has decided long before
        (pod,) = sim.pods(namespace, f"ray.io/cluster={name},ray.io/group=huge")
        assert not pod.spec.node_name
        reasons = " ".join(sim.pending_reasons(namespace, pod.metadata.name))
        assert "Insufficient cpu" in reasons and "Insufficient memory" in reasons, reasons
        # `pulumi up` only says its wait for `ready` timed out; `raykube status` says why.
        assert name in str(waited.value)
        code, out, err = status(sim, config, tmp_path)
        print("\n" + out)
        assert code == 1, out + err
        assert f"pod {pod.metadata.name}: not scheduled:" in out and "Insufficient cpu" in out, out
        code, out, _ = status(sim, config, tmp_path, "--output", "json")
        (report,) = [c for c in json.loads(out)["clusters"] if c["name"] == name]
        assert report["ready"] is False and report["groups"][0]["scaledBy"] == "fixed" and report["groups"][0]["ready"] == 0
    finally:
        pulumi_destroy(sim, run)
