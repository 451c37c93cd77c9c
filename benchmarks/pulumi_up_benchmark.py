"""What `pulumi up`, a no-change `pulumi preview` and `pulumi destroy` of the local stack cost
under the real Pulumi engine and pulumi-kubernetes provider (the project's build), next to the
KubeRay operator's own time to ready for the same RayClusters (the floor: what no tool can beat).

On the tests' simulated cluster (kube-apiserver, controller-manager, the real kube-scheduler,
kwok, metrics-server, the real operator run from the Deployment the chart makes), for the air-
gapped variant of stacks/Pulumi.local.yaml that the engine scenarios use
(tests/test_engine_scenarios.py: charts and CRDs from local folders, no AWS, no kube-prometheus-
stack). The first run starts from nothing (no CRDs); later runs start where a destroy leaves a
cluster (the CRDs kept). Each figure is the median of --runs runs.

- up: `pulumi up --yes --skip-preview` from an empty stack to every RayCluster ready (it returns
  only then: pulumi.com/waitFor);
- preview: `pulumi preview --expect-no-changes` right after;
- destroy: `pulumi destroy --yes --skip-preview`, until the namespaces are gone;
- operator floor: the same RayClusters applied straight to the API server with their operator
  already running, to `status.state: ready`.

    venv/bin/python benchmarks/pulumi_up_benchmark.py [--runs 3]
"""
from __future__ import annotations

import argparse
import copy
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.engine import Engine, OperatorPods, air_gapped_variant  # noqa: E402
from tests.helpers.envtest import ControlPlane, server_side_apply, wait_for  # noqa: E402
from tests.helpers.program import run_program, stack_file_config  # noqa: E402
from tests.helpers.simulated_cluster import SimulatedCluster, controller_manager_flags, metrics_server_flags  # noqa: E402

PREFIX = "bench"
MIRROR = "mirror.internal.example:5000/raykube"


def timed(action) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def live_clusters(sim: SimulatedCluster, config: dict) -> list[dict]:
    api = sim.dynamic.resources.get(api_version="ray.io/v1", kind="RayCluster")
    return [api.get(name=c["name"], namespace=c["namespace"]).to_dict() for c in config["raykube:rayClusters"]]


def operator_floor(sim: SimulatedCluster, clusters: list[dict], run: int) -> float:
    """The clusters as the stack applied them, into a namespace of their own whose operator already runs."""
    namespace = f"floor-{run}"
    sim.core.create_namespace({"metadata": {"name": namespace}})
    sim.plane.kuberay_operator(f"kuberay-operator-{namespace}", [f"--watch-namespace={namespace}"])
    api = sim.dynamic.resources.get(api_version="ray.io/v1", kind="RayCluster")
    objects = []
    for live in clusters:
        spec = copy.deepcopy(live["spec"])
        objects.append({"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": live["metadata"]["name"], "namespace": namespace}, "spec": spec})
    started = time.monotonic()
    for obj in objects:
        server_side_apply(sim.plane.dynamic(), obj, "benchmark")

    def ready() -> bool:
        return all((api.get(name=o["metadata"]["name"], namespace=namespace).to_dict().get("status") or {}).get("state") == "ready" for o in objects)

    wait_for(ready, 300, "the floor's clusters to be ready", interval=0.05)
    took = time.monotonic() - started
    sim.plane.stop(f"kuberay-operator-{namespace}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pulumi-up-bench-"))
    local = run_program(stack_file_config("local"), "local")
    (chart,) = [r for r in local.of_type("kubernetes:helm.sh/v4:Chart") if r.inputs.get("chart") == "metrics-server"]
    plane = ControlPlane(work / "cluster")
    sim = pods = None
    try:
        sim = SimulatedCluster(plane, controller_manager_flags(local.outputs["kubeadmConfig"]), metrics_server_flags(chart.inputs["values"]))
        plane.unregister_metrics_server()  # the stack installs metrics-server's chart
        pods = OperatorPods(sim, namespace_prefix=f"{PREFIX}-")
        engine = Engine(work / "engine", plane.kubeconfig)
        project = engine.project("raykube")
        config = air_gapped_variant("local", PREFIX, MIRROR)
        project.write_stack("local", config)
        engine.init(project, "local")
        figures: dict[str, list[float]] = {"pulumi up (nothing to ready)": [], "pulumi preview (no change)": [], "pulumi destroy": [],
                                           "operator floor (apply to ready)": []}
        for run in range(args.runs):
            figures["pulumi up (nothing to ready)"].append(timed(lambda: engine.up(project, "local")))
            pods.check()
            clusters = live_clusters(sim, config)
            figures["pulumi preview (no change)"].append(timed(lambda: engine.preview(project, "local", "--expect-no-changes")))
            figures["pulumi destroy"].append(timed(lambda: engine.destroy(project, "local")))
            figures["operator floor (apply to ready)"].append(operator_floor(sim, clusters, run))
            print(f"run {run + 1}: " + ", ".join(f"{name.split(' (')[0]} {values[-1]:.1f} s" for name, values in figures.items()), flush=True)
        print(f"\n{platform.processor() or platform.machine()}, {platform.system()} {platform.release()}; medians of {args.runs} runs\n")
        print(f"{'what':<36}{'median s':>10}{'runs':>24}")
        for name, values in figures.items():
            print(f"{name:<36}{statistics.median(values):>10.2f}{'  ' + ' '.join(f'{v:.1f}' for v in values):>24}")
    finally:
        if pods is not None:
            pods.stop()
        if sim is not None:
            sim.stop()
        plane.stop()


if __name__ == "__main__":
    main()
