"""The raykube program as `pulumi up` runs it, under Pulumi's mocks, for a stack file's config."""
from __future__ import annotations

import itertools
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from raykube.offline import OfflineRun, run_offline  # noqa: E402
from raykube.stack_file import stack_config_values  # noqa: E402
from raykube.cli.render import stack_names  # noqa: E402

STACKS = stack_names()


def stack_file_config(stack: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]


def run_program(stack_config: dict[str, Any], stack: str = "test") -> OfflineRun:
    """Run raykube as `pulumi up` would for a stack file whose `config:` is `stack_config`."""
    from raykube.composition import build
    from raykube.settings import load_settings

    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    config = stack_config_values(stack_config, project.get("config", {}), "raykube")
    return run_offline(lambda: build(load_settings()).as_tuple(), config, stack)


def relocated(stack_config: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The same stack file with every Ray namespace (and the monitoring one) renamed `<prefix>-<namespace>`:
    one control plane serves many tests, each in namespaces of its own."""
    import copy

    config = copy.deepcopy(stack_config)
    for key in ("raykube:rayClusters", "raykube:rayJobs", "raykube:rayServices"):
        for item in config.get(key) or []:
            item["namespace"] = f"{prefix}-{item.get('namespace', 'ray')}"
    observability = config.get("raykube:observability")
    if observability and observability.get("mode") == "install":  # the namespace it creates: a test's destroy takes it
        # (mode podMonitors names the user's own, which exists before raykube: the control plane has one)
        observability["namespace"] = f"{prefix}-{observability.get('namespace', 'monitoring')}"
        for peer in (config.get("raykube:networkPolicies") or {}).get("metricsFrom") or []:
            if peer.get("namespace") == "monitoring":
                peer["namespace"] = observability["namespace"]
    return config


_prefixes = itertools.count()


def fresh(stack: str, services: bool = False) -> dict:
    """A stack file's config in namespaces no other test of the session uses.

    A RayService gets Ready only once the operator finds Ray Serve answering on its head
    (the dashboard's Serve API, the proxy's health): kwok's pods run no Ray, so the
    simulated cluster's tests leave the stack's rayServices out unless a test brings
    a serving head and asks for them (services=True)."""
    config = relocated(stack_file_config(stack), f"t{next(_prefixes)}")
    if not services:
        config.pop("raykube:rayServices", None)
    return config


RAYCLUSTER = "kubernetes:ray.io/v1:RayCluster"
RAYJOB = "kubernetes:ray.io/v1:RayJob"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def with_cluster(stack: str, **changes) -> dict:
    """A stack file's config with fields of its first Ray cluster changed."""
    import copy

    config = copy.deepcopy(stack_file_config(stack))
    config["raykube:rayClusters"][0].update(changes)
    return config


def the_cluster(result, index: int = 0) -> dict:
    return result.of_type(RAYCLUSTER)[index].inputs


def ray_pod_templates(run) -> list[tuple[str, dict]]:
    """Heads and worker groups of every RayCluster and of every RayJob's own cluster, and the HPA pools."""
    templates = []
    for kind in (RAYCLUSTER, RAYJOB):
        for resource in run.of_type(kind):
            spec = resource.revealed_inputs["spec"]
            spec = spec.get("rayClusterSpec") if kind.endswith("RayJob") else spec
            if not spec:
                continue
            name = resource.inputs["metadata"]["name"]
            templates.append((f"{name} head", spec["headGroupSpec"]["template"]))
            templates += [(f"{name} {group['groupName']}", group["template"]) for group in spec["workerGroupSpecs"]]
    for deployment in run.of_type(DEPLOYMENT):
        templates.append((deployment.inputs["metadata"]["name"], deployment.revealed_inputs["spec"]["template"]))
    return templates
