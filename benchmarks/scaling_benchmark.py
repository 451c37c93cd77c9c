"""How fast the local stack's HPA pool scales, on a simulated cluster of real parts, next to seed 000.

For each configuration, a fresh simulated cluster (the project's own build: kube-apiserver,
the controller-manager with the stack's kubeadm HPA flags, the real kube-scheduler, kwok
nodes, metrics-server with the stack's --metric-resolution, the real KubeRay operator), then
per run: `pulumi up` of the local stack (as the tests apply it), the pool at minReplicas,
every pool pod at 95 % of its CPU request (kwok's simulated usage) until the HPA reaches
maxReplicas, then idle until it is back at minReplicas. Printed: the median of --runs runs
of each time, the bound the settings allow, and seed 000's claim.

Configurations:
  seed 000        stacks/Pulumi.local.yaml as committed: the seed's 15 s resolution,
                  15 s sync, 15 s scale-down window, written out
  raykube         the same stack file with those keys removed: raykube's defaults
  kubernetes      (--with-kubernetes-defaults) metrics-server 60 s, HPA window 300 s:
                  what a cluster without the seed's changes does (slow: ~6 min a run)

    venv/bin/python benchmarks/scaling_benchmark.py [--runs 3] [--with-kubernetes-defaults]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers.envtest import ControlPlane, install_stack_crds, wait_for  # noqa: E402
from tests.helpers.hpa_load import IDLE, LOAD, Load, hpa_steps, local_timings, scale_bounds  # noqa: E402
from tests.helpers.program import relocated, run_program, stack_file_config  # noqa: E402
from tests.helpers.pulumi_up import pulumi_destroy, pulumi_up  # noqa: E402
from tests.helpers.simulated_cluster import SimulatedCluster, controller_manager_flags, metrics_server_flags  # noqa: E402

SEED_CLAIM = "1 -> 3 under load; back to 1 \"after a few seconds\" (15 s downscale stabilization)"


def configurations(with_kubernetes_defaults: bool) -> dict[str, dict]:
    seed = stack_file_config("local")
    defaults = copy.deepcopy(seed)
    for key in ("raykube:autoscaling", "raykube:metrics"):
        defaults.pop(key, None)
    chosen = {"seed 000": seed, "raykube": defaults}
    if with_kubernetes_defaults:
        kubernetes = copy.deepcopy(seed)
        kubernetes["raykube:autoscaling"] = {"scaleDownStabilizationSeconds": 300, "syncPeriodSeconds": 15}
        kubernetes["raykube:metrics"] = {**kubernetes.get("raykube:metrics", {}), "resolutionSeconds": 60}
        chosen["kubernetes"] = kubernetes
    return chosen


def one_run(sim: SimulatedCluster, config: dict, index: int) -> tuple[float, float]:
    run = run_program(relocated(config, f"b{index}"), "local")
    deployed = pulumi_up(sim, run)
    try:
        timings = local_timings(run)
        (pool,) = deployed.of_kind("Deployment")
        namespace = pool["metadata"]["namespace"]
        selector = ",".join(f"{key}={value}" for key, value in pool["spec"]["selector"]["matchLabels"].items())
        hpas = sim.dynamic.resources.get(api_version="autoscaling/v2", kind="HorizontalPodAutoscaler")
        wait_for(lambda: len(sim.running(namespace, selector)) == timings["min"], 120, "the pool at minReplicas")
        wait_for(lambda: any((m.get("resource") or {}).get("current", {}).get("averageUtilization") is not None for m in
                             (hpas.get(name=pool["metadata"]["name"], namespace=namespace).to_dict().get("status") or {}).get("currentMetrics") or []),
                 300, "the HPA's first CPU reading")
        up_bound, down_bound = scale_bounds(timings, hpa_steps(timings["min"], timings["max"], 95, timings["target"]))
        load = Load(sim, namespace, selector)
        try:
            load.cpu, started = LOAD, time.monotonic()
            wait_for(lambda: len(sim.running(namespace, selector)) == timings["max"], 3 * up_bound, "maxReplicas")
            scale_up = time.monotonic() - started
            load.cpu, started = IDLE, time.monotonic()
            wait_for(lambda: len(sim.pods(namespace, selector)) == timings["min"], 3 * down_bound, "minReplicas")
            scale_down = time.monotonic() - started
        finally:
            load.stop()
        return scale_up, scale_down
    finally:
        pulumi_destroy(sim, run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--with-kubernetes-defaults", action="store_true")
    args = parser.parse_args()
    results = {}
    for name, config in configurations(args.with_kubernetes_defaults).items():
        run = run_program(config, "local")
        timings = local_timings(run)
        chart = next(r for r in run.of_type("kubernetes:helm.sh/v4:Chart") if r.inputs.get("chart") == "metrics-server")
        with tempfile.TemporaryDirectory(prefix="rk-scaling-") as directory:
            print(f"{name}: starting a simulated cluster ({timings['resolution']} s resolution, {timings['sync']} s sync, "
                  f"{timings['stabilization']} s window) ...", flush=True)
            plane = ControlPlane(Path(directory))
            try:
                install_stack_crds(plane.dynamic())
                sim = SimulatedCluster(plane, controller_manager_flags(run.outputs["kubeadmConfig"]), metrics_server_flags(chart.inputs["values"]))
                try:
                    figures = []
                    for attempt in range(args.runs):
                        figures.append(one_run(sim, config, len(results) * 100 + attempt))
                        print(f"  run {attempt + 1}/{args.runs}: up {figures[-1][0]:.0f} s, down {figures[-1][1]:.0f} s", flush=True)
                finally:
                    sim.stop()
            finally:
                plane.stop()
        bounds = scale_bounds(timings, hpa_steps(timings["min"], timings["max"], 95, timings["target"]))
        results[name] = (timings, [statistics.median(values) for values in zip(*figures)], bounds)

    print(f"\nHPA pool of the local stack, min -> max -> min, median of {args.runs} runs")
    print(f"{'settings':<10} {'resolution/sync/window':>23} {'scale up':>9} {'(bound)':>8} {'scale down':>11} {'(bound)':>8}")
    for name, (timings, (scale_up, scale_down), (up_bound, down_bound)) in results.items():
        settings = f"{timings['resolution']}/{timings['sync']}/{timings['stabilization']} s"
        print(f"{name:<10} {settings:>23} {scale_up:>8.0f}s {up_bound:>7}s {scale_down:>10.0f}s {down_bound:>7}s")
    print(f"{'seed 000':<10} {'15/15/15 s':>23}   claim: {SEED_CLAIM}")


if __name__ == "__main__":
    main()
