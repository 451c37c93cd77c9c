"""Fixtures only (helpers live in tests/helpers): the program under Pulumi's mocks, one Ray
cluster, one moto server and one control plane per session."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.helpers.program import STACKS, run_program, stack_file_config  # noqa: E402  (puts the project on sys.path)
from tests.helpers.moto import BUCKET, OTHER, MotoServer, create_program_role  # noqa: E402
from tests.helpers.ray_sandbox import HEAD_GROUP  # noqa: E402
from raykube.offline import OfflineRun  # noqa: E402


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
    from tests.helpers.ray_sandbox import RaySandbox

    sandbox = RaySandbox()
    yield sandbox
    sandbox.close()


@pytest.fixture(scope="session")
def ray_head(ray_sandbox):
    """The session's head, started with exactly the params RayCluster generates for HEAD_GROUP,
    plus the one KubeRay adds: --metrics-export-port (on a port of the sandbox's: tests/helpers/ray_ports.py)."""
    from components.ray_cluster import ray_cluster_spec
    from components.ray_node import ray_resources, ray_start_args
    from tests.helpers.ray_ports import SANDBOX_HEAD_METRICS_PORT

    spec = ray_cluster_spec({"ray_version": "x", "image": "x", "head": HEAD_GROUP, "worker_groups": []})
    start_args = [*ray_start_args(spec["headGroupSpec"]["rayStartParams"]), f"--metrics-export-port={SANDBOX_HEAD_METRICS_PORT}"]
    ray_sandbox.start_head(start_args, memory=ray_resources(HEAD_GROUP["resources"])["memory"])
    return ray_sandbox


@pytest.fixture(scope="session")
def moto_server():
    server = MotoServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory):
    """One real kube-apiserver + etcd for the session (the project's build), with the KubeRay v1.7.0
    CRDs and the Prometheus operator's (PodMonitor, ServiceMonitor, PrometheusRule) from
    ../shared/upstream installed by server-side apply; stopped also when tests fail."""
    from tests.helpers.envtest import ControlPlane, install_stack_crds

    plane = ControlPlane(tmp_path_factory.mktemp("envtest"))
    try:
        install_stack_crds(plane.dynamic())
        yield plane
    finally:
        plane.stop()


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


@pytest.fixture
def moto_in_sandbox(moto_server, ray_head, tmp_path):
    """moto listens in the host's network; a relay carries it into the sandbox's loopback."""
    socket_path = str(tmp_path / "moto.sock")
    bridge_script = str(Path(__file__).parent / "helpers" / "unix_tcp_bridge.py")
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




@pytest.fixture(scope="session")
def simulated_cluster(control_plane, stack_runs):
    """The session's control plane with the real scheduler, kwok nodes shaped like the
    targets', metrics-server and real KubeRay operators (started per namespace by
    pulumi_up); the controller-manager and metrics-server run with the local stack's
    settings (its kubeadm flags, its metrics-server chart values)."""
    from tests.helpers.simulated_cluster import SimulatedCluster, controller_manager_flags, metrics_server_flags

    local = stack_runs["local"]
    (chart,) = [r for r in local.of_type("kubernetes:helm.sh/v4:Chart") if r.inputs.get("chart") == "metrics-server"]
    cluster = SimulatedCluster(control_plane, controller_manager_flags(local.outputs["kubeadmConfig"]), metrics_server_flags(chart.inputs["values"]))
    yield cluster
    cluster.stop()


@pytest.fixture
def up(simulated_cluster):
    """`pulumi up` of one stack on the simulated cluster, each over the state the one
    before left (tests/helpers/pulumi_up.py); its namespaces discarded afterwards."""
    from tests.helpers.pulumi_up import discard, pulumi_up

    runs = []

    def apply(config: dict, stack: str):
        run = run_program(config, stack)
        deployed = pulumi_up(simulated_cluster, run, runs[-1] if runs else None)
        runs.append(run)
        return run, deployed

    yield apply
    if runs:
        discard(simulated_cluster, runs[-1])
