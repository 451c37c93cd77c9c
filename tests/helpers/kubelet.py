"""What the kubelet does that tests stand in for: resolve a container's environment
(values, the pod IP, Secret keys), mount Secret volumes, expand $(VAR) in args,
and update Secret volumes."""
from __future__ import annotations

import re
import time
from pathlib import Path
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


def write_like_kubelet(directory: Path, files: dict[str, str]) -> None:
    """Update a Secret volume the way the kubelet does: a new timestamped folder,
    then an atomic swap of the `..data` link that the visible files point through."""
    directory.mkdir(exist_ok=True)
    version = directory / f"..{time.time_ns()}"
    version.mkdir()
    for key, text in files.items():
        (version / key).write_text(text)
        if not (directory / key).is_symlink():
            (directory / key).symlink_to(Path("..data") / key)
    staging = directory / "..data_tmp"
    staging.symlink_to(version.name)
    staging.replace(directory / "..data")


def mount_secret_volumes(pod: Mapping[str, Any], container: Mapping[str, Any], secrets: Mapping[tuple[str, str], str], root: Path) -> dict[str, str]:
    """Write the container's Secret volumes under `root` as the kubelet would
    (only `items` when listed, with the volume's file mode) and return
    {mountPath: folder}. Tests have no chroot: `relocate` points the env there."""
    volumes = {volume["name"]: volume for volume in pod.get("volumes", [])}
    mounted: dict[str, str] = {}
    for mount in container.get("volumeMounts", []):
        source = volumes[mount["name"]].get("secret")
        if source is None:
            continue
        folder = root / mount["mountPath"].strip("/")
        folder.mkdir(parents=True, exist_ok=True)
        name = source["secretName"]
        items = source.get("items") or [{"key": key, "path": key} for (secret, key) in secrets if secret == name]
        for item in items:
            path = folder / item["path"]
            path.write_text(secrets[(name, item["key"])])
            path.chmod(source.get("defaultMode", 0o644))
        mounted[mount["mountPath"]] = str(folder)
    return mounted


def relocate(env: Mapping[str, str], mounted: Mapping[str, str]) -> dict[str, str]:
    """Env values that name a file in a mounted volume, pointed at where the test mounted it."""
    moved = dict(env)
    for name, value in env.items():
        for mount_path, folder in mounted.items():
            if value == mount_path or value.startswith(mount_path.rstrip("/") + "/"):
                moved[name] = folder + value[len(mount_path.rstrip("/")):]
    return moved
