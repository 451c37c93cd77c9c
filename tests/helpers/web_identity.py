"""Web identity as AWS judges it: a Kubernetes token's claims against a role's trust, and botocore's own
AssumeRoleWithWebIdentity from a token file, through the session's moto; and a kube-apiserver run with
the service-account flags kubeadm renders from a stack's kubeadm config."""
from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

STS_AUDIENCE = "sts.amazonaws.com"


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def trust_allows(trust: dict, token_claims: dict, provider_arn: str) -> bool:
    """IAM's evaluation of a web-identity trust for a token: the Federated principal is the
    token's issuer's provider, and every StringEquals condition on `<issuer>:<claim>` holds."""
    issuer = token_claims["iss"].removeprefix("https://")
    for statement in trust["Statement"]:
        if statement["Effect"] != "Allow" or statement["Action"] != "sts:AssumeRoleWithWebIdentity":
            continue
        if statement["Principal"].get("Federated") != provider_arn:
            continue
        conditions = statement.get("Condition", {}).get("StringEquals", {})
        held = True
        for key, wanted in conditions.items():
            prefix, _, claim = key.rpartition(":")
            wanted = wanted if isinstance(wanted, list) else [wanted]
            value = token_claims.get(claim)
            values = value if isinstance(value, list) else [value]
            held = held and prefix == issuer and any(item in wanted for item in values)
        if held:
            return True
    return False


def mint_token(api, namespace: str, account: str, audiences: list[str] | None) -> str:
    """A token from the TokenRequest API, as the kubelet gets the pods' projected ones (None: the API server's default audience)."""
    from kubernetes import client

    spec = client.V1TokenRequestSpec(audiences=audiences, expiration_seconds=3600)
    return api.create_namespaced_service_account_token(account, namespace, client.AuthenticationV1TokenRequest(spec=spec)).status.token


@contextlib.contextmanager
def pod_aws_session(moto_server, token: str, role_arn: str, tmp_path: Path, monkeypatch) -> Iterator:
    """A boto3 Session with exactly a web-identity pod's environment (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE)
    and no other credential; STS is moto's, behind the relay that lets its unsigned call through."""
    import boto3

    from tests.helpers.moto import SigningStsRelay

    token_file = tmp_path / "token"
    token_file.write_text(token)
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ROLE_ARN", role_arn)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_ROLE_SESSION_NAME", "ray-pod")
    relay = SigningStsRelay(moto_server)  # moto's STS stands in for AWS's (tests/helpers/moto.py: why the relay)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", relay.url)
        yield boto3.Session(region_name="us-west-2")
    finally:
        relay.close()


SERVICE_ACCOUNT_FLAGS = ("--service-account-issuer=", "--service-account-jwks-uri=", "--api-audiences=")


def kubeadm_apiserver_flags(kubeadm_config: str, workdir: Path) -> list[str]:
    """The issuer and audience flags of the kube-apiserver that `kubeadm init --config` would run:
    kubeadm itself renders its static Pod manifest (dry run, no root), and the flags are read from it."""
    import yaml

    from tests.helpers.cluster_processes import binary

    config = workdir / "kubeadm-config.yaml"
    config.write_text(kubeadm_config)
    dry_run = workdir / "kubeadm-dry-run"
    dry_run.mkdir(exist_ok=True)
    done = subprocess.run(
        [binary("kubeadm"), "init", "phase", "control-plane", "apiserver", "--config", str(config), "--dry-run"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "KUBEADM_INIT_DRYRUN_DIR": str(dry_run)},
    )
    assert done.returncode == 0, done.stderr
    manifest = yaml.safe_load((dry_run / "kube-apiserver.yaml").read_text())
    (container,) = manifest["spec"]["containers"]
    return [flag for flag in container["command"] if flag.startswith(SERVICE_ACCOUNT_FLAGS)]


class IssuerApiServer:
    """A second kube-apiserver beside the session's, as in an HA control plane: the same etcd, CA and
    ServiceAccount keys, with the service-account flags of a kubeadm config. It serves the discovery
    document and JWKS a kubeadm cluster with that config serves, and signs its tokens the same way."""

    def __init__(self, plane, flags: list[str], workdir: Path) -> None:
        from tests.helpers.cluster_processes import binary

        pki = plane.directory / "pki"
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"https://127.0.0.1:{port}"
        self.log = open(workdir / "issuer-apiserver.log", "w")
        self.process = subprocess.Popen(
            [
                binary("kube-apiserver"),
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={port}",
                f"--etcd-servers={plane.etcd_url}",
                f"--tls-cert-file={pki}/apiserver.crt", f"--tls-private-key-file={pki}/apiserver.key",
                f"--client-ca-file={pki}/ca.crt",
                f"--service-account-key-file={pki}/sa.pub", f"--service-account-signing-key-file={pki}/sa.key",
                "--service-cluster-ip-range=10.0.0.0/24", "--authorization-mode=Node,RBAC",
                f"--cert-dir={workdir}/generated", "--endpoint-reconciler-type=none", "--profiling=false",
                *flags,
            ],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        kubeconfig = (plane.directory / "kubeconfig").read_text().replace(plane.server, self.url)
        self.kubeconfig = workdir / "issuer-kubeconfig"
        self.kubeconfig.write_text(kubeconfig)
        deadline = time.monotonic() + 90
        while True:
            try:
                self.api_client().call_api("/readyz", "GET", auth_settings=["BearerToken"], _preload_content=False, _request_timeout=2)
                break
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"issuer kube-apiserver did not become ready: {(workdir / 'issuer-apiserver.log').read_text()[-2000:]}")
                time.sleep(0.5)

    def api_client(self):
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=configuration)
        return client.ApiClient(configuration)

    def get(self, path: str) -> bytes:
        response = self.api_client().call_api(path, "GET", auth_settings=["BearerToken"], _preload_content=False, _request_timeout=10)
        return response.data

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
