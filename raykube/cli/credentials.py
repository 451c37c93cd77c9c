"""`python -m raykube.credentials`: renew the Ray pods' AWS credentials between `pulumi up`s.

  renew  --stack NAME   assume the stack's role again and update the credentials
                        Secret in every Ray namespace; prints the new expiry
  status --stack NAME   each namespace's expiry; warns inside the renew window

Ray containers read the Secret through a mounted AWS config file whose
`credential_process` prints the credentials with their expiry, so running
Ray processes pick up a renewal by themselves (botocore re-reads the file
when fewer than 15 minutes are left). Safe to run from cron or a systemd
timer: it only ever replaces valid credentials with newer ones, and a failed
AssumeRole changes nothing.

Exit status: 0 done; 1 AWS or Kubernetes refused or unreachable (the message
says which and why), or, for status, a Secret expired or missing; 2 unusable
stack file or settings (also: the stack has no credentials Secret, awsAccess.mode
is not secret).
"""
from __future__ import annotations

import argparse
import base64
import json
import sys
from datetime import datetime, timedelta, timezone

from typing import Optional

from raykube.cluster_api import ClusterUnreachable, core_api, reaching
from raykube.stack_file import EXIT_INVALID_SETTINGS, StackFileError, add_stack_arguments, read_stack_file

EXIT_FAILED = 1
FIELD_MANAGER = "raykube-credentials"


class CredentialsError(Exception):
    """What went wrong, for the user: names the role, namespace or setting."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILED):
        super().__init__(message)
        self.exit_code = exit_code


def role_arn(settings, stack: str, given: Optional[str]) -> str:
    """The role to assume: --role-arn, awsAccess.roleArn, or the one raykube created for this stack."""
    if given:
        return given
    if settings.aws_access.role_arn:
        return settings.aws_access.role_arn
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from raykube.aws_access import created_role_name

    access = settings.aws_access
    try:
        caller = boto3.client("sts", region_name=access.effective_region, endpoint_url=access.endpoint_url).get_caller_identity()["Arn"]
    except (BotoCoreError, ClientError) as error:
        raise CredentialsError(f"cannot tell which AWS account the stack's role is in: {error}") from None
    partition, account = caller.split(":")[1], caller.split(":")[4]
    return f"arn:{partition}:iam::{account}:role/{created_role_name(stack)}"


def _secret_mode_stack(stack_file):
    """(settings, awsAccess, CoreV1Api) of a stack whose Ray pods read a credentials Secret; else exit 2."""
    settings = stack_file.settings()
    access = settings.aws_access
    if access.mode != "secret":
        raise CredentialsError(f"raykube:awsAccess.mode is {access.mode!r} in {stack_file.source}: there is no credentials Secret",
                               EXIT_INVALID_SETTINGS)
    return settings, access, core_api(settings)


def renew(stack_file, given_role_arn: Optional[str] = None) -> str:
    """Assume the role, then update every namespace's Secret. Returns the new expiry."""
    from kubernetes.client.rest import ApiException

    from components.assumed_role_credentials import AssumeRoleError, assume_role
    from components.credentials_secret import EXPIRES_ANNOTATION, secret_data
    from raykube.aws_access import session_name

    settings, access, core = _secret_mode_stack(stack_file)
    arn = role_arn(settings, stack_file.stack, given_role_arn)
    try:
        credentials = assume_role(
            {
                "role_arn": arn,
                "region": access.effective_region,
                "session_name": session_name(stack_file.stack),
                "duration_seconds": access.session_duration_seconds,
                "external_id": access.external_id,
                "endpoint_url": access.endpoint_url,
                "bucket": access.bucket,
            }
        )
    except AssumeRoleError as error:
        raise CredentialsError(f"{error}; no Secret was changed") from None
    patch = {
        "metadata": {"annotations": {EXPIRES_ANNOTATION: credentials["expiration"]}},
        "stringData": secret_data(credentials, access.effective_region, access.mount_path),
    }
    for index, namespace in enumerate(settings.namespaces, 1):
        print(f"[{index}/{len(settings.namespaces)}] updating Secret {namespace}/{access.secret_name} ...", file=sys.stderr, flush=True)
        try:
            with reaching(core):
                core.patch_namespaced_secret(access.secret_name, namespace, patch, field_manager=FIELD_MANAGER)
        except ApiException as error:
            if error.status == 404:
                raise CredentialsError(
                    f"Secret {namespace}/{access.secret_name} does not exist: run `pulumi up` for stack {stack_file.stack} first"
                ) from None
            raise CredentialsError(f"cannot update Secret {namespace}/{access.secret_name}: {error.status} {error.reason}") from None
    return credentials["expiration"]


