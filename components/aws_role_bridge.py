"""AwsRoleBridge: an IAM role's temporary credentials as a Secret in each Ray namespace.

What seed 000 does by hand (`aws sts assume-role`, `kubectl create secret
generic`), declaratively: the Secret carries the standard variable names,
so boto3 in Ray jobs needs no code, plus an AWS shared-credentials file for
the head's read-only volume. The credentials stay Pulumi secrets end to
end; only the role and the expiry are plain.
"""
from __future__ import annotations

from typing import Optional, Sequence, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.assumed_role_credentials import AssumedRoleCredentials

EXPIRES_ANNOTATION = "raykube.io/credentials-expire-at"
CREDENTIALS_FILE_KEY = "credentials"


class AwsRoleBridgeArgs(TypedDict, total=False):
    """Arguments of AwsRoleBridge.

    role_arn: the role to assume (required).
    region: AWS region, also given to Ray jobs (required).
    namespaces: namespaces that get the Secret (required, plain list).
    secret_name: name of each Secret (default aws-credentials).
    session_name: STS session name (default raykube).
    duration_seconds: credential lifetime, at most the role's max session (default 3600).
    renew_before_seconds: re-assume on `pulumi up` when expiry is this close (default 1800).
    external_id: sts:ExternalId (default none).
    endpoint_url: AWS endpoint override (default none).
    bucket: check at `pulumi up` that this bucket exists (default none).
    """

    role_arn: pulumi.Input[str]
    region: pulumi.Input[str]
    namespaces: Sequence[str]
    secret_name: str
    session_name: pulumi.Input[str]
    duration_seconds: pulumi.Input[int]
    renew_before_seconds: pulumi.Input[int]
    external_id: Optional[pulumi.Input[str]]
    endpoint_url: Optional[pulumi.Input[str]]
    bucket: Optional[pulumi.Input[str]]


def shared_credentials_file(access_key_id: str, secret_access_key: str, session_token: str, region: str) -> str:
    return (
        "[default]\n"
        f"aws_access_key_id = {access_key_id}\n"
        f"aws_secret_access_key = {secret_access_key}\n"
        f"aws_session_token = {session_token}\n"
        f"region = {region}\n"
    )


def secret_data(access_key_id: str, secret_access_key: str, session_token: str, region: str) -> dict[str, str]:
    """The Secret's keys: standard AWS variables (envFrom) plus a credentials file (volume)."""
    return {
        "AWS_ACCESS_KEY_ID": access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret_access_key,
        "AWS_SESSION_TOKEN": session_token,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        CREDENTIALS_FILE_KEY: shared_credentials_file(access_key_id, secret_access_key, session_token, region),
    }


class AwsRoleBridge(pulumi.ComponentResource):
    role_arn: pulumi.Output[str]
    expiration: pulumi.Output[str]
    secret_name: pulumi.Output[str]

    def __init__(self, name: str, args: AwsRoleBridgeArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("raykube:index:AwsRoleBridge", name, None, opts)
        secret_name = args.get("secret_name") or "aws-credentials"
        self.credentials = AssumedRoleCredentials(
            f"{name}-credentials",
            role_arn=args["role_arn"],
            region=args["region"],
            session_name=args.get("session_name") or "raykube",
            duration_seconds=args.get("duration_seconds", 3600),
            renew_before_seconds=args.get("renew_before_seconds", 1800),
            external_id=args.get("external_id"),
            endpoint_url=args.get("endpoint_url"),
            bucket=args.get("bucket"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        creds = self.credentials
        region = pulumi.Output.from_input(args["region"])
        data = pulumi.Output.secret(
            pulumi.Output.all(creds.access_key_id, creds.secret_access_key, creds.session_token, region).apply(
                lambda values: secret_data(*values)
            )
        )
        self.secrets = [
            k8s.core.v1.Secret(
                f"{name}-secret-{namespace}",
                metadata={
                    "name": secret_name,
                    "namespace": namespace,
                    "annotations": {EXPIRES_ANNOTATION: creds.expiration},
                    "labels": {"app.kubernetes.io/managed-by": "raykube"},
                },
                type="Opaque",
                string_data=data,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for namespace in args["namespaces"]
        ]
        self.role_arn = pulumi.Output.from_input(args["role_arn"])
        self.expiration = creds.expiration
        self.secret_name = pulumi.Output.from_input(secret_name)
        self.register_outputs({"role_arn": self.role_arn, "expiration": self.expiration, "secret_name": self.secret_name})
