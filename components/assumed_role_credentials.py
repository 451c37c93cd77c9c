"""AssumedRoleCredentials: temporary AWS credentials for an IAM role, renewed on `pulumi up`.

A Pulumi dynamic resource: `create` calls STS AssumeRole with boto3 and
returns the credentials as secret outputs; `diff` asks for a new AssumeRole
when the stored credentials are within the renew window of their expiry, or
the role, session or duration changed; `delete` has nothing to remove (STS
credentials cannot be revoked one by one; they expire).
"""

import time
from datetime import datetime, timedelta, timezone
from typing import Any, Optional

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ResourceProvider, UpdateResult

SECRET_OUTPUTS = ["access_key_id", "secret_access_key", "session_token"]
# Inputs kept in the state; a change to any of them needs a fresh AssumeRole.
_TRACKED_INPUTS = (
    "role_arn", "session_name", "duration_seconds", "external_id", "region", "endpoint_url", "renew_before_seconds", "bucket",
)


class AssumeRoleError(Exception):
    """A user-facing failure: says which role, which caller, and what to fix."""


def _client(service: str, props: dict[str, Any]):
    import boto3

    region = props.get("region")
    if not region:
        raise AssumeRoleError("no AWS region: set raykube:awsAccess.region or AWS_REGION")
    return boto3.client(service, region_name=region, endpoint_url=props.get("endpoint_url") or None)


def assume_role(props: dict[str, Any]) -> dict[str, Any]:
    """Call STS AssumeRole; return the credentials and their expiry (ISO 8601, UTC)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    sts = _client("sts", props)
    request: dict[str, Any] = {
        "RoleArn": props["role_arn"],
        "RoleSessionName": props.get("session_name") or "raykube",
        "DurationSeconds": int(props.get("duration_seconds") or 3600),
    }
    if props.get("external_id"):
        request["ExternalId"] = props["external_id"]
    # A role created moments ago in the same `pulumi up` is not yet trusted
    # everywhere (IAM is eventually consistent): retry AccessDenied a while.
    deadline = time.monotonic() + float(props.get("propagation_wait_seconds") or 0)
    while True:
        try:
            credentials = sts.assume_role(**request)["Credentials"]
            break
        except NoCredentialsError:
            raise AssumeRoleError(f"cannot assume {props['role_arn']}: no AWS credentials found for the caller") from None
        except BotoCoreError as error:  # no answer: endpoint down, DNS, proxy, timeout
            where = props.get("endpoint_url") or f"STS in {props.get('region')}"
            raise AssumeRoleError(f"cannot assume {props['role_arn']}: cannot reach {where} ({type(error).__name__})") from None
        except ClientError as error:
            denied = error.response.get("Error", {}).get("Code", "").startswith("AccessDenied")
            if denied and time.monotonic() < deadline:
                time.sleep(2)
                continue
            raise _explained(sts, props["role_arn"], error) from None
    expiration = credentials["Expiration"]
    if isinstance(expiration, datetime):
        expiration = expiration.astimezone(timezone.utc).isoformat()
    outs = {
        **{key: props.get(key) for key in _TRACKED_INPUTS},
        "access_key_id": credentials["AccessKeyId"],
        "secret_access_key": credentials["SecretAccessKey"],
        "session_token": credentials["SessionToken"],
        "expiration": expiration,
    }
    if props.get("bucket"):
        _check_bucket(outs)
    return outs


def _explained(sts, role_arn: str, error) -> AssumeRoleError:
    """Name the role and the caller, and say what to fix."""
    from botocore.exceptions import ClientError

    code = error.response.get("Error", {}).get("Code", "")
    try:
        caller = sts.get_caller_identity()["Arn"]
    except ClientError:
        caller = "(unknown caller)"
    if code.startswith("AccessDenied"):
        return AssumeRoleError(
            f"{caller} may not assume role {role_arn}: the role's trust policy must allow it "
            "(raykube:awsAccess.trustedPrincipals) and the caller needs sts:AssumeRole on the role"
        )
    return AssumeRoleError(f"assuming role {role_arn} as {caller} failed: {code}: {error}")


def _check_bucket(outs: dict[str, Any]) -> None:
    """Fail now, not in a Ray job, if the bucket does not exist."""
    import boto3
    from botocore.exceptions import ClientError

    s3 = boto3.client(
        "s3",
        region_name=outs["region"],
        endpoint_url=outs.get("endpoint_url") or None,
        aws_access_key_id=outs["access_key_id"],
        aws_secret_access_key=outs["secret_access_key"],
        aws_session_token=outs["session_token"],
    )
    try:
        s3.list_objects_v2(Bucket=outs["bucket"], MaxKeys=1)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "NoSuchBucket":
            raise AssumeRoleError(f"S3 bucket {outs['bucket']} does not exist (raykube:awsAccess.bucket)") from None
        raise AssumeRoleError(f"role {outs['role_arn']} cannot list bucket {outs['bucket']}: {code}") from None


def needs_renewal(olds: dict[str, Any], now: Optional[datetime] = None) -> bool:
    expiration = olds.get("expiration")
    if not expiration:
        return True
    now = now or datetime.now(timezone.utc)
    window = timedelta(seconds=int(olds.get("renew_before_seconds") or 0))
    return datetime.fromisoformat(expiration) - window <= now


class AssumedRoleCredentialsProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        outs = assume_role(props)
        return CreateResult(id_=f"{props['role_arn']}#{props.get('session_name') or 'raykube'}", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [key for key in _TRACKED_INPUTS if (olds.get(key) or None) != (news.get(key) or None)]
        if needs_renewal({**olds, "renew_before_seconds": news.get("renew_before_seconds")}):
            changed.append("expiration")
        return DiffResult(changes=bool(changed))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(outs=assume_role(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        # Nothing was created in AWS; the credentials expire on their own.
        return None


class AssumedRoleCredentials(pulumi.dynamic.Resource):
    """Temporary credentials of `role_arn`; the three credential outputs are secrets."""

    access_key_id: pulumi.Output[str]
    secret_access_key: pulumi.Output[str]
    session_token: pulumi.Output[str]
    expiration: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        role_arn: pulumi.Input[str],
        region: pulumi.Input[str],
        session_name: pulumi.Input[str] = "raykube",
        duration_seconds: pulumi.Input[int] = 3600,
        renew_before_seconds: pulumi.Input[int] = 1800,
        external_id: Optional[pulumi.Input[str]] = None,
        endpoint_url: Optional[pulumi.Input[str]] = None,
        bucket: Optional[pulumi.Input[str]] = None,
        propagation_wait_seconds: pulumi.Input[int] = 60,
        opts: Optional[pulumi.ResourceOptions] = None,
    ):
        props = {
            "role_arn": role_arn,
            "region": region,
            "session_name": session_name,
            "duration_seconds": duration_seconds,
            "renew_before_seconds": renew_before_seconds,
            "external_id": pulumi.Output.secret(external_id) if external_id else None,
            "endpoint_url": endpoint_url,
            "bucket": bucket,
            "propagation_wait_seconds": propagation_wait_seconds,
            "access_key_id": None,
            "secret_access_key": None,
            "session_token": None,
            "expiration": None,
        }
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS))
        super().__init__(AssumedRoleCredentialsProvider(), name, props, opts)
        # additional_secret_outputs makes the engine store them encrypted; wrapping
        # them here keeps them secret in this program whatever engine runs it.
        self.access_key_id = pulumi.Output.secret(self.access_key_id)
        self.secret_access_key = pulumi.Output.secret(self.secret_access_key)
        self.session_token = pulumi.Output.secret(self.session_token)
