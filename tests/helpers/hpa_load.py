"""Simulated CPU load on an HPA pool, and what the stack's settings allow its scaling to take.

Shared by the scaling tests and benchmarks/scaling_benchmark.py: the bounds come
from the settings the local stack renders (metrics-server's resolution, the
controller-manager's HPA sync period, the HPA's scale-down window), never from
a measurement.
"""
from __future__ import annotations

import math
import threading

import yaml

LOAD, IDLE = "950m", "5m"  # of a 1-CPU request: 95 % busy, idle
# What the bounds allow beyond the settings: API round trips, kwok's and
# metrics-server's reaction, the ReplicaSet creating or deleting pods, on 2 cores.
GRACE_SECONDS = 20


def local_timings(run) -> dict[str, int]:
    """The settings the local stack renders: metrics-server's resolution (chart values), the
    controller-manager's HPA sync period (kubeadm file) and the HPA's scale-down window."""
    (chart,) = [r for r in run.of_type("kubernetes:helm.sh/v4:Chart") if r.inputs.get("chart") == "metrics-server"]
    resolution = next(int(arg.split("=")[1].rstrip("s")) for arg in chart.inputs["values"]["defaultArgs"] if arg.startswith("--metric-resolution="))
    cluster = next(doc for doc in yaml.safe_load_all(run.outputs["kubeadmConfig"]) if doc and doc["kind"] == "ClusterConfiguration")
    flags = {item["name"]: item["value"] for item in cluster["controllerManager"]["extraArgs"]}
    (hpa,) = [r.inputs for r in run.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")]
    return {
        "resolution": resolution,
        "sync": int(flags["horizontal-pod-autoscaler-sync-period"].rstrip("s")),
        "stabilization": hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
        "min": hpa["spec"]["minReplicas"],
        "max": hpa["spec"]["maxReplicas"],
        "target": hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
    }


def hpa_steps(minimum: int, maximum: int, load_percent: float, target: int) -> int:
    """How many HPA decisions it takes from min to max: each sets ceil(pods × load / target)."""
    pods, steps = minimum, 0
    while pods < maximum:
        pods, steps = min(maximum, math.ceil(pods * load_percent / target)), steps + 1
    return steps


class Load:
    """Keeps every pod of the pool at `cpu` (new pods too: kwok starts them idle) until stopped."""

    def __init__(self, sim, namespace: str, selector: str):
        self.sim, self.namespace, self.selector = sim, namespace, selector
        self.cpu = IDLE
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep, daemon=True)
        self._thread.start()

    def _keep(self) -> None:
        while not self._stop.is_set():
            try:
                self.sim.set_cpu_load(self.namespace, self.selector, self.cpu)
            except Exception:
                pass  # a pod deleted between list and patch
            self._stop.wait(1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def scale_bounds(timings: dict[str, int], steps: int) -> tuple[int, int]:
    """(scale-up, scale-down) bounds in seconds.

    Up: each HPA step needs the new pods' usage, which metrics-server computes from two
    scrapes of their CPU counter (two resolutions), and a sync to act on it.
    Down: the idle usage is scraped within a resolution; the HPA scales down at the
    first sync after the recommendations stayed low for the whole window, and may
    need one more sync to see it; then the ReplicaSet deletes the pods.
    """
    up = steps * (2 * timings["resolution"] + timings["sync"]) + GRACE_SECONDS
    down = timings["resolution"] + timings["stabilization"] + 2 * timings["sync"] + GRACE_SECONDS
    return up, down
