"""Shared fixtures: the program under Pulumi's mocks, one Ray cluster and one moto server per session."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from raykube.offline import OfflineRun, run_offline, stack_config_values  # noqa: E402

STACKS = sorted(path.stem.removeprefix("Pulumi.") for path in (ROOT / "stacks").glob("Pulumi.*.yaml"))


def stack_file_config(stack: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]


def run_program(stack_config: dict[str, Any], stack: str = "test") -> OfflineRun:
    """Run raykube as `pulumi up` would for a stack file whose `config:` is `stack_config`."""
    from raykube.composition import build
    from raykube.settings import load_settings

    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    config = stack_config_values(stack_config, project.get("config", {}), "raykube")
    return run_offline(lambda: build(load_settings()).as_tuple(), config, stack)


@pytest.fixture(scope="session")
def stack_runs() -> dict[str, OfflineRun]:
    """Every stack in stacks/, run once per session."""
    return {stack: run_program(stack_file_config(stack), stack) for stack in STACKS}


@pytest.fixture
def run() -> Callable[..., OfflineRun]:
    return run_program


@pytest.fixture(scope="session")
def ray_sandbox():
    """One real Ray head for the session, in private network and PID namespaces."""
    from tests.ray_sandbox import RaySandbox

    sandbox = RaySandbox()
    yield sandbox
    sandbox.close()


# The head every real-Ray test shares: CPU 0 as raykube's default head.
HEAD_GROUP = {"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}, "ray_resources": {"CPU": 0}}


@pytest.fixture(scope="session")
def ray_head(ray_sandbox):
    """The session's head, started with exactly the params RayCluster generates for HEAD_GROUP."""
    from components.ray_cluster import ray_cluster_spec
    from components.ray_node import ray_resources, ray_start_args

    spec = ray_cluster_spec({"ray_version": "x", "image": "x", "head": HEAD_GROUP, "worker_groups": []})
    ray_sandbox.start_head(ray_start_args(spec["headGroupSpec"]["rayStartParams"]), memory=ray_resources(HEAD_GROUP["resources"])["memory"])
    return ray_sandbox


class MotoServer:
    """moto_server on 127.0.0.1 with IAM enforced after the first three actions."""

    def __init__(self) -> None:
        import os
        import socket
        import subprocess
        import time

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(self.port)],
            env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        # The three unauthenticated actions make an administrator; IAM applies after.
        iam = self.client("iam", "bootstrap", "bootstrap")
        iam.create_user(UserName="admin")
        iam.put_user_policy(
            UserName="admin", PolicyName="all",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}),
        )
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        self.admin = (key["AccessKeyId"], key["SecretAccessKey"])

    def client(self, service: str, key_id: str, secret: str, token: Optional[str] = None):
        import boto3

        return boto3.client(
            service, region_name="us-east-1", endpoint_url=self.url,
            aws_access_key_id=key_id, aws_secret_access_key=secret, aws_session_token=token,
        )

    def admin_client(self, service: str):
        return self.client(service, *self.admin)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def moto_server():
    server = MotoServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory):
    """One real kube-apiserver + etcd for the session, with the KubeRay v1.7.0 CRDs
    from ../shared/upstream installed by server-side apply; stopped also when tests fail."""
    from tests.envtest import ControlPlane, install_crds
    from tests.upstream import KUBERAY_CRDS, upstream_path

    plane = ControlPlane(tmp_path_factory.mktemp("envtest"))
    try:
        install_crds(plane.dynamic(), [upstream_path(path) for path in KUBERAY_CRDS])
        yield plane
    finally:
        plane.stop()
