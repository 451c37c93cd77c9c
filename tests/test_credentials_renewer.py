"""awsAccess.mode secret, renewed in the cluster: the CredentialsRenewer CronJob.

Its pod is run as the kubelet runs it (tests/helpers/cron_pod.py): the container's command and
env from the CronJob the program renders, the script from the ConfigMap as the real API server
stores it, tokens minted by that API server for the renewer's ServiceAccount. It assumes the role
through moto's STS with its web-identity token and rewrites the credentials Secret of every Ray
namespace and nothing else; a running Ray actor keeps reading the bucket across two renewals.
"""
from __future__ import annotations

import base64
import copy
import json

import pytest

from raykube.settings import SettingsError, parse_settings
from tests.helpers.moto import role_of_run
from tests.helpers.program import run_program, stack_file_config
from tests.helpers.web_identity import STS_AUDIENCE, claims, mint_token, trust_allows

RAY_NAMESPACES = ("renew-a", "renew-b")
# The Ray data bucket of these tests: their own, so the session's shared buckets keep exactly their objects.
BUCKET = "ray-input-renewer"
RENEWER_NAMESPACE = "raykube-credentials"
PRINCIPAL = "arn:aws:iam::123456789012:user/ray-deployer"


def renewed_stack(stack: str = "gke", issuer: str = "oidc.example.com/id/CLUSTER", **more) -> dict:
    config = copy.deepcopy(stack_file_config(stack))
    access = {"mode": "secret", "region": "us-east-1", "bucket": BUCKET, "trustedPrincipals": [PRINCIPAL], **more}
    if stack == "local":
        access["issuerBucket"] = "raykube-renewer-issuer"
        config["raykube:kubeconfig"] = "/nonexistent/kubeconfig"
    else:
        access["oidcIssuer"] = issuer
    config["raykube:awsAccess"] = access
    config["raykube:rayClusters"] = [{"name": f"rc-{namespace}", "namespace": namespace} for namespace in RAY_NAMESPACES]
    config.pop("raykube:rayJobs", None)
    config.pop("raykube:rayServices", None)  # in a namespace of the stack file's, which this one renames away
    config.pop("raykube:observability", None)
    return config


def objects(run, kind: str) -> list[dict]:
    return [resource.revealed_inputs for resource in run.kubernetes_objects() if resource.inputs["kind"] == kind]


@pytest.mark.parametrize("stack", ["local", "gke", "eks", "aks"])
def test_the_renewer_may_touch_only_the_credentials_secrets_and_the_role_trusts_only_it(stack):
    run = run_program(renewed_stack(stack), stack)
    renewer_namespace = f"raykube-credentials-{stack}"  # the stack's own: stacks sharing a cluster never share it
    assert not [line for line in run.warnings if line.startswith("awsAccess.mode secret")], "nothing for a host to do"
    (cron_job,) = objects(run, "CronJob")
    assert cron_job["metadata"]["namespace"] == renewer_namespace and cron_job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"]
    env = {item["name"]: item["value"] for item in pod["containers"][0]["env"]}
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env), "no long-lived key in the cluster"
    roles = objects(run, "Role")
    renewer_roles = [role for role in roles if role["metadata"]["name"].startswith("credentials-renewer")]
    assert sorted(role["metadata"]["namespace"] for role in renewer_roles) == sorted(RAY_NAMESPACES)
    for role in renewer_roles:
        assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["aws-credentials"], "verbs": ["get", "patch"]}]
    assert not [b for b in objects(run, "ClusterRoleBinding") if "renew" in b["metadata"]["name"]]
    (namespace,) = [n for n in objects(run, "Namespace") if n["metadata"]["name"] == renewer_namespace]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    trust = json.loads(run.of_type("aws:iam/role:Role")[0].inputs["assumeRolePolicy"])
    federated = [s for s in trust["Statement"] if s["Action"] == "sts:AssumeRoleWithWebIdentity"]
    (statement,) = federated
    subjects = [value for key, value in statement["Condition"]["StringEquals"].items() if key.endswith(":sub")]
    assert subjects == [f"system:serviceaccount:{renewer_namespace}:credentials-renewer"], "the Ray pods' accounts may not assume it"
    assert run.outputs["credentialsRenewer"]["schedule"] == "*/20 * * * *"
    from tests.helpers.upstream import validate_object

    for kind in ("CronJob", "Role", "RoleBinding", "ServiceAccount", "ConfigMap", "Namespace"):
        for obj in objects(run, kind):
            validate_object(obj, str(renewed_stack(stack).get("raykube:kubernetesVersion", "1.33")))  # official schema, strict


