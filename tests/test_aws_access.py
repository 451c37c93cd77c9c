"""AWS access for Ray jobs: the STS bridge against moto (IAM enforced), the Secret, IRSA."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from components.assumed_role_credentials import AssumedRoleCredentialsProvider, AssumeRoleError, needs_renewal
from components.aws_role_bridge import AwsRoleBridge, secret_data
from components.s3_access_role import assume_role_trust_policy, bucket_policy
from raykube.offline import SECRET, run_offline
from tests.conftest import ROOT, run_program, stack_file_config

BUCKET, OTHER = "ray-input", "not-ours"


@pytest.fixture(scope="module")
def aws(moto_server):
    """A deployer who may call sts:AssumeRole, the raykube role (made from the component's
    own policy documents), a role whose trust excludes the deployer, two buckets."""
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
    role = iam.create_role(RoleName="raykube-test-ray-s3", AssumeRolePolicyDocument=json.dumps(assume_role_trust_policy([deployer])))["Role"]
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName="bucket", PolicyDocument=json.dumps(bucket_policy(BUCKET)))
    missing = iam.create_role(RoleName="raykube-missing-bucket", AssumeRolePolicyDocument=json.dumps(assume_role_trust_policy([deployer])))["Role"]
    iam.put_role_policy(RoleName=missing["RoleName"], PolicyName="bucket", PolicyDocument=json.dumps(bucket_policy("no-such-bucket")))
    locked = iam.create_role(
        RoleName="locked", AssumeRolePolicyDocument=json.dumps(assume_role_trust_policy(["arn:aws:iam::123456789012:user/someone-else"]))
    )["Role"]
    return {"keys": (key["AccessKeyId"], key["SecretAccessKey"]), "deployer": deployer, "role": role["Arn"], "locked": locked["Arn"], "missing": missing["Arn"]}


@pytest.fixture
def as_deployer(aws, monkeypatch):
    """The bridge runs in the Pulumi provider process with the deployer's own credentials."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", aws["keys"][0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", aws["keys"][1])
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def props(moto_server, role_arn, **extra):
    return {"role_arn": role_arn, "region": "us-east-1", "endpoint_url": moto_server.url, "session_name": "raykube-test",
            "duration_seconds": 3600, "renew_before_seconds": 1800, "bucket": BUCKET, **extra}


def test_bridge_credentials_use_the_bucket_and_nothing_else(moto_server, aws, as_deployer):
    outs = AssumedRoleCredentialsProvider().create(props(moto_server, aws["role"])).outs
    s3 = moto_server.client("s3", outs["access_key_id"], outs["secret_access_key"], outs["session_token"])
    assert s3.get_object(Bucket=BUCKET, Key="wine.csv")["Body"].read().startswith(b"quality")
    s3.put_object(Bucket=BUCKET, Key="out/model.txt", Body=b"ok")
    s3.delete_object(Bucket=BUCKET, Key="out/model.txt")
    with pytest.raises(ClientError) as denied:
        s3.get_object(Bucket=OTHER, Key="wine.csv")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert datetime.fromisoformat(outs["expiration"]) > datetime.now(timezone.utc) + timedelta(minutes=50)


def test_trust_policy_excluding_the_caller_names_role_and_caller(moto_server, aws, as_deployer):
    with pytest.raises(AssumeRoleError) as error:
        AssumedRoleCredentialsProvider().create(props(moto_server, aws["locked"]))
    assert aws["locked"] in str(error.value) and aws["deployer"] in str(error.value)


def test_bridge_waits_for_a_new_roles_trust_to_propagate(moto_server, aws, as_deployer):
    """Right after a role is created IAM may still deny; the bridge retries within its wait."""
    import threading

    iam = moto_server.admin_client("iam")
    role = iam.create_role(RoleName="late-trust", AssumeRolePolicyDocument=json.dumps(assume_role_trust_policy(["arn:aws:iam::123456789012:user/nobody"])))["Role"]
    iam.put_role_policy(RoleName="late-trust", PolicyName="bucket", PolicyDocument=json.dumps(bucket_policy(BUCKET)))
    grant = threading.Timer(3, lambda: iam.update_assume_role_policy(
        RoleName="late-trust", PolicyDocument=json.dumps(assume_role_trust_policy([aws["deployer"]]))))
    grant.start()
    try:
        started = time.monotonic()
        outs = AssumedRoleCredentialsProvider().create(props(moto_server, role["Arn"], propagation_wait_seconds=30)).outs
        assert time.monotonic() - started >= 3
        assert outs["access_key_id"]
    finally:
        grant.cancel()


