"""The Ray resources of a node, derived from its pod's Kubernetes resources.

Kubernetes schedules pods by requests; Ray schedules tasks by the resources
each node advertises. Deriving the second from the first (milli-CPUs rounded
down, memory in bytes, GPUs from the nvidia.com/gpu limit) keeps the two
schedulers in agreement; `ray_resources` overrides any of them (head CPU 0 by
default, so tasks never compete with the head's own processes).
"""

import json
import shlex
from typing import Any, Mapping, Optional

from components.quantity import parse_quantity, whole_bytes, whole_cpus

GPU_RESOURCE = "nvidia.com/gpu"
_BUILTIN = ("CPU", "GPU", "memory")


# The Ray resources `ray start` takes as integer flags (--num-cpus, --num-gpus, --memory):
# a fraction there stops the pod at start.
WHOLE_RAY_RESOURCES = {"CPU": "num-cpus", "GPU": "num-gpus", "memory": "memory"}


def ray_resources_problem(overrides: Mapping[str, Any]) -> Optional[tuple[str, str]]:
    """(resource, why) `ray start` would refuse a group's ray_resources, or None."""
    for name, amount in overrides.items():
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            return str(name), f"must be a number, not {amount!r}"
        if amount < 0:
            return str(name), f"must be >= 0, got {amount}"
        if name in WHOLE_RAY_RESOURCES and not float(amount).is_integer():
            return str(name), f"must be a whole number (ray start --{WHOLE_RAY_RESOURCES[name]} takes an integer), got {amount}"
    return None


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def ray_resources(resources: Mapping[str, Mapping[str, str]], overrides: Optional[Mapping[str, float]] = None) -> dict[str, int | float]:
    """{"CPU": n, "GPU": n, "memory": bytes, <custom>: n} that the node advertises."""
    requests = dict(resources.get("requests") or {})
    limits = dict(resources.get("limits") or {})
    derived: dict[str, int | float] = {}
    cpu = requests.get("cpu", limits.get("cpu"))
    if cpu is not None:
        derived["CPU"] = whole_cpus(cpu)
    gpu = limits.get(GPU_RESOURCE, requests.get(GPU_RESOURCE))
    if gpu is not None:
        derived["GPU"] = _number(parse_quantity(gpu))
    memory = requests.get("memory", limits.get("memory"))
    if memory is not None:
        derived["memory"] = whole_bytes(memory)
    for name, amount in (overrides or {}).items():
        derived[name] = _number(amount)
    return derived


def ray_start_params(resources: Mapping[str, int | float]) -> dict[str, str]:
    """KubeRay `rayStartParams` (strings) advertising exactly `resources`.

    Custom resources go in `resources` as JSON in double quotes with escaped
    inner quotes: KubeRay pastes params into a shell command line, and Ray's
    KubeRay autoscaler strips exactly that quoting to read them back.
    """
    params: dict[str, str] = {}
    if "CPU" in resources:
        params["num-cpus"] = str(_number(resources["CPU"]))
    if "GPU" in resources:
        params["num-gpus"] = str(_number(resources["GPU"]))
    if "memory" in resources:
        params["memory"] = str(int(resources["memory"]))
    custom = {name: _number(amount) for name, amount in sorted(resources.items()) if name not in _BUILTIN}
    if custom:
        params["resources"] = '"' + json.dumps(custom).replace('"', '\\"') + '"'
    return params


def ray_start_args(params: Mapping[str, str]) -> list[str]:
    """The `ray start` arguments KubeRay builds from `rayStartParams`, as argv.

    KubeRay joins `--key=value` into a shell line; splitting that line the way
    the shell does yields what `ray start` finally receives.
    """
    line = " ".join(f"--{key}={value}" for key, value in params.items())
    return shlex.split(line)
