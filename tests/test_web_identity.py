"""awsAccess.mode webIdentity: the Ray pods' own projected ServiceAccount tokens, exchanged with STS.

On the real API server a token minted for the Ray ServiceAccount with audience sts.amazonaws.com
is handed to botocore exactly as the pods get it (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN) and
reaches the bucket through moto's STS; the role's trust, as the program writes it, is evaluated
against the real tokens' claims: another ServiceAccount's token, or one for another audience, is refused.
"""
from __future__ import annotations

import copy
import json

import pytest

from raykube.settings import SettingsError, parse_settings
from tests.helpers.moto import BUCKET, role_of_run
from tests.helpers.program import ray_pod_templates, run_program, stack_file_config
from tests.helpers.web_identity import STS_AUDIENCE, claims, mint_token, pod_aws_session, trust_allows

def web_identity(stack: str, issuer: str = "oidc.example.com/id/CLUSTER", **more) -> dict:
    config = copy.deepcopy(stack_file_config(stack))
    config["raykube:awsAccess"] = {"mode": "webIdentity", "region": "us-west-2", "bucket": BUCKET, "oidcIssuer": issuer, **more}
    return config


def stack_web_identity(stack: str) -> dict:
    if stack != "local":
        return web_identity(stack)
    # The local kubeadm cluster: its issuer is the one raykube publishes (tests/test_local_issuer.py).
    config = web_identity(stack, issuerBucket="raykube-local-issuer")
    del config["raykube:awsAccess"]["oidcIssuer"]
    return {**config, "raykube:kubeconfig": "/nonexistent/kubeconfig"}


@pytest.mark.parametrize("stack", ["eks", "gke", "aks", "local"])
def test_every_ray_container_gets_the_token_and_the_role_and_no_secret(stack):
    run = run_program(stack_web_identity(stack), stack)
    templates = ray_pod_templates(run)
    assert templates
    (role,) = run.of_type("aws:iam/role:Role")
    for name, template in templates:
        pod = template["spec"]
        assert pod["serviceAccountName"] == "ray-s3", name
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        # (The HPA pool's workers mount Ray's own auth token; no Secret holds anything of AWS.)
        assert not [v for v in volumes.values() if "secret" in v and v["secret"]["secretName"] != "raycluster"], f"{name}: no AWS Secret"
        (token_volume,) = [v for v in volumes.values() if "projected" in v]
        (source,) = token_volume["projected"]["sources"]
        assert source["serviceAccountToken"]["audience"] == STS_AUDIENCE
        assert source["serviceAccountToken"]["expirationSeconds"] <= 3600
        for container in pod["containers"]:
            env = {item["name"]: item.get("value") for item in container.get("env") or ()}
            mounts = {mount["name"]: mount for mount in container["volumeMounts"]}
            mount = mounts[token_volume["name"]]
            assert mount["readOnly"] is True
            assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == f"{mount['mountPath']}/{source['serviceAccountToken']['path']}", name
            assert env["AWS_ROLE_ARN"].endswith(f":role/{role.inputs['name']}") and env["AWS_REGION"] == "us-west-2"
            assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_CONFIG_FILE"} & set(env)
    assert not [r for r in run.of_type("kubernetes:core/v1:Secret") if "aws" in r.inputs["metadata"]["name"]]
    assert not run.of_type("pulumi-python:dynamic:Resource") or all(
        "credentials" not in r.name for r in run.of_type("pulumi-python:dynamic:Resource"))
    (provider,) = run.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    issuer = "https://raykube-local-issuer.s3.us-west-2.amazonaws.com" if stack == "local" else "https://oidc.example.com/id/CLUSTER"
    assert provider.inputs["url"] == issuer and provider.inputs["clientIdLists"] == [STS_AUDIENCE]


def test_a_given_oidc_provider_is_trusted_and_none_is_created():
    arn = "arn:aws:iam::123456789012:oidc-provider/oidc.example.com/id/CLUSTER"
    run = run_program(web_identity("eks", oidcProviderArn=arn), "eks")
    assert not run.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    (role,) = run.of_type("aws:iam/role:Role")
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {"Federated": arn}


@pytest.mark.parametrize("target,access,key", [
    ("local", {"mode": "webIdentity", "region": "us-west-2", "bucket": BUCKET, "oidcIssuer": "oidc.example.com/id/X"}, "awsAccess.oidcIssuer"),
    ("local", {"mode": "webIdentity", "region": "us-west-2", "bucket": BUCKET}, "awsAccess.issuerBucket"),
    ("gke", {"mode": "webIdentity", "region": "us-west-2", "bucket": BUCKET, "issuerBucket": "my-issuer"}, "awsAccess.issuerBucket"),
    ("local", {"mode": "irsa", "region": "us-west-2", "bucket": BUCKET, "issuerBucket": "my-issuer"}, "awsAccess.issuerBucket"),
    ("local", {"mode": "webIdentity", "region": "us-west-2", "bucket": BUCKET, "issuerBucket": "my.issuer"}, "awsAccess.issuerBucket"),
    ("gke", {"mode": "webIdentity", "region": "us-west-2", "bucket": BUCKET}, "awsAccess.oidcIssuer"),
    ("gke", {"mode": "webIdentity", "region": "us-west-2", "bucket": BUCKET, "oidcIssuer": "http://issuer.example.com"}, "awsAccess.oidcIssuer"),
    ("aks", {"mode": "irsa", "region": "us-west-2", "bucket": BUCKET, "oidcIssuer": "a.example.com",
             "oidcProviderArn": "arn:aws:iam::123456789012:oidc-provider/a.example.com"}, "awsAccess.mode"),
    ("gke", {"mode": "webIdentity", "region": "us-west-2", "bucket": BUCKET, "oidcIssuer": "a.example.com", "tokenExpirationSeconds": 60},
     "awsAccess.tokenExpirationSeconds"),
])
def test_impossible_web_identity_settings_are_one_error_naming_the_key(target, access, key):
    with pytest.raises(SettingsError) as error:
        parse_settings({"target": target, "awsAccess": access}, f"stacks/Pulumi.{target}.yaml")
    assert error.value.keys == [f"raykube:{key}"], error.value.problems