def test_missing_bucket_and_region_give_clear_errors(moto_server, aws, as_deployer):
    with pytest.raises(AssumeRoleError, match="bucket no-such-bucket does not exist"):
        AssumedRoleCredentialsProvider().create(props(moto_server, aws["missing"], bucket="no-such-bucket"))
    with pytest.raises(AssumeRoleError, match="no AWS region"):
        AssumedRoleCredentialsProvider().create(props(moto_server, aws["role"], region=None))


def test_diff_renews_inside_the_window_and_not_before(moto_server, aws, as_deployer):
    provider = AssumedRoleCredentialsProvider()
    inputs = props(moto_server, aws["role"])
    outs = provider.create(inputs).outs
    assert provider.diff("id", outs, inputs).changes is False
    expiry = datetime.fromisoformat(outs["expiration"])
    assert not needs_renewal(outs, now=expiry - timedelta(seconds=1801))
    assert needs_renewal(outs, now=expiry - timedelta(seconds=1799))
    near = {**outs, "expiration": (datetime.now(timezone.utc) + timedelta(seconds=600)).isoformat()}
    assert provider.diff("id", near, inputs).changes is True
    assert provider.diff("id", outs, {**inputs, "role_arn": aws["locked"]}).changes is True
    renewed = provider.update("id", near, inputs).outs
    assert datetime.fromisoformat(renewed["expiration"]) > datetime.fromisoformat(near["expiration"])


def test_delete_leaves_nothing_behind(moto_server, aws, as_deployer):
    iam = moto_server.admin_client("iam")
    before = ({r["RoleName"] for r in iam.list_roles()["Roles"]}, {u["UserName"] for u in iam.list_users()["Users"]},
              {k["AccessKeyId"] for u in iam.list_users()["Users"] for k in iam.list_access_keys(UserName=u["UserName"])["AccessKeyMetadata"]})
    provider = AssumedRoleCredentialsProvider()
    outs = provider.create(props(moto_server, aws["role"])).outs
    provider.delete("id", outs)
    after = ({r["RoleName"] for r in iam.list_roles()["Roles"]}, {u["UserName"] for u in iam.list_users()["Users"]},
             {k["AccessKeyId"] for u in iam.list_users()["Users"] for k in iam.list_access_keys(UserName=u["UserName"])["AccessKeyMetadata"]})
    assert after == before


# --- under Pulumi's mocks -----------------------------------------------------

def test_local_stack_creates_role_policy_bridge_and_a_secret_per_namespace():
    config = {**stack_file_config("local"), "raykube:rayClusters": [
        {**stack_file_config("local")["raykube:rayClusters"][0]}, {"name": "second", "namespace": "ray-b"}]}
    result = run_program(config, "local")
    assert len(result.of_type("aws:iam/role:Role")) == 1
    policy = json.loads(result.of_type("aws:iam/rolePolicy:RolePolicy")[0].inputs["policy"])
    assert policy == bucket_policy("my-ray-input-data")
    trust = json.loads(result.of_type("aws:iam/role:Role")[0].inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"AWS": ["arn:aws:iam::123456789012:user/ray-deployer"]}
    secrets = {r.inputs["metadata"]["namespace"]: r for r in result.of_type("kubernetes:core/v1:Secret")}
    assert set(secrets) == {"ray", "ray-b"}
    for secret in secrets.values():
        assert secret.inputs["stringData"] == SECRET and "stringData" in secret.secret_paths
        assert secret.inputs["metadata"]["annotations"]["raykube.io/credentials-expire-at"]
    assert result.outputs["awsRoleArn"].endswith(":role/raykube-local-ray-s3")
    clusters = {r.inputs["metadata"]["name"]: r.inputs["spec"] for r in result.of_type("kubernetes:ray.io/v1:RayCluster")}
    head = clusters["raycluster"]["headGroupSpec"]["template"]["spec"]
    assert head["containers"][0]["envFrom"] == [{"secretRef": {"name": "aws-credentials"}}]
    assert head["volumes"][0]["secret"]["secretName"] == "aws-credentials"
    assert head["containers"][0]["volumeMounts"][0] == {"name": "secret-aws-credentials", "mountPath": "/etc/aws", "readOnly": True}
    assert {"name": "AWS_SHARED_CREDENTIALS_FILE", "value": "/etc/aws/credentials"} in head["containers"][0]["env"]
    for group in clusters["second"]["workerGroupSpecs"]:
        assert group["template"]["spec"]["containers"][0]["envFrom"] == [{"secretRef": {"name": "aws-credentials"}}]
        assert "volumes" not in group["template"]["spec"]
    pool = result.of_type("kubernetes:apps/v1:Deployment")[0].inputs["spec"]["template"]["spec"]
    assert pool["containers"][0]["envFrom"] == [{"secretRef": {"name": "aws-credentials"}}]


