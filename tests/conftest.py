"""Shared fixtures: the program under Pulumi's mocks, one Ray cluster and one moto server per session."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from raykube.offline import OfflineRun, run_offline, stack_config_values  # noqa: E402

from raykube.render import stack_names  # noqa: E402

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


BUCKET, OTHER = "ray-input", "not-ours"


# --- AWS: roles made from the program's own documents, in the session's moto ---

def program_role_documents(bucket: str, principals: list[str]) -> tuple[str, str]:
    """The trust and permission policies the program itself creates for a secret-mode stack."""
    config = {**stack_file_config("local"), "raykube:awsAccess": {
        "mode": "secret", "region": "us-east-1", "bucket": bucket, "trustedPrincipals": principals}}
    result = run_program(config, "local")
    (role,) = result.of_type("aws:iam/role:Role")
    (policy,) = result.of_type("aws:iam/rolePolicy:RolePolicy")
    return role.inputs["assumeRolePolicy"], policy.inputs["policy"]


def create_program_role(iam, name: str, bucket: str, principals: list[str]) -> str:
    trust, policy = program_role_documents(bucket, principals)
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]
    iam.put_role_policy(RoleName=name, PolicyName="bucket", PolicyDocument=policy)
    return role["Arn"]


@pytest.fixture(scope="session")
def aws(moto_server):
    """A deployer who may call sts:AssumeRole; roles made from the program's own
    policy documents (one trusting the deployer, one for a missing bucket, one
    trusting someone else); two buckets."""
    iam, s3 = moto_server.admin_client("iam"), moto_server.admin_client("s3")
    for bucket in (BUCKET, OTHER):
        s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket=bucket, Key="wine.csv", Body=b"quality,alcohol\n5,9.4\n")
    iam.create_user(UserName="deployer")
    iam.put_user_policy(
        UserName="deployer", PolicyName="assume",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}),
    )
    key = iam.create_access_key(UserName="deployer")["AccessKey"]
    deployer = moto_server.client("sts", key["AccessKeyId"], key["SecretAccessKey"]).get_caller_identity()["Arn"]
    return {
        "keys": (key["AccessKeyId"], key["SecretAccessKey"]),
        "deployer": deployer,
        "role": create_program_role(iam, "raykube-test-ray-s3", BUCKET, [deployer]),
        "missing": create_program_role(iam, "raykube-missing-bucket", "no-such-bucket", [deployer]),
        "locked": create_program_role(iam, "locked", BUCKET, ["arn:aws:iam::123456789012:user/someone-else"]),
    }


@pytest.fixture
def as_deployer(aws, monkeypatch):
    """The bridge runs in the Pulumi provider process with the deployer's own credentials."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", aws["keys"][0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", aws["keys"][1])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


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


@pytest.fixture
def moto_in_sandbox(moto_server, ray_head, tmp_path):
    """moto listens in the host's network; a relay carries it into the sandbox's loopback."""
    socket_path = str(tmp_path / "moto.sock")
    bridge_script = str(Path(__file__).with_name("unix_tcp_bridge.py"))
    host_side = subprocess.Popen([sys.executable, bridge_script, "unix-to-tcp", socket_path, "127.0.0.1", str(moto_server.port)])
    inside = None
    try:
        for _ in range(50):
            if Path(socket_path).exists():
                break
            time.sleep(0.1)
        inside = ray_head.spawn([sys.executable, bridge_script, "tcp-to-unix", "127.0.0.5", "4566", socket_path], "moto-bridge")
        time.sleep(1)
        yield "http://127.0.0.5:4566"
    finally:
        if inside is not None:
            ray_head.signal(inside, 9)
        host_side.kill()