def test_without_an_issuer_the_host_renews_and_pulumi_up_says_so():
    config = renewed_stack("gke")
    del config["raykube:awsAccess"]["oidcIssuer"]
    run = run_program(config, "gke")
    assert not objects(run, "CronJob")
    assert any(line.startswith("awsAccess.mode secret") and "system timer" in line and "oidcIssuer" in line for line in run.warnings)


@pytest.mark.parametrize("target,access,key", [
    ("gke", {"renewal": "cluster"}, "awsAccess.renewal"),
    ("gke", {"oidcIssuer": "a.example.com", "renewalIntervalMinutes": 25}, "awsAccess.renewalIntervalMinutes"),
    ("gke", {"oidcIssuer": "a.example.com", "renewalIntervalMinutes": 30, "sessionDurationSeconds": 900, "renewBeforeSeconds": 300},
     "awsAccess.renewalIntervalMinutes"),
    ("gke", {"oidcIssuer": "a.example.com", "renewerNamespace": "ray-training"}, "awsAccess.renewerNamespace"),
    ("gke", {"oidcIssuer": "a.example.com", "renewerNamespace": "Not_A_Name"}, "awsAccess.renewerNamespace"),
    ("local", {"renewal": "cluster"}, "awsAccess.renewal"),
])
def test_impossible_renewal_settings_are_one_error_naming_the_key(target, access, key):
    raw = {"target": target, "awsAccess": {"mode": "secret", "region": "us-east-1", "bucket": BUCKET, "trustedPrincipals": [PRINCIPAL], **access}}
    if target == "gke":
        raw["rayClusters"] = [{"name": "training", "namespace": "ray-training"}]
    with pytest.raises(SettingsError) as error:
        parse_settings(raw, f"stacks/Pulumi.{target}.yaml")
    assert error.value.keys == [f"raykube:{key}"], error.value.problems


# --- the renewer's pod, run as the CronJob runs it, against the real API server and moto ----------