def test_every_credential_output_is_secret():
    def program():
        bridge = AwsRoleBridge("bridge", {"role_arn": "arn:aws:iam::000000000000:role/r", "region": "us-east-1", "namespaces": ["ray"]})
        creds = bridge.credentials
        outputs = {"access_key_id": creds.access_key_id, "secret_access_key": creds.secret_access_key,
                   "session_token": creds.session_token, "expiration": bridge.expiration, "role_arn": bridge.role_arn}
        return outputs, {}

    result = run_offline(program, {}, "test")
    assert sorted(result.secret_outputs) == ["access_key_id", "secret_access_key", "session_token"]
    assert result.outputs["role_arn"] == "arn:aws:iam::000000000000:role/r"


def test_offline_render_contains_no_credential_value(tmp_path):
    done = subprocess.run([sys.executable, "-m", "raykube.render", "--stack", "local", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    rendered = "\n".join(path.read_text() for path in tmp_path.rglob("*") if path.is_file())
    assert "aws-bridge-credentials" in {path.stem for path in tmp_path.rglob("*.yaml")}
    for value in ("MOCKACCESSKEYID", "mock-secret-access-key", "mock-session-token"):
        assert value not in rendered and value not in done.stdout


def test_eks_irsa_creates_service_account_and_scoped_trust_and_no_secret(stack_runs):
    result = stack_runs["eks"]
    assert result.of_type("kubernetes:core/v1:Secret") == []
    assert result.of_type("pulumi-python:dynamic:Resource") == []
    accounts = result.of_type("kubernetes:core/v1:ServiceAccount")
    assert len(accounts) == 1
    account = accounts[0].inputs
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == result.outputs["awsRoleArn"]
    trust = json.loads(result.of_type("aws:iam/role:Role")[0].inputs["assumeRolePolicy"])
    statement = trust["Statement"][0]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    issuer = "oidc.eks.us-west-2.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
    assert statement["Condition"]["StringEquals"][f"{issuer}:sub"] == "system:serviceaccount:ray:ray-s3"
    spec = result.of_type("kubernetes:ray.io/v1:RayCluster")[0].inputs["spec"]
    for template in [spec["headGroupSpec"]["template"]] + [group["template"] for group in spec["workerGroupSpecs"]]:
        assert template["spec"]["serviceAccountName"] == "ray-s3"
        assert "envFrom" not in template["spec"]["containers"][0]


# --- a Ray job reads the bucket with plain boto3 ------------------------------

def test_ray_job_reads_the_bucket_with_the_secrets_variables(moto_server, aws, as_deployer, ray_head, tmp_path):
    outs = AssumedRoleCredentialsProvider().create(props(moto_server, aws["role"])).outs
    env = {key: value for key, value in secret_data(outs["access_key_id"], outs["secret_access_key"], outs["session_token"], "us-east-1").items() if key.startswith("AWS_")}
    # moto listens in the host's network; carry it into the sandbox's loopback.
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
        job = (
            "import ray\n"
            f"ray.init(address='{ray_head.gcs_address}', _node_ip_address='{ray_head.head_ip}', logging_level='ERROR',\n"
            f"         runtime_env={{'env_vars': {env!r}}})\n"
            "@ray.remote(num_cpus=0)\n"
            "def read():\n"
            "    import boto3\n"
            "    s3 = boto3.client('s3', endpoint_url='http://127.0.0.5:4566')\n"
            f"    return s3.get_object(Bucket='{BUCKET}', Key='wine.csv')['Body'].read().decode()\n"
            "print('CONTENT', ray.get(read.remote()))\n"
        )
        out = ray_head.python(job, env={key: "" for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")})
        assert "CONTENT quality,alcohol" in out
    finally:
        if inside is not None:
            ray_head.signal(inside, 9)
        host_side.kill()
