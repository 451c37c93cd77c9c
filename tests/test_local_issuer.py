"""awsAccess.mode webIdentity on the local kubeadm target: raykube publishes the cluster's issuer.

The kubeadm config carries the issuer flags; kubeadm itself renders the kube-apiserver command
from it, and a real kube-apiserver runs with those flags (on the session's etcd and keys). What
the program publishes, read from that API server as `pulumi up` reads it, is what it serves at
/.well-known/openid-configuration and /openid/v1/jwks, at the URLs its discovery document names;
its tokens reach the bucket through moto's STS; the cluster's existing tokens stay valid; and a
`pulumi up` that cannot reach the cluster keeps what is published.
"""
from __future__ import annotations

import copy
import json

import pytest

from raykube.settings import SettingsError, parse_settings
from tests.helpers.moto import role_of_run
from tests.helpers.program import run_program, stack_file_config
from tests.helpers.web_identity import (
    STS_AUDIENCE, IssuerApiServer, claims, kubeadm_apiserver_flags, mint_token, pod_aws_session, trust_allows,
)

ISSUER_BUCKET = "raykube-local-issuer-test"
# The Ray data bucket of these tests: their own, so the session's shared buckets keep exactly their objects.
BUCKET = "ray-input-local-issuer"
REGION = "us-west-2"
ISSUER = f"https://{ISSUER_BUCKET}.s3.{REGION}.amazonaws.com"
OBJECTS = "aws:s3/bucketObjectv2:BucketObjectv2"


def local_web_identity(**more) -> dict:
    config = copy.deepcopy(stack_file_config("local"))
    # kubeadm v1.36 (the project's build) renders control planes of 1.35 or later.
    config["raykube:kubernetesVersion"] = "1.36.2"
    config["raykube:awsAccess"] = {"mode": "webIdentity", "region": REGION, "bucket": BUCKET, "issuerBucket": ISSUER_BUCKET, **more}
    config["raykube:rayClusters"] = [{"name": "wi", "namespace": "wi-local"}]
    config.pop("raykube:rayJobs", None)
    config.pop("raykube:observability", None)
    # Before `kubeadm init`: no cluster to read (the tests that have one point here).
    config["raykube:kubeconfig"] = "/nonexistent/kubeconfig"
    return config


def published(run) -> dict[str, str]:
    return {obj.inputs["key"]: obj.inputs["content"] for obj in run.of_type(OBJECTS)}


def test_old_kubernetes_cannot_keep_its_tokens_beside_a_published_issuer():
    config = {key.removeprefix("raykube:"): value for key, value in local_web_identity().items()}
    config["kubernetesVersion"] = "1.30"
    with pytest.raises(SettingsError) as error:
        parse_settings(config, "stacks/Pulumi.local.yaml")
    assert error.value.keys == ["raykube:kubernetesVersion"], error.value.problems