def secret_expiry(secret) -> Optional[datetime]:
    """The Expiration inside the credentials file (the truth), else the annotation."""
    from components.credentials_secret import CREDENTIALS_KEY, EXPIRES_ANNOTATION

    text = None
    if secret.data and CREDENTIALS_KEY in secret.data:
        text = json.loads(base64.b64decode(secret.data[CREDENTIALS_KEY])).get("Expiration")
    text = text or (secret.metadata.annotations or {}).get(EXPIRES_ANNOTATION)
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def status(stack_file, now: Optional[datetime] = None) -> tuple[list[str], bool]:
    """One line per namespace; False if any Secret is missing or expired."""
    from kubernetes.client.rest import ApiException

    settings, access, core = _secret_mode_stack(stack_file)
    now = now or datetime.now(timezone.utc)
    window = timedelta(seconds=access.renew_before_seconds)
    lines, healthy = [], True
    issued: list[datetime] = []
    for namespace in settings.namespaces:
        try:
            with reaching(core):
                secret = core.read_namespaced_secret(access.secret_name, namespace)
        except ApiException as error:
            lines.append(f"{namespace}: MISSING Secret {access.secret_name} ({error.status} {error.reason}): run `pulumi up`")
            healthy = False
            continue
        expiry = secret_expiry(secret)
        if expiry is None:
            lines.append(f"{namespace}: UNKNOWN expiry: the Secret has no credentials; run `raykube credentials renew`")
            healthy = False
        elif expiry <= now:
            lines.append(f"{namespace}: EXPIRED at {expiry.isoformat()}: Ray jobs cannot reach AWS; run `raykube credentials renew`")
            healthy = False
        elif expiry - window <= now:
            lines.append(f"{namespace}: WARNING expires at {expiry.isoformat()} (in {_minutes(expiry - now)}), inside the renew window: renew now")
        else:
            lines.append(f"{namespace}: ok, expires at {expiry.isoformat()} (in {_minutes(expiry - now)})")
        if expiry is not None:
            issued.append(expiry - timedelta(seconds=access.session_duration_seconds))
    renewal, renewal_healthy = renewal_status(settings, stack_file.stack, core.api_client, max(issued, default=None), now)
    return [*lines, renewal], healthy and renewal_healthy


def next_slot(interval_minutes: int, now: datetime) -> datetime:
    """The next run of a `*/interval` CronJob (interval divides 60) strictly after `now`."""
    slot = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while slot.minute % interval_minutes:
        slot += timedelta(minutes=1)
    return slot


def renewal_status(settings, stack: str, api_client, last_issued: Optional[datetime], now: datetime) -> tuple[str, bool]:
    """Who renews the credentials, when they last were and when they next will be."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    access = settings.aws_access
    last = f"last renewal {last_issued.strftime('%H:%M')} UTC ({_minutes(now - last_issued)} ago)" if last_issued else "no renewal yet"
    if access.effective_renewal != "cluster":
        return (f"renewal: by a host (`pulumi up`, or `raykube credentials renew` on a system timer: docs/aws-credentials-renewal.md); {last}", True)
    from raykube.aws_access import RENEWER_NAME

    renewer_namespace = access.effective_renewer_namespace(stack)
    where = f"{renewer_namespace}/{RENEWER_NAME}"
    try:
        with reaching(api_client):
            cron_job = client.BatchV1Api(api_client).read_namespaced_cron_job(RENEWER_NAME, renewer_namespace)
    except ApiException as error:
        return (f"renewal: MISSING CronJob {where} ({error.status} {error.reason}): run `pulumi up`", False)
    interval = access.renewal_interval_minutes
    upcoming = next_slot(interval, now).strftime("%H:%M")
    line = f"renewal: in the cluster, CronJob {where} every {interval} min; {last}; next {upcoming} UTC"
    succeeded = cron_job.status.last_successful_time if cron_job.status else None
    if cron_job.spec.suspend:
        return (f"{line}; WARNING the CronJob is suspended", True)
    # Two missed slots (and a few minutes for the run itself): the renewer is failing.
    if succeeded is None or now - succeeded > timedelta(minutes=2 * interval + 5):
        since = f"since {succeeded.strftime('%H:%M')} UTC" if succeeded else "yet"
        line += f"; WARNING its Jobs have not succeeded {since}: `kubectl -n {renewer_namespace} logs job/<newest {RENEWER_NAME} job>`"
    return (line, True)


def _minutes(delta: timedelta) -> str:
    return f"{int(delta.total_seconds() // 60)} min"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="raykube credentials", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    commands = parser.add_subparsers(dest="command", required=True)
    renew_parser = commands.add_parser("renew", help="assume the role again and update every Ray namespace's Secret",
                                       description="Assume the stack's S3 role again and write the new credentials into the "
                                       "credentials Secret of every Ray namespace; prints the new expiry.")
    add_stack_arguments(renew_parser)
    renew_parser.add_argument("--role-arn", help="role to assume (default: awsAccess.roleArn, or the role raykube created)")
    status_parser = commands.add_parser("status", help="each Ray namespace's credential expiry",
                                        description="Each Ray namespace's credential expiry; exit 1 when one is missing or expired.")
    add_stack_arguments(status_parser)
    args = parser.parse_args(argv)

    from raykube.settings import SettingsError

    try:
        stack_file = read_stack_file(args.stack, args.config)
        if args.command == "renew":
            expiry = renew(stack_file, args.role_arn)
            print(f"renewed the AWS credentials of stack {stack_file.stack}; they expire at {expiry}")
            return 0
        lines, healthy = status(stack_file)
        print("\n".join(lines))
        return 0 if healthy else EXIT_FAILED
    except (StackFileError, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID_SETTINGS
    except CredentialsError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except ClusterUnreachable as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
