"""Every CLI failure a newcomer meets is one line naming what failed and what to do, with
the exit status the help documents, and no traceback: addresses without a scheme,
unreachable API servers and AWS endpoints, missing credentials, settings that do not fit."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest
import yaml

from tests.helpers.program import ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unreachable_kubeconfig(path, port: int) -> str:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "gone",
        "clusters": [{"name": "gone", "cluster": {"server": f"https://127.0.0.1:{port}", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "u"}}],
    }))
    return str(path)


def stack_with(tmp_path, **config) -> str:
    stack = tmp_path / "Pulumi.cli.yaml"
    stack.write_text(yaml.safe_dump({"config": {f"raykube:{key}": value for key, value in config.items()}}))
    return str(stack)


def secret_mode(tmp_path, sts_port: int) -> dict:
    return {"awsAccess": {"mode": "secret", "region": "us-east-1", "bucket": "ray-input", "endpointUrl": f"http://127.0.0.1:{sts_port}",
                          "trustedPrincipals": ["arn:aws:iam::123456789012:user/deployer"]},
            "kubeconfig": unreachable_kubeconfig(tmp_path / "kubeconfig", free_port())}


AWS_ENV = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_MAX_ATTEMPTS": "1",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


def case_address_without_scheme(tmp_path):
    return ["raykube.jobs", "status", "raysubmit_1", "--address", "127.0.0.1:9"], {}, 2, "http://127.0.0.1:9"


def case_jobs_api_unreachable(tmp_path):
    port = free_port()
    return ["raykube.jobs", "list", "--address", f"http://127.0.0.1:{port}"], {}, 3, f"127.0.0.1:{port}"


def case_jobs_stack_whose_cluster_is_unreachable(tmp_path):
    port = free_port()
    stack = stack_with(tmp_path, kubeconfig=unreachable_kubeconfig(tmp_path / "kubeconfig", port))
    return ["raykube.jobs", "list", "--config", stack], {"RAY_AUTH_TOKEN": ""}, 3, f"127.0.0.1:{port}"


def case_credentials_status_unreachable_api_server(tmp_path):
    config = secret_mode(tmp_path, free_port())
    server = yaml.safe_load(open(config["kubeconfig"]))["clusters"][0]["cluster"]["server"]
    return ["raykube.credentials", "status", "--config", stack_with(tmp_path, **config)], {}, 1, server


def case_credentials_renew_unreachable_sts(tmp_path):
    port = free_port()
    stack = stack_with(tmp_path, **secret_mode(tmp_path, port))
    return (["raykube.credentials", "renew", "--config", stack, "--role-arn", "arn:aws:iam::123456789012:role/r"],
            AWS_ENV, 1, f"127.0.0.1:{port}")


def case_credentials_renew_without_a_secret_mode(tmp_path):
    return ["raykube.credentials", "renew", "--config", stack_with(tmp_path, awsAccess={"mode": "none"})], {}, 2, "raykube:awsAccess.mode"


def case_credentials_status_of_a_missing_stack(tmp_path):
    return ["raykube.credentials", "status", "--stack", "nosuchstack"], {}, 2, "Pulumi.nosuchstack.yaml"


def case_status_of_an_unreachable_cluster(tmp_path):
    port = free_port()
    stack = stack_with(tmp_path, kubeconfig=unreachable_kubeconfig(tmp_path / "kubeconfig", port))
    return ["raykube.status", "--config", stack], {}, 3, f"127.0.0.1:{port}"


def case_status_of_a_missing_stack(tmp_path):
    return ["raykube.status", "--stack", "nosuchstack"], {}, 2, "Pulumi.nosuchstack.yaml"


def case_render_with_a_typo(tmp_path):
    return ["raykube.render", "--config", stack_with(tmp_path, rayClustrs=[]), "--out", str(tmp_path / "out")], {}, 2, "raykube:rayClustrs"


CASES = [value for name, value in sorted(globals().items()) if name.startswith("case_")]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.__name__.removeprefix("case_"))
def test_a_failure_is_one_line_with_the_documented_status(tmp_path, case):
    argv, env, status, named = case(tmp_path)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env}, stdin=subprocess.DEVNULL)
    assert done.returncode == status, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr  # one error (invalid settings list their keys below it)
    assert named in done.stderr[done.stderr.index("error:"):], done.stderr
    assert time.monotonic() - started < 60  # no minute-long hang in a client's retries


def test_seeding_without_aws_credentials_says_so(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull, AWS_DEFAULT_REGION="us-east-1")
    done = subprocess.run([sys.executable, "seed.py", "--bucket", "ray-input"], cwd=ROOT / "examples" / "wine_shap",
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: no AWS credentials") and "s3://ray-input" in done.stderr


@pytest.mark.parametrize("command", [["raykube.jobs", sub] for sub in ("submit", "logs", "status", "stop", "list")]
                         + [["raykube.credentials", sub] for sub in ("renew", "status")] + [["raykube.status"]])
def test_every_subcommand_help_says_what_it_does(command):
    done = subprocess.run([sys.executable, "-m", *command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    usage, description = done.stdout.split("\n\n", 2)[:2]
    assert usage.startswith("usage:") and description.strip() and not description.lstrip().startswith(("options:", "positional"))