def test_the_issuer_bucket_is_readable_by_anyone_only_for_the_two_documents():
    run = run_program(local_web_identity(endpointUrl="http://127.0.0.1:9"), "local")
    (policy,) = run.of_type("aws:s3/bucketPolicy:BucketPolicy")
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    assert statement["Effect"] == "Allow" and statement["Principal"] == "*" and statement["Action"] == "s3:GetObject"
    assert sorted(statement["Resource"]) == sorted(
        [f"arn:aws:s3:::{ISSUER_BUCKET}/.well-known/openid-configuration", f"arn:aws:s3:::{ISSUER_BUCKET}/openid/v1/jwks"])
    (block,) = run.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert block.inputs["blockPublicAcls"] and block.inputs["ignorePublicAcls"], "no object is public by ACL"
    (ownership,) = run.of_type("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership.inputs["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    # The Ray data bucket is not the issuer's: it stays private, and it is not made public here.
    assert {bucket.inputs["bucket"] for bucket in run.of_type("aws:s3/bucket:Bucket")} == {ISSUER_BUCKET}


def test_the_first_up_before_kubeadm_init_publishes_nothing_and_says_when():
    run = run_program(local_web_identity(endpointUrl="http://127.0.0.1:9"), "local")
    assert published(run) == {}
    (warning,) = [line for line in run.warnings if line.startswith("awsAccess.issuerBucket")]
    assert "after `kubeadm init`" in warning and "nothing is published" in warning
    (provider,) = run.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert provider.inputs["url"] == ISSUER


@pytest.fixture(scope="module")
def issuer_cluster(control_plane, tmp_path_factory):
    """The local stack's kubeadm config, and a real kube-apiserver run with the flags kubeadm renders from it."""
    workdir = tmp_path_factory.mktemp("issuer")
    first_up = run_program(local_web_identity(endpointUrl="http://127.0.0.1:9"), "local")
    kubeadm_config = first_up.outputs["kubeadmConfig"]
    flags = kubeadm_apiserver_flags(kubeadm_config, workdir)
    server = IssuerApiServer(control_plane, flags, workdir)
    try:
        yield server, kubeadm_config, flags
    finally:
        server.close()


def test_the_kubeadm_config_signs_as_the_published_issuer_and_still_accepts_the_old_tokens(issuer_cluster, control_plane):
    from kubernetes import client

    server, kubeadm_config, flags = issuer_cluster
    assert flags[0] == f"--service-account-issuer={ISSUER}", "the first issuer signs"
    # The cluster's tokens from before the change: signed by the same key as kubernetes.default.svc.
    session_core = client.CoreV1Api(control_plane.api_client())
    core = client.CoreV1Api(server.api_client())
    # One cluster state (one etcd), as after the API server's restart with the new flags.
    session_core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="issuer-probe")))
    session_core.create_namespaced_service_account("issuer-probe", client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="app")))
    old_token = mint_token(session_core, "issuer-probe", "app", None)
    new_token = mint_token(core, "issuer-probe", "app", None)
    assert claims(old_token)["iss"] == "https://kubernetes.default.svc.cluster.local"
    assert claims(new_token)["iss"] == ISSUER
    # In-cluster tokens keep the audience they always had (what in-cluster verifiers, e.g. Vault's, are set up with).
    assert claims(new_token)["aud"] == claims(old_token)["aud"] == ["https://kubernetes.default.svc.cluster.local"]
    reviews = client.AuthenticationV1Api(server.api_client())
    for what, token in (("a token from before the change", old_token), ("an in-cluster token with the default audience", new_token)):
        review = reviews.create_token_review(client.V1TokenReview(spec=client.V1TokenReviewSpec(token=token)))
        assert review.status.authenticated, f"{what} is refused: {review.status.error}"