@pytest.fixture(scope="module")
def renewer_cluster(control_plane, moto_server):
    """The program's objects for a stack whose issuer is the session API server's own, applied as `pulumi up` applies them,
    with its role made in moto; plus Secrets the renewer must not touch."""
    from kubernetes import client

    from tests.helpers.envtest import server_side_apply

    core = client.CoreV1Api(control_plane.api_client())
    probe = "renewer-issuer-probe"
    server_side_apply(control_plane.dynamic(), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": probe}}, "tests")
    server_side_apply(control_plane.dynamic(), {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "probe", "namespace": probe}}, "tests")
    issuer = claims(mint_token(core, probe, "probe", [STS_AUDIENCE]))["iss"].removeprefix("https://")
    config = renewed_stack("gke", issuer=issuer, endpointUrl=moto_server.url, sessionDurationSeconds=900, renewBeforeSeconds=300,
                           renewalIntervalMinutes=5, renewerNamespace=RENEWER_NAMESPACE)
    run = run_program(config, "gke")
    for kind in ("Namespace", "ServiceAccount", "ConfigMap", "Role", "RoleBinding", "Secret", "CronJob"):
        for obj in objects(run, kind):
            server_side_apply(control_plane.dynamic(), obj, "pulumi-kubernetes")
    # Bystanders: another Secret in a Ray namespace, and a Secret of the same name in a namespace that is not Ray's.
    server_side_apply(control_plane.dynamic(), {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bystander"}}, "tests")
    for namespace, name in ((RAY_NAMESPACES[0], "other"), ("bystander", "aws-credentials")):
        server_side_apply(control_plane.dynamic(), {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
                                                    "stringData": {"x": "untouched"}}, "tests")
    s3 = moto_server.admin_client("s3")
    role_arn = role_of_run(moto_server, run, "raykube-renewer-test", BUCKET, "renewer.csv", b"quality\n7\n")
    (cron_job,) = objects(run, "CronJob")
    # The role as moto made it (the program's ARN names the mocks' account, which moto does not have).
    for item in cron_job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]:
        if item["name"] == "AWS_ROLE_ARN":
            item["value"] = role_arn
    assert s3.head_bucket(Bucket=BUCKET)
    return {"run": run, "config": config, "cron_job": cron_job, "role_arn": role_arn, "issuer": issuer}


def secret_state(control_plane) -> dict:
    from kubernetes import client

    core = client.CoreV1Api(control_plane.api_client())
    found = {}
    for namespace, name in [*((namespace, "aws-credentials") for namespace in RAY_NAMESPACES), (RAY_NAMESPACES[0], "other"), ("bystander", "aws-credentials")]:
        secret = core.read_namespaced_secret(name, namespace)
        found[(namespace, name)] = {"version": secret.metadata.resource_version, "data": secret.data, "annotations": secret.metadata.annotations or {}}
    return found


def credentials_of(state: dict, namespace: str) -> dict:
    return json.loads(base64.b64decode(state[(namespace, "aws-credentials")]["data"]["credential-process.json"]))


def run_renewer(control_plane, moto_server, renewer_cluster, tmp_path, sts_url: str | None = None):
    from tests.helpers.cron_pod import run_cron_pod
    from tests.helpers.moto import SigningStsRelay

    relay = SigningStsRelay(moto_server)  # moto's STS stands in for AWS's (tests/helpers/moto.py: why the relay)
    try:
        return run_cron_pod(control_plane, renewer_cluster["cron_job"], tmp_path, {"AWS_ENDPOINT_URL_STS": sts_url or relay.url})
    finally:
        relay.close()


def test_the_renewers_pod_rewrites_every_ray_namespaces_secret_and_nothing_else(control_plane, moto_server, renewer_cluster, tmp_path):
    before = secret_state(control_plane)
    done = run_renewer(control_plane, moto_server, renewer_cluster, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    after = secret_state(control_plane)
    for namespace in RAY_NAMESPACES:
        old, new = credentials_of(before, namespace), credentials_of(after, namespace)
        assert new["AccessKeyId"] != old["AccessKeyId"], namespace
        annotations = after[(namespace, "aws-credentials")]["annotations"]
        assert annotations["raykube.io/credentials-expire-at"] == new["Expiration"] or annotations["raykube.io/credentials-expire-at"].startswith(new["Expiration"][:16])
        assert "raykube.io/credentials-renewed-at" in annotations
        s3 = moto_server.client("s3", new["AccessKeyId"], new["SecretAccessKey"], new["SessionToken"])
        assert s3.get_object(Bucket=BUCKET, Key="renewer.csv")["Body"].read() == b"quality\n7\n"
        assert new["SecretAccessKey"] not in done.stdout + done.stderr and new["SessionToken"] not in done.stdout + done.stderr
    for bystander in ((RAY_NAMESPACES[0], "other"), ("bystander", "aws-credentials")):
        assert after[bystander]["version"] == before[bystander]["version"], f"{bystander} was changed"


def test_the_renewers_account_is_refused_everything_else(control_plane, renewer_cluster):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(control_plane.api_client())
    token = mint_token(core, RENEWER_NAMESPACE, "credentials-renewer", None)
    configuration = copy.copy(control_plane.api_client().configuration)
    configuration.cert_file = configuration.key_file = None
    configuration.api_key = {"authorization": f"Bearer {token}"}
    as_renewer = client.CoreV1Api(client.ApiClient(configuration))
    assert as_renewer.read_namespaced_secret("aws-credentials", RAY_NAMESPACES[0]).metadata.name == "aws-credentials"
    for what, call in {
        "another Secret of a Ray namespace": lambda: as_renewer.patch_namespaced_secret("other", RAY_NAMESPACES[0], {"stringData": {"x": "y"}}),
        "the same name outside the Ray namespaces": lambda: as_renewer.patch_namespaced_secret("aws-credentials", "bystander", {"stringData": {"x": "y"}}),
        "listing Secrets": lambda: as_renewer.list_namespaced_secret(RAY_NAMESPACES[0]),
        "deleting its Secret": lambda: as_renewer.delete_namespaced_secret("aws-credentials", RAY_NAMESPACES[0]),
    }.items():
        with pytest.raises(ApiException) as refused:
            call()
        assert refused.value.status == 403, what
    # AWS's side: the role's trust takes the renewer's STS token, not a Ray pod's.
    trust = json.loads(renewer_cluster["run"].of_type("aws:iam/role:Role")[0].inputs["assumeRolePolicy"])
    (provider,) = renewer_cluster["run"].of_type("aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    provider_arn = f"arn:aws:iam::000000000000:oidc-provider/{renewer_cluster['issuer']}"
    assert provider.inputs["url"] == f"https://{renewer_cluster['issuer']}"
    assert trust_allows(trust, claims(mint_token(core, RENEWER_NAMESPACE, "credentials-renewer", [STS_AUDIENCE])), provider_arn)
    core.create_namespaced_service_account(RAY_NAMESPACES[0], client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="a-ray-pod")))
    assert not trust_allows(trust, claims(mint_token(core, RAY_NAMESPACES[0], "a-ray-pod", [STS_AUDIENCE])), provider_arn)


def test_a_failed_renewal_changes_no_secret_and_says_why_in_one_line(control_plane, moto_server, renewer_cluster, tmp_path):
    before = secret_state(control_plane)
    done = run_renewer(control_plane, moto_server, renewer_cluster, tmp_path, sts_url="http://127.0.0.1:9")
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "cannot reach STS at http://127.0.0.1:9" in done.stderr and "Traceback" not in done.stderr
    assert secret_state(control_plane) == before


def test_a_running_actor_keeps_reading_the_bucket_across_two_renewals(control_plane, moto_server, renewer_cluster, ray_head,
                                                                      moto_in_sandbox, tmp_path):
    from components.credentials_secret import CONFIG_KEY, CREDENTIALS_KEY
    from tests.helpers.kubelet import write_like_kubelet
    from tests.helpers.program import ray_pod_templates
    from tests.helpers.rotating_reader import RotatingReader

    namespace = RAY_NAMESPACES[0]
    mount = tmp_path / "aws"

    def kubelet_sync() -> dict:
        """The kubelet's update of the Secret volume: the Secret as the API server now has it, the config naming this test's mount."""
        state = secret_state(control_plane)[(namespace, "aws-credentials")]["data"]
        files = {key: base64.b64decode(value).decode() for key, value in state.items()}
        files[CONFIG_KEY] = files[CONFIG_KEY].replace("/etc/aws", str(mount))
        write_like_kubelet(mount, files)
        return json.loads(files[CREDENTIALS_KEY])

    assert run_renewer(control_plane, moto_server, renewer_cluster, tmp_path / "first").returncode == 0
    first = kubelet_sync()
    (head,) = [t for name, t in ray_pod_templates(renewer_cluster["run"]) if name == f"rc-{namespace} head"]
    env = {item["name"]: item["value"].replace("/etc/aws", str(mount))
           for item in head["spec"]["containers"][0]["env"] if item["name"].startswith("AWS_")}
    env.update({name: "" for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")},
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    reader = RotatingReader(ray_head, env, moto_in_sandbox, BUCKET, "renewer.csv", tmp_path / "rotations", 2, "renewer-reader")
    reads = [reader.read(0)]
    keys = [first["AccessKeyId"]]
    for rotation in (1, 2):
        done = run_renewer(control_plane, moto_server, renewer_cluster, tmp_path / f"run-{rotation}")
        assert done.returncode == 0, done.stderr
        keys.append(kubelet_sync()["AccessKeyId"])
        reader.rotated(rotation)
        reads.append(reader.read(rotation))
    assert reader.finish() == 0, ray_head.log("renewer-reader")
    assert len(set(keys)) == 3, "each renewal is new credentials"
    assert [read["key"] for read in reads] == keys, "the running actor kept old credentials"
    assert {read["pid"] for read in reads} == {reads[0]["pid"]}, "the actor was restarted"
    assert all(read["body"] == "quality\n7\n" for read in reads)


def test_credentials_status_shows_the_last_renewal_and_the_next(control_plane, moto_server, renewer_cluster, tmp_path, capsys):
    from datetime import datetime, timedelta, timezone

    import yaml

    from raykube.cli.credentials import main, next_slot

    assert run_renewer(control_plane, moto_server, renewer_cluster, tmp_path).returncode == 0
    stack_file = tmp_path / "Pulumi.renewer.yaml"
    stack_file.write_text(yaml.safe_dump({"config": {**renewer_cluster["config"], "raykube:kubeconfig": control_plane.kubeconfig}}))
    started = datetime.now(timezone.utc)
    assert main(["status", "--config", str(stack_file)]) == 0
    ended = datetime.now(timezone.utc)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines[:-1]] == [f"{namespace}: ok" for namespace in RAY_NAMESPACES]
    renewal = lines[-1]
    assert renewal.startswith(f"renewal: in the cluster, CronJob {RENEWER_NAMESPACE}/credentials-renewer every 5 min")
    assert "last renewal" in renewal and "(0 min ago)" in renewal
    assert any(f"next {next_slot(5, at).strftime('%H:%M')} UTC" in renewal for at in (started, ended)), renewal
    # No Job of the CronJob has run here (no kubelet): status says where to look.
    assert "WARNING its Jobs have not succeeded yet" in renewal

    # The CronJob controller's record of the last success, as it writes it (the status subresource).
    from kubernetes import client

    batch = client.BatchV1Api(control_plane.api_client())

    def renewal_line_after_success(at: datetime) -> str:
        batch.patch_namespaced_cron_job_status("credentials-renewer", RENEWER_NAMESPACE,
                                               {"status": {"lastSuccessfulTime": at.strftime("%Y-%m-%dT%H:%M:%SZ")}})
        assert main(["status", "--config", str(stack_file)]) == 0
        return capsys.readouterr().out.splitlines()[-1]

    assert "WARNING" not in renewal_line_after_success(datetime.now(timezone.utc))
    stale = datetime.now(timezone.utc) - timedelta(minutes=2 * 5 + 6)
    assert f"WARNING its Jobs have not succeeded since {stale.strftime('%H:%M')} UTC" in renewal_line_after_success(stale)
