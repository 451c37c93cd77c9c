"""What the kubelet does with a container spec before it runs: resolve the
environment (values, the pod IP, Secret keys) and expand $(VAR) in args."""
from __future__ import annotations

import re
from typing import Any, Mapping


def container_env(container: Mapping[str, Any], pod_ip: str, secrets: Mapping[tuple[str, str], str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        source = item["valueFrom"]
        if source.get("fieldRef", {}).get("fieldPath") == "status.podIP":
            env[item["name"]] = pod_ip
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[item["name"]] = secrets[(ref["name"], ref["key"])]
        else:
            raise AssertionError(f"no stand-in for {item}")
    return env


def expand(argument: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in command and args."""
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda match: env.get(match.group(1), match.group(0)), argument)