def test_what_the_program_publishes_is_what_the_cluster_serves_and_its_tokens_reach_the_bucket(
        issuer_cluster, moto_server, tmp_path, monkeypatch):
    from kubernetes import client, dynamic

    from tests.helpers.envtest import server_side_apply

    server, _, _ = issuer_cluster
    # `pulumi up` after `kubeadm init`: the program reads the cluster's documents through the Kubernetes API.
    config = local_web_identity(endpointUrl=moto_server.url)
    config["raykube:kubeconfig"] = str(server.kubeconfig)
    run = run_program(config, "local")
    assert not [line for line in run.warnings if line.startswith("awsAccess.issuerBucket")], run.warnings
    documents = published(run)
    served_discovery = json.loads(server.get("/.well-known/openid-configuration"))
    served_jwks = json.loads(server.get("/openid/v1/jwks"))
    assert json.loads(documents[".well-known/openid-configuration"]) == served_discovery
    assert json.loads(documents["openid/v1/jwks"]) == served_jwks
    # Where IAM looks: the discovery document at the issuer, the keys where the document says.
    assert served_discovery["issuer"] == ISSUER == run.outputs["serviceAccountIssuer"]
    assert served_discovery["jwks_uri"] == f"{ISSUER}/openid/v1/jwks"
    (provider,) = run.of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert provider.inputs["url"] == ISSUER and provider.inputs["clientIdLists"] == [STS_AUDIENCE]

    # A Ray pod's token, minted for its ServiceAccount by this API server, against the role's trust.
    for obj in [r.revealed_inputs for r in run.kubernetes_objects() if r.inputs["kind"] in ("Namespace", "ServiceAccount")]:
        server_side_apply(dynamic.DynamicClient(server.api_client()), obj, "pulumi-kubernetes")
    core = client.CoreV1Api(server.api_client())
    ray_token = mint_token(core, "wi-local", "ray-s3", [STS_AUDIENCE])
    (role,) = run.of_type("aws:iam/role:Role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    provider_arn = f"arn:aws:iam::000000000000:oidc-provider/{ISSUER.removeprefix('https://')}"
    assert trust_allows(trust, claims(ray_token), provider_arn)
    assert not trust_allows(trust, claims(mint_token(core, "wi-local", "ray-s3", ["https://kubernetes.default.svc.cluster.local"])), provider_arn)

    role_arn = role_of_run(moto_server, run, "raykube-local-wi-test", BUCKET, "local.csv", b"quality\n6\n")
    with pod_aws_session(moto_server, ray_token, role_arn, tmp_path, monkeypatch) as session:
        assert session.get_credentials().method == "assume-role-with-web-identity"
        assert session.client("s3", endpoint_url=moto_server.url).get_object(Bucket=BUCKET, Key="local.csv")["Body"].read() == b"quality\n6\n"


def test_an_up_that_cannot_reach_the_cluster_keeps_what_is_published(issuer_cluster, moto_server, monkeypatch):
    server, _, _ = issuer_cluster
    # The deployer's own AWS credentials, which `pulumi up` uses for everything AWS.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", moto_server.admin[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", moto_server.admin[1])
    s3 = moto_server.admin_client("s3")
    if ISSUER_BUCKET not in {b["Name"] for b in s3.list_buckets()["Buckets"]}:
        s3.create_bucket(Bucket=ISSUER_BUCKET)
    discovery, jwks = server.get("/.well-known/openid-configuration"), server.get("/openid/v1/jwks")
    # What the last `pulumi up` published. (moto answers every GET of a `.well-known/openid-configuration`
    # path with its Cognito document, so of the two copies the program reads back, only the JWKS is compared.)
    s3.put_object(Bucket=ISSUER_BUCKET, Key="openid/v1/jwks", Body=jwks)
    s3.put_object(Bucket=ISSUER_BUCKET, Key=".well-known/openid-configuration", Body=discovery)

    config = local_web_identity(endpointUrl=moto_server.url)
    config["raykube:kubeconfig"] = "/nonexistent/kubeconfig"  # a teammate's machine, VPN down
    run = run_program(config, "local")
    documents = published(run)
    assert set(documents) == {".well-known/openid-configuration", "openid/v1/jwks"}, "nothing is unpublished"
    assert json.loads(documents["openid/v1/jwks"]) == json.loads(jwks)
    (warning,) = [line for line in run.warnings if line.startswith("awsAccess.issuerBucket")]
    assert "stay as they are" in warning and "cannot give its issuer documents" in warning


def test_an_api_server_not_yet_restarted_with_the_stacks_issuer_is_not_published(control_plane, moto_server, monkeypatch):
    # The session's API server signs as kubernetes.default.svc.cluster.local: the user changed the stack
    # (mode webIdentity) but has not yet applied the kubeadm config's flags.
    config = local_web_identity(endpointUrl=moto_server.url, issuerBucket="raykube-not-applied-yet")
    config["raykube:kubeconfig"] = control_plane.kubeconfig
    run = run_program(config, "local")
    assert published(run) == {}
    (warning,) = [line for line in run.warnings if line.startswith("awsAccess.issuerBucket")]
    assert "https://kubernetes.default.svc.cluster.local" in warning and "kubeadm init phase control-plane apiserver" in warning


@pytest.mark.parametrize("version", ["1.31", "1.33"])
def test_kubeadm_still_accepts_the_file_with_the_issuer_flags(version, tmp_path):
    import subprocess

    from tests.helpers.cluster_processes import binary

    config = {**local_web_identity(endpointUrl="http://127.0.0.1:9"), "raykube:kubernetesVersion": version}
    path = tmp_path / "kubeadm-config.yaml"
    path.write_text(run_program(config, "local").outputs["kubeadmConfig"])
    done = subprocess.run([binary("kubeadm"), "config", "validate", "--config", str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"value: {ISSUER}" in path.read_text()
