"""AWS access for Ray jobs: the STS bridge against moto (IAM enforced), the Secret, IRSA."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from botocore.exceptions import ClientError

from components.assumed_role_credentials import AssumedRoleCredentialsProvider, AssumeRoleError, needs_renewal
from components.aws_role_bridge import AwsRoleBridge, secret_data
from raykube.offline import SECRET, run_offline
from tests.helpers.moto import BUCKET, OTHER, create_program_role, program_role_documents
from tests.helpers.program import ROOT, STACKS, ray_pod_templates, run_program, stack_file_config
from tests.helpers.kubelet import write_like_kubelet
from tests.helpers.upstream import validate_object



def props(moto_server, role_arn, **extra):
    return {"role_arn": role_arn, "region": "us-east-1", "endpoint_url": moto_server.url, "session_name": "raykube-test",
            "duration_seconds": 3600, "renew_before_seconds": 1800, "bucket": BUCKET, **extra}


def test_bridge_credentials_use_the_bucket_and_nothing_else(moto_server, aws, as_deployer):
    outs = AssumedRoleCredentialsProvider().create(props(moto_server, aws["role"])).outs
    s3 = moto_server.client("s3", outs["access_key_id"], outs["secret_access_key"], outs["session_token"])
    assert s3.get_object(Bucket=BUCKET, Key="wine.csv")["Body"].read().startswith(b"quality")
    s3.put_object(Bucket=BUCKET, Key="out/model.txt", Body=b"ok")
    s3.delete_object(Bucket=BUCKET, Key="out/model.txt")
    assert [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET)["Contents"]] == ["wine.csv"]
    assert datetime.fromisoformat(outs["expiration"]) > datetime.now(timezone.utc) + timedelta(minutes=50)
    denied_probes = {
        "GetObject on another bucket": lambda: s3.get_object(Bucket=OTHER, Key="wine.csv"),
        "PutObject on another bucket": lambda: s3.put_object(Bucket=OTHER, Key="x", Body=b"x"),
        "ListBucket on another bucket": lambda: s3.list_objects_v2(Bucket=OTHER),
        "DeleteBucket on its own bucket": lambda: s3.delete_bucket(Bucket=BUCKET),
        "PutBucketPolicy on its own bucket": lambda: s3.put_bucket_policy(Bucket=BUCKET, Policy=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BUCKET}/*"}]})),
        "PutBucketAcl on its own bucket": lambda: s3.put_bucket_acl(Bucket=BUCKET, ACL="public-read"),
        "CreateBucket": lambda: s3.create_bucket(Bucket="ray-new-bucket"),
        "ListAllMyBuckets": lambda: s3.list_buckets(),
    }
    allowed = []
    for probe, call in denied_probes.items():
        try:
            call()
            allowed.append(probe)
        except ClientError as denied:
            assert denied.response["Error"]["Code"] == "AccessDenied", (probe, denied.response["Error"])
    assert allowed == [], f"the Ray role may do more than its jobs need: {allowed}"
    assert moto_server.admin_client("s3").head_bucket(Bucket=BUCKET)


def test_trust_policy_excluding_the_caller_names_role_and_caller(moto_server, aws, as_deployer):
    with pytest.raises(AssumeRoleError) as error:
        AssumedRoleCredentialsProvider().create(props(moto_server, aws["locked"]))
    assert aws["locked"] in str(error.value) and aws["deployer"] in str(error.value)


def test_bridge_waits_for_a_new_roles_trust_to_propagate(moto_server, aws, as_deployer):
    """Right after a role is created IAM may still deny; the bridge retries within its wait."""
    import threading

    iam = moto_server.admin_client("iam")
    role_arn = create_program_role(iam, "late-trust", BUCKET, ["arn:aws:iam::123456789012:user/nobody"])
    trusting_deployer, _ = program_role_documents(BUCKET, [aws["deployer"]])
    grant = threading.Timer(3, lambda: iam.update_assume_role_policy(RoleName="late-trust", PolicyDocument=trusting_deployer))
    grant.start()
    try:
        started = time.monotonic()
        outs = AssumedRoleCredentialsProvider().create(props(moto_server, role_arn, propagation_wait_seconds=30)).outs
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

AWS_CREDENTIAL_VARIABLES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"}


def test_local_stack_creates_role_policy_bridge_and_a_secret_per_namespace():
    config = {**stack_file_config("local"), "raykube:rayClusters": [
        {**stack_file_config("local")["raykube:rayClusters"][0]}, {"name": "second", "namespace": "ray-b"}]}
    result = run_program(config, "local")
    assert len(result.of_type("aws:iam/role:Role")) == 1
    statements = json.loads(result.of_type("aws:iam/rolePolicy:RolePolicy")[0].inputs["policy"])["Statement"]
    assert all(statement["Effect"] == "Allow" for statement in statements)
    resources = {resource for statement in statements for resource in ([statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"])}
    assert resources == {"arn:aws:s3:::my-ray-input-data", "arn:aws:s3:::my-ray-input-data/*"}
    actions = {action for statement in statements for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])}
    assert not any("*" in action for action in actions)
    trust = json.loads(result.of_type("aws:iam/role:Role")[0].inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Principal"] == {"AWS": ["arn:aws:iam::123456789012:user/ray-deployer"]}
    secrets = {r.inputs["metadata"]["namespace"]: r for r in result.of_type("kubernetes:core/v1:Secret")
               if r.inputs["metadata"]["name"] == "aws-credentials"}
    assert set(secrets) == {"ray", "ray-b"}
    for secret in secrets.values():
        assert "stringData" in secret.secret_paths
        assert set(secret.revealed_inputs["stringData"]) == {"config", "credential-process.json"}
        assert secret.inputs["metadata"]["annotations"]["raykube.io/credentials-expire-at"]
    assert result.outputs["awsRoleArn"].endswith(":role/raykube-local-ray-s3")
    templates = ray_pod_templates(result)
    assert {name for name, _ in templates} >= {"raycluster head", "second head", "second cpu", "raycluster-cpu-workers"}
    for name, template in templates:
        pod = template["spec"]
        (volume,) = [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == "aws-credentials"]
        mode = volume["secret"]["defaultMode"]
        assert mode & ~0o440 == 0, f"{name}: credentials readable beyond the Ray user and group ({oct(mode)})"
        assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"]
        container = pod["containers"][0]
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
        assert mount == {"name": volume["name"], "mountPath": "/etc/aws", "readOnly": True}  # the directory: no subPath
        env = {item["name"]: item for item in container.get("env", [])}
        assert env["AWS_CONFIG_FILE"]["value"] == "/etc/aws/config"
        assert not AWS_CREDENTIAL_VARIABLES & set(env), name
        assert "envFrom" not in container, name


@pytest.mark.parametrize("stack", STACKS)
def test_no_ray_container_takes_aws_credentials_from_its_environment(stack_runs, stack):
    for name, template in ray_pod_templates(stack_runs[stack]):
        for container in template["spec"]["containers"]:
            env = {item["name"] for item in container.get("env", [])}
            assert not AWS_CREDENTIAL_VARIABLES & env, f"{stack} {name}"
            for source in container.get("envFrom", []):
                assert "secretRef" not in source, f"{stack} {name}: Secret values as environment variables go stale"


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


@pytest.mark.parametrize("stack", STACKS)
def test_offline_render_is_valid_and_contains_no_credential_value(tmp_path, stack):
    done = subprocess.run([sys.executable, "-m", "raykube.render", "--stack", stack, "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    rendered = "\n".join(path.read_text() for path in tmp_path.rglob("*") if path.is_file())
    for value in ("MOCKACCESSKEYID", "mock-secret-access-key", "mock-session-token"):
        assert value not in rendered and value not in done.stdout
    for path in (tmp_path / "kubernetes").rglob("*.yaml"):
        obj = yaml.safe_load(path.read_text())
        validate_object(obj, "1.33")  # as written, secrets redacted
        if obj["kind"] == "Secret":
            assert obj["stringData"] and set(obj["stringData"].values()) == {SECRET}, "keys visible, values redacted"
    if stack == "local":
        assert "aws-bridge-credentials" in {path.stem for path in tmp_path.rglob("*.yaml")}
        secret = yaml.safe_load((tmp_path / "kubernetes/ray/secret-aws-credentials.yaml").read_text())
        assert set(secret["stringData"]) == {"config", "credential-process.json"}


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
    assert statement["Principal"] == {"Federated": "arn:aws:iam::123456789012:oidc-provider/" + issuer}
    # Both: :sub pins the service account, :aud that the token was minted for STS.
    assert statement["Condition"]["StringEquals"] == {
        f"{issuer}:sub": "system:serviceaccount:ray:ray-s3", f"{issuer}:aud": "sts.amazonaws.com"}
    spec = result.of_type("kubernetes:ray.io/v1:RayCluster")[0].inputs["spec"]
    for template in [spec["headGroupSpec"]["template"]] + [group["template"] for group in spec["workerGroupSpecs"]]:
        assert template["spec"]["serviceAccountName"] == "ray-s3"
        assert "envFrom" not in template["spec"]["containers"][0]


# --- a running Ray actor picks up renewed credentials -------------------------

def test_running_actor_uses_renewed_credentials_without_restart(moto_server, aws, as_deployer, ray_head, moto_in_sandbox, tmp_path, stack_runs):
    from tests.helpers.rotating_reader import RotatingReader

    provider = AssumedRoleCredentialsProvider()
    # 15-minute credentials: botocore re-reads a refreshable source when fewer
    # than 15 minutes are left, as it does in production before each expiry.
    first = provider.create(props(moto_server, aws["role"], duration_seconds=900)).outs
    mount = tmp_path / "aws"
    write_like_kubelet(mount, secret_data(first, "us-east-1", str(mount)))
    # The environment every Ray container of the local stack gets, with the mount path of this test.
    (head,) = [t for name, t in ray_pod_templates(stack_runs["local"]) if name == "raycluster head"]
    env = {item["name"]: item["value"].replace("/etc/aws", str(mount))
           for item in head["spec"]["containers"][0]["env"] if item["name"].startswith("AWS_")}
    assert set(env) >= {"AWS_CONFIG_FILE", "AWS_REGION"}
    # Nothing else may supply credentials: no inherited variables, no home-directory files.
    env.update({name: "" for name in AWS_CREDENTIAL_VARIABLES}, AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    reader = RotatingReader(ray_head, env, moto_in_sandbox, BUCKET, "wine.csv", tmp_path / "rotations", 1, "rotating-driver")
    before = reader.read(0)
    assert before["key"] == first["access_key_id"] and before["body"].startswith("quality")
    # `pulumi up` or `raykube credentials renew`: a new AssumeRole, the Secret updated, the kubelet swaps the files.
    second = provider.update("id", first, props(moto_server, aws["role"], duration_seconds=900)).outs
    assert second["access_key_id"] != first["access_key_id"]
    write_like_kubelet(mount, secret_data(second, "us-east-1", str(mount)))
    reader.rotated(1)
    after = reader.read(1)
    assert reader.finish() == 0, ray_head.log("rotating-driver")
    assert after["pid"] == before["pid"], "the actor was restarted"
    assert after["key"] == second["access_key_id"], "the running actor kept the old credentials"
    assert after["body"].startswith("quality")


# --- `raykube credentials renew|status` against moto and a real API server ---

def _secret_config(moto_server, role_arn: str, kubeconfig: str, namespaces=("ray", "ray-b")) -> dict:
    return {
        "raykube:target": "local",
        "raykube:kubeconfig": kubeconfig,
        "raykube:rayClusters": [{"name": f"rc-{namespace}", "namespace": namespace,
                                 "workerGroups": [{"name": "cpu", "autoscaling": "fixed", "replicas": 1}]} for namespace in namespaces],
        "raykube:awsAccess": {"mode": "secret", "region": "us-east-1", "bucket": BUCKET, "roleArn": role_arn,
                              "endpointUrl": moto_server.url, "sessionDurationSeconds": 900, "renewBeforeSeconds": 300},
    }


@pytest.fixture
def deployed(moto_server, aws, control_plane, tmp_path):
    """A secret-mode stack whose Namespaces and Secrets `pulumi up` has applied (mock credentials)."""
    from tests.helpers.envtest import server_side_apply

    config = _secret_config(moto_server, aws["role"], control_plane.kubeconfig)
    client = control_plane.dynamic()
    for resource in run_program(config, "renewtest").kubernetes_objects():
        if resource.inputs["kind"] in ("Namespace", "Secret"):
            server_side_apply(client, resource.revealed_inputs, "pulumi-kubernetes")
    stack_file = tmp_path / "Pulumi.renewtest.yaml"
    stack_file.write_text(yaml.safe_dump({"config": config}))
    return {"file": stack_file, "config": config}


def _secrets(control_plane, namespaces=("ray", "ray-b")) -> dict:
    core = control_plane.dynamic().resources.get(api_version="v1", kind="Secret")
    return {namespace: core.get(name="aws-credentials", namespace=namespace).to_dict() for namespace in namespaces}


def _credentials_in(secret: dict) -> dict:
    import base64

    return json.loads(base64.b64decode(secret["data"]["credential-process.json"]))


def test_renew_updates_every_namespace_and_the_credentials_work(deployed, moto_server, control_plane, as_deployer, capsys):
    from raykube.cli.credentials import main

    assert main(["renew", "--config", str(deployed["file"])]) == 0
    out = capsys.readouterr()
    secrets = _secrets(control_plane)
    for namespace, secret in secrets.items():
        credentials = _credentials_in(secret)
        assert credentials["AccessKeyId"] != "MOCKACCESSKEYID", namespace
        assert credentials["Version"] == 1
        assert secret["metadata"]["annotations"]["raykube.io/credentials-expire-at"].startswith(credentials["Expiration"][:16])
        s3 = moto_server.client("s3", credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"])
        assert s3.get_object(Bucket=BUCKET, Key="wine.csv")["Body"].read().startswith(b"quality")
        assert credentials["AccessKeyId"] not in out.out + out.err and credentials["SecretAccessKey"] not in out.out + out.err
    assert "expire at" in out.out
    assert main(["status", "--config", str(deployed["file"])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines[:-1]] == ["ray: ok", "ray-b: ok"]  # 15 min left, 5-min renew window
    # The stack has no issuer AWS trusts: the renewal is a host's job, and was just now.
    assert lines[-1].startswith("renewal: by a host") and "last renewal" in lines[-1] and "(0 min ago)" in lines[-1]
    # Later: inside the renew window a warning, past the expiry an error.
    from raykube.cli.credentials import status
    from raykube.stack_file import read_stack_file

    expiry = datetime.fromisoformat(_credentials_in(secrets["ray"])["Expiration"].replace("Z", "+00:00"))
    lines, healthy = status(read_stack_file(None, deployed["file"]), now=expiry - timedelta(minutes=2))
    assert healthy and all(": WARNING expires at" in line and "renew now" in line for line in lines[:-1])
    lines, healthy = status(read_stack_file(None, deployed["file"]), now=expiry + timedelta(seconds=1))
    assert not healthy and all(": EXPIRED at" in line for line in lines[:-1])


def test_failed_assume_role_changes_nothing_and_names_the_role(deployed, moto_server, aws, control_plane, as_deployer, capsys):
    from raykube.cli.credentials import main

    before = {ns: s["metadata"]["resourceVersion"] for ns, s in _secrets(control_plane).items()}
    locked = {**deployed["config"], "raykube:awsAccess": {**deployed["config"]["raykube:awsAccess"], "roleArn": aws["locked"]}}
    deployed["file"].write_text(yaml.safe_dump({"config": locked}))
    assert main(["renew", "--config", str(deployed["file"])]) == 1
    err = capsys.readouterr().err
    assert aws["locked"] in err and "no Secret was changed" in err and "Traceback" not in err
    assert {ns: s["metadata"]["resourceVersion"] for ns, s in _secrets(control_plane).items()} == before


def test_status_reports_missing_and_expired_secrets(deployed, moto_server, aws, control_plane, capsys, tmp_path):
    from raykube.cli.credentials import main

    config = _secret_config(moto_server, aws["role"], control_plane.kubeconfig, namespaces=("ray", "ray-missing"))
    stack_file = tmp_path / "Pulumi.status.yaml"
    stack_file.write_text(yaml.safe_dump({"config": config}))
    assert main(["status", "--config", str(stack_file)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("ray-missing: MISSING") for line in lines)
    # `ray` still holds the mock credentials `pulumi up` applied (expiry 2099): fine.
    assert any(line.startswith("ray: ok") for line in lines)


def test_renew_refuses_stacks_without_a_credentials_secret(capsys):
    from raykube.cli.credentials import main

    assert main(["renew", "--stack", "eks"]) == 2  # the help: a stack without a credentials Secret is unusable for renew
    err = capsys.readouterr().err
    assert "raykube:awsAccess.mode is 'irsa'" in err and "stacks/Pulumi.eks.yaml" in err
    assert main(["renew", "--stack", "no-such-stack"]) == 2


def test_pulumi_takes_the_secret_back_after_a_renewal(deployed, moto_server, control_plane, as_deployer, capsys):
    """The CLI's update makes it a field manager of the Secret's data; Pulumi's next
    server-side apply conflicts unless forced, hence `pulumi.com/patchForce` on the Secret."""
    from raykube.cli.credentials import main
    from tests.helpers.envtest import ApplyError, server_side_apply

    assert main(["renew", "--config", str(deployed["file"])]) == 0
    (secret,) = [r.revealed_inputs for r in run_program(deployed["config"], "renewtest").of_type("kubernetes:core/v1:Secret")
                 if r.inputs["metadata"]["namespace"] == "ray"]
    assert secret["metadata"]["annotations"]["pulumi.com/patchForce"] == "true"
    client = control_plane.dynamic()
    with pytest.raises(ApplyError) as conflict:
        server_side_apply(client, secret, "pulumi-kubernetes", force=False)
    assert conflict.value.status == 409
    server_side_apply(client, secret, "pulumi-kubernetes")  # forced, as the annotation makes Pulumi do
    assert _credentials_in(_secrets(control_plane)["ray"])["AccessKeyId"] == "MOCKACCESSKEYID"