def test_a_pods_token_reaches_the_bucket_and_other_tokens_are_refused_by_the_trust(control_plane, moto_server, tmp_path, monkeypatch):
    from kubernetes import client

    from tests.helpers.envtest import server_side_apply

    api = client.CoreV1Api(control_plane.api_client())

    def token(namespace: str, account: str, audience: str) -> str:
        return mint_token(api, namespace, account, [audience])

    # The cluster's issuer, as its tokens say: what the stack's oidcIssuer names.
    probe_namespace = "wi-probe"
    server_side_apply(control_plane.dynamic(), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": probe_namespace}}, "tests")
    server_side_apply(control_plane.dynamic(), {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "probe", "namespace": probe_namespace}}, "tests")
    issuer = claims(token(probe_namespace, "probe", STS_AUDIENCE))["iss"]

    config = web_identity("gke", issuer=issuer.removeprefix("https://"))
    config["raykube:rayClusters"] = [{"name": "wi", "namespace": "wi-ray"}]
    config.pop("raykube:rayJobs", None)
    run = run_program(config, "gke")
    for obj in [r.revealed_inputs for r in run.kubernetes_objects() if r.inputs["kind"] in ("Namespace", "ServiceAccount")]:
        server_side_apply(control_plane.dynamic(), obj, "pulumi-kubernetes")
    (role,) = run.of_type("aws:iam/role:Role")
    (provider,) = run.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    provider_arn = f"arn:aws:iam::000000000000:oidc-provider/{issuer.removeprefix('https://')}"
    assert provider.inputs["url"] == issuer

    ray_token = token("wi-ray", "ray-s3", STS_AUDIENCE)
    assert claims(ray_token)["sub"] == "system:serviceaccount:wi-ray:ray-s3" and claims(ray_token)["aud"] == [STS_AUDIENCE]
    assert trust_allows(trust, claims(ray_token), provider_arn)
    assert not trust_allows(trust, claims(token(probe_namespace, "probe", STS_AUDIENCE)), provider_arn), "another ServiceAccount"
    assert not trust_allows(trust, claims(token("wi-ray", "ray-s3", "https://kubernetes.default.svc")), provider_arn), "another audience"
    assert not trust_allows(trust, claims(ray_token), provider_arn.replace("000000000000", "111111111111")), "another provider"

    # The pod's view: botocore assumes the role from the token file alone, and reads the bucket.
    role_arn = role_of_run(moto_server, run, "raykube-wi-test", BUCKET, "wine.csv", b"quality\n5\n")
    with pod_aws_session(moto_server, ray_token, role_arn, tmp_path, monkeypatch) as session:
        credentials = session.get_credentials()
        assert credentials.method == "assume-role-with-web-identity"
        bucket = session.client("s3", endpoint_url=moto_server.url)
        assert bucket.get_object(Bucket=BUCKET, Key="wine.csv")["Body"].read() == b"quality\n5\n"
        # The role may use this bucket only.
        with pytest.raises(Exception, match="AccessDenied"):
            bucket.list_objects_v2(Bucket="not-ours")


def test_raykube_status_says_what_renews_the_pods_credentials():
    from raykube.namespace_status import credentials_status

    config = {key.removeprefix("raykube:"): value for key, value in web_identity("gke").items()}
    settings = parse_settings(config, "stacks/Pulumi.gke.yaml")
    entry = credentials_status(settings, None, "ray-training")  # nothing to read from the cluster: no Secret
    assert entry["ready"] and entry["mode"] == "webIdentity" and "renewed by the kubelet" in entry["state"]


# --- where nothing in the cluster can renew: the host's system timer ----------------------------


def test_a_secret_mode_up_says_the_renewal_is_the_hosts_job():
    local = run_program(stack_file_config("local"), "local")
    (warning,) = [line for line in local.warnings if line.startswith("awsAccess.mode secret")]
    assert "1 h" in warning and "system timer" in warning and "issuer" in warning
    cloud = run_program({**stack_file_config("gke"), "raykube:awsAccess": {"mode": "secret", "region": "us-west-2", "bucket": BUCKET,
                                                                           "trustedPrincipals": ["arn:aws:iam::123456789012:user/d"]}}, "gke")
    assert any("webIdentity needs no renewal" in line for line in cloud.warnings)


def test_the_documented_renewal_units_are_valid_systemd_units(tmp_path):
    import re
    import shutil
    import subprocess

    from tests.helpers.program import ROOT

    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    page = (ROOT / "docs" / "aws-credentials-renewal.md").read_text()
    units = dict(re.findall(r"```ini\n# /etc/systemd/system/(raykube-renew\.\w+)\n(.*?)```", page, flags=re.S))
    assert set(units) == {"raykube-renew.service", "raykube-renew.timer"}
    for name, text in units.items():
        # Paths of this checkout for the placeholders, so verify can resolve the command.
        text = text.replace("/path/to/raykube", str(ROOT)).replace("User=deployer", "User=root")
        (tmp_path / name).write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / "raykube-renew.timer"), str(tmp_path / "raykube-renew.service")],
                          capture_output=True, text=True, timeout=60)
    problems = [line for line in (done.stdout + done.stderr).splitlines() if "raykube-renew" in line]
    assert done.returncode == 0 and problems == [], done.stdout + done.stderr
