"""A CronJob's pod, run on this machine as the kubelet would run it: its container's command and env,
and at their mount paths exactly the files the kubelet puts there (the ServiceAccount's API token and
CA, projected tokens minted by the real API server, the ConfigMaps' files read back from it), in a
private mount namespace, so nothing of the host's /run or /opt is seen or changed."""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping

from tests.helpers.web_identity import mint_token

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# The private roots the staged files go under (tmpfs in the pod's own mount namespace).
ROOTS = ("/run", "/opt")


def pod_files(plane, cron_job: Mapping[str, Any]) -> dict[str, str]:
    """{absolute path: content} of what the kubelet mounts into the CronJob's pod."""
    from kubernetes import client

    pod = cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    namespace = cron_job["metadata"]["namespace"]
    core = client.CoreV1Api(plane.api_client())
    account = pod["serviceAccountName"]
    files = {
        f"{SERVICE_ACCOUNT_DIR}/token": mint_token(core, namespace, account, None),
        f"{SERVICE_ACCOUNT_DIR}/ca.crt": (plane.directory / "pki" / "ca.crt").read_text(),
        f"{SERVICE_ACCOUNT_DIR}/namespace": namespace,
    }
    mounts = {mount["name"]: mount["mountPath"] for mount in container["volumeMounts"]}
    for volume in pod["volumes"]:
        where = mounts[volume["name"]]
        if "configMap" in volume:
            for key, text in (core.read_namespaced_config_map(volume["configMap"]["name"], namespace).data or {}).items():
                files[f"{where}/{key}"] = text
        for source in volume.get("projected", {}).get("sources", []):
            token = source["serviceAccountToken"]
            request = client.V1TokenRequestSpec(audiences=[token["audience"]], expiration_seconds=token["expirationSeconds"])
            files[f"{where}/{token['path']}"] = core.create_namespaced_service_account_token(
                account, namespace, client.AuthenticationV1TokenRequest(spec=request)).status.token
    return files


def run_cron_pod(plane, cron_job: Mapping[str, Any], workdir: Path, env_overrides: Mapping[str, str] = (),
                 timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the CronJob's container command once, with its env (plus the Service variables the kubelet
    sets for the API server) and its files; `python` is this machine's interpreter, ignoring PYTHON* variables and
    without site-packages (-E -s -S): the standard library only, as a bare image would have."""
    from urllib.parse import urlparse

    import yaml

    pod = cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    files = pod_files(plane, cron_job)
    stage = workdir / "pod-root"
    for path, text in files.items():
        assert path.startswith(tuple(f"{root}/" for root in ROOTS)) or path.startswith("/var/run/"), path
        target = stage / path.replace("/var/run/", "/run/").lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    server = urlparse(yaml.safe_load((plane.directory / "kubeconfig").read_text())["clusters"][0]["cluster"]["server"])
    import os

    env = {"PATH": os.environ["PATH"], **{item["name"]: item["value"] for item in container.get("env", [])}}
    env.update(KUBERNETES_SERVICE_HOST=server.hostname, KUBERNETES_SERVICE_PORT=str(server.port), **dict(env_overrides))
    command = list(container["command"])
    assert command[0] == "python", command
    command = [sys.executable, "-E", "-s", "-S", *command[1:]]
    script = " && ".join(
        [f"mount -t tmpfs tmpfs {root} && cp -a {shlex.quote(str(stage / root.lstrip('/')))}/. {root}/" for root in ROOTS
         if (stage / root.lstrip("/")).exists()] + ["exec " + shlex.join(command)]
    )
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env, capture_output=True, text=True, timeout=timeout)
