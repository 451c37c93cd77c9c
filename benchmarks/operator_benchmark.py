"""How fast the real KubeRay operator (the project's build, tools/go/kuberay) turns raykube's RayClusters into pods, next to seed 004.

On the tests' simulated cluster (the project's own build of kube-apiserver, the
controller-manager, the real kube-scheduler, kwok as every Node's kubelet,
metrics-server, the operator started with the flags raykube's chart values make), for
the aks stack's RayCluster (a head, an autoscaler sidecar, one worker) applied N
times at once:

- to first pod: from the apply of a RayCluster to the operator's first Pod for it
  (seed 004: "less than 600 milliseconds" from custom resource to operator);
- to ready: to `status.state: ready`, what `pulumi up` waits for (seed 004: "roughly
  5 seconds" to set up a cluster, with real kubelets pulling and starting images;
  kwok starts containers at once, so this is the operator's own share);
- upgrade: from applying a new Ray version (upgradeStrategy Recreate) to every pod
  recreated and the cluster ready again.

Each figure is the median over the N clusters of a run, then the median of --runs runs.

    venv/bin/python benchmarks/operator_benchmark.py [--runs 3] [--counts 1,10,50]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.envtest import ControlPlane, install_crds, server_side_apply, wait_for  # noqa: E402
from tests.helpers.program import relocated, run_program, stack_file_config  # noqa: E402
from tests.helpers.pulumi_up import FIELD_MANAGER  # noqa: E402
from tests.helpers.built_operator import built_version  # noqa: E402
from tests.helpers.simulated_cluster import NODES, NodeShape, SimulatedCluster, controller_manager_flags  # noqa: E402
from tests.helpers.upstream import KUBERAY_CRDS, upstream_path  # noqa: E402

NAMESPACE = "bench-ray"


class Clock:
    """Watches Pods and RayClusters, noting when each cluster got its first Pod and became ready."""

    def __init__(self, sim: SimulatedCluster):
        self.sim = sim
        self.first_pod: dict[str, float] = {}
        self.ready: dict[str, float] = {}
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._pods, daemon=True), threading.Thread(target=self._clusters, daemon=True)]
        for thread in self.threads:
            thread.start()

    def _pods(self) -> None:
        from kubernetes import watch

        while not self.stopping.is_set():
            for event in watch.Watch().stream(self.sim.core.list_namespaced_pod, NAMESPACE, timeout_seconds=1):
                cluster = (event["object"].metadata.labels or {}).get("ray.io/cluster")
                if event["type"] == "ADDED" and cluster:
                    self.first_pod.setdefault(f"{cluster}/{event['object'].metadata.uid}", time.monotonic())

    def _clusters(self) -> None:
        from kubernetes import client, watch

        api = client.CustomObjectsApi(self.sim.api_client)
        while not self.stopping.is_set():
            for event in watch.Watch().stream(api.list_namespaced_custom_object, "ray.io", "v1", NAMESPACE, "rayclusters", timeout_seconds=1):
                obj = event["object"]
                if (obj.get("status") or {}).get("state") == "ready":
                    self.ready.setdefault(f"{obj['metadata']['name']}@{obj['metadata']['generation']}", time.monotonic())

    def first_pod_after(self, cluster: str, since: float) -> float | None:
        times = [t for key, t in self.first_pod.items() if key.split("/")[0] == cluster and t >= since]
        return min(times) if times else None

    def stop(self) -> None:
        self.stopping.set()


def heads_ready_with(sim: SimulatedCluster, name: str, image: str) -> bool:
    pods = sim.pods(NAMESPACE, f"ray.io/cluster={name}")
    return len(pods) == 2 and all(p.status.phase == "Running" and p.spec.containers[0].image == image for p in pods)


def one_run(sim: SimulatedCluster, clock: Clock, template: dict, count: int, tag: str, upgrade: bool) -> dict[str, float]:
    names = [f"c{tag}-{index}" for index in range(count)]
    applied: dict[str, float] = {}
    for name in names:
        obj = copy.deepcopy(template)
        obj["metadata"]["name"] = name
        applied[name] = time.monotonic()
        server_side_apply(sim.dynamic, obj, FIELD_MANAGER)
    wait_for(lambda: all(f"{name}@1" in clock.ready for name in names), 300, f"{count} clusters ready")
    figures = {
        "first pod": statistics.median(clock.first_pod_after(name, applied[name]) - applied[name] for name in names),
        "ready": statistics.median(clock.ready[f"{name}@1"] - applied[name] for name in names),
    }
    if upgrade:
        image = template["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] + "-upgraded"
        done: dict[str, float] = {}
        started: dict[str, float] = {}
        for name in names:
            obj = copy.deepcopy(template)
            obj["metadata"]["name"] = name
            for spec in [obj["spec"]["headGroupSpec"], *obj["spec"]["workerGroupSpecs"]]:
                spec["template"]["spec"]["containers"][0]["image"] = image
            started[name] = time.monotonic()
            server_side_apply(sim.dynamic, obj, FIELD_MANAGER)

        def all_upgraded() -> bool:
            for name in names:
                if name not in done and heads_ready_with(sim, name, image):
                    done[name] = time.monotonic()
            return len(done) == len(names)

        wait_for(all_upgraded, 300, "every cluster's pods recreated", interval=0.05)
        figures["upgrade"] = statistics.median(done[name] - started[name] for name in names)
    rayclusters = sim.dynamic.resources.get(api_version="ray.io/v1", kind="RayCluster")
    for name in names:
        rayclusters.delete(name=name, namespace=NAMESPACE)
    wait_for(lambda: not sim.pods(NAMESPACE), 300, "the clusters' pods to go")
    return figures


def group_cpu(group: dict, autoscaler: dict | None = None) -> float:
    """CPU one pod of the group requests (a missing request defaults to the limit, as the API does)."""
    from components.quantity import parse_quantity

    containers = [container.get("resources") or {} for container in group["template"]["spec"]["containers"]]
    if autoscaler is not None:
        containers.append(autoscaler)
    return sum(float(parse_quantity(((resources.get("requests") or resources.get("limits") or {}).get("cpu", "0")))) for resources in containers)


def add_room(sim: SimulatedCluster, cluster: dict, count: int) -> None:
    """Nodes until `count` clusters fit, for each group in the pool its nodeSelector picks: the real
    scheduler leaves pods that fit nowhere Pending, and the operator never reports those clusters ready."""
    spec = cluster["spec"]
    autoscaler = (spec.get("autoscalerOptions") or {}).get("resources") or {} if spec.get("enableInTreeAutoscaling") else None
    groups = [(spec["headGroupSpec"], 1, autoscaler)] + [(group, group.get("minReplicas", 0), None) for group in spec["workerGroupSpecs"]]
    added = 0
    for group, replicas, sidecar in groups:
        selector = group["template"]["spec"].get("nodeSelector") or {}
        pool = [node for node in NODES if selector.items() <= node.labels.items() and not node.taints]
        needed = group_cpu(group, sidecar) * replicas * count * 1.2
        # As if the pool were this group's alone: too many simulated Nodes cost nothing.
        capacity = sum(float(node.cpu) for node in pool)
        while capacity < needed:
            shape = pool[0]
            sim.add_node(NodeShape(f"{shape.name}-bench-{added}", shape.cpu, shape.memory, dict(shape.labels)))
            capacity += float(shape.cpu)
            added += 1


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--counts", default="1,10,50")
    args = parser.parse_args()
    counts = [int(count) for count in args.counts.split(",")]
    run = run_program(relocated(stack_file_config("aks"), "bench"), "aks")
    (chart,) = [r for r in run.of_type("kubernetes:helm.sh/v4:Chart") if r.inputs.get("chart") == "kuberay-operator"]
    (cluster,) = [copy.deepcopy(r.revealed_inputs) for r in run.of_type("kubernetes:ray.io/v1:RayCluster")]
    cluster["metadata"].pop("annotations", None)
    local = run_program(stack_file_config("local"), "local")
    with tempfile.TemporaryDirectory() as directory:
        plane = ControlPlane(Path(directory))
        try:
            install_crds(plane.dynamic(), [upstream_path(path) for path in KUBERAY_CRDS])
            print("starting the simulated cluster ...", flush=True)
            sim = SimulatedCluster(plane, controller_manager_flags(local.outputs["kubeadmConfig"]))
            for obj in run.kubernetes_objects():
                if obj.inputs["kind"] in ("Namespace", "Secret", "ServiceAccount"):
                    server_side_apply(sim.dynamic, copy.deepcopy(obj.revealed_inputs), FIELD_MANAGER)
            sim.start_operator(NAMESPACE, chart.inputs["values"])
            add_room(sim, cluster, max(counts))
            clock = Clock(sim)
            rows = []
            for count in counts:
                results = []
                for attempt in range(args.runs):
                    print(f"  {count} cluster(s), run {attempt + 1}/{args.runs} ...", flush=True)
                    results.append(one_run(sim, clock, cluster, count, f"{count}x{attempt}", upgrade=True))
                rows.append((count, {key: statistics.median(r[key] for r in results) for key in results[0]}))
            clock.stop()
            sim.stop()
        finally:
            plane.stop()
    print(f"\nKubeRay v{built_version()} operator, {args.runs} runs each (median over clusters, then over runs)")
    print(f"{'clusters':>8} {'to first pod':>13} {'to ready':>9} {'upgrade':>9}")
    for count, figures in rows:
        print(f"{count:>8} {figures['first pod']:>12.2f}s {figures['ready']:>8.2f}s {figures['upgrade']:>8.2f}s")
    print(f"{'seed 004':>8} {'< 0.60s':>13} {'~5s':>9} {'-':>9}   (custom resource to operator; cluster set-up with real kubelets)")


if __name__ == "__main__":
    main()
