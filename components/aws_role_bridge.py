"""AwsRoleBridge: an IAM role's temporary credentials as a Secret in each Ray namespace.

What seed 000 does by hand (`aws sts assume-role`, `kubectl create secret
generic`), declaratively, and in a form that survives renewal: Kubernetes
sets environment variables once, at container start, so credentials there
go stale in every running Ray process. The Secret instead holds

  credential-process.json  the credentials with their Expiration, in the
                           format of the AWS SDKs' `credential_process`
  config                   an AWS config file whose `credential_process`
                           prints that file

mounted as a directory (the kubelet rewrites it when the Secret changes) and
pointed to by AWS_CONFIG_FILE. The SDKs treat such credentials as
refreshable: botocore runs the process again when fewer than 15 minutes are
left, so a Ray actor started before a renewal picks up the renewed
credentials without a restart. The credentials stay Pulumi secrets end to
end; only the role and the expiry are plain.
"""

from typing import Any, Optional, Sequence, Required, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.assumed_role_credentials import AssumedRoleCredentials
from components.args import check_args, component_label
# The Secret's format has one home, which the in-cluster renewer ships too (stdlib only).
from components.credentials_secret import CONFIG_KEY, DEFAULT_MOUNT_PATH, EXPIRES_ANNOTATION, SECRET_KEYS, secret_data

SECRET_LABELS = {"app.kubernetes.io/managed-by": "raykube", "app.kubernetes.io/component": "aws-credentials"}


class AwsRoleBridgeArgs(TypedDict, total=False):
    """Arguments of AwsRoleBridge."""

    role_arn: Required[pulumi.Input[str]]
    """the role to assume (required)."""
    region: Required[pulumi.Input[str]]
    """AWS region, also given to Ray jobs (required)."""
    namespaces: Required[Sequence[str]]
    """namespaces that get the Secret (required, plain list)."""
    secret_name: str
    """name of each Secret (default aws-credentials)."""
    mount_path: str
    """where Ray containers mount the Secret; the config file names it (default /etc/aws)."""
    session_name: pulumi.Input[str]
    """STS session name (default raykube)."""
    duration_seconds: pulumi.Input[int]
    """credential lifetime, at most the role's max session (default 3600)."""
    renew_before_seconds: pulumi.Input[int]
    """re-assume on `pulumi up` when expiry is this close (default 1800)."""
    external_id: Optional[pulumi.Input[str]]
    """sts:ExternalId (default none)."""
    endpoint_url: Optional[pulumi.Input[str]]
    """AWS endpoint override (default none)."""
    bucket: Optional[pulumi.Input[str]]
    """check at `pulumi up` that this bucket exists (default none)."""


def ray_container_env(region: str, mount_path: str = DEFAULT_MOUNT_PATH) -> dict[str, str]:
    """Plain variables for every Ray container: where the config is; no credential values."""
    return {
        "AWS_CONFIG_FILE": f"{mount_path.rstrip('/')}/{CONFIG_KEY}",
        "AWS_SDK_LOAD_CONFIG": "1",  # the Go SDK v1 reads the config file only with this
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }


def ray_injection(secret_name: str, region: str, mount_path: str = DEFAULT_MOUNT_PATH) -> dict[str, Any]:
    """The SecretInjection (components.ray_pod) that gives Ray containers the bridge's credentials."""
    return {
        "secret_volumes": [{"secret_name": secret_name, "mount_path": mount_path}],
        "env": ray_container_env(region, mount_path),
    }


class AwsRoleBridge(pulumi.ComponentResource):
    """An IAM role's temporary credentials, renewed on `pulumi up`, as a Secret in each Ray namespace (read by the AWS SDKs through credential_process)."""

    role_arn: pulumi.Output[str]
    """The role whose credentials the Secrets hold."""
    expiration: pulumi.Output[str]
    """When the current credentials expire (ISO 8601, UTC)."""
    secret_name: pulumi.Output[str]
    """Name of the credentials Secret in each namespace."""

    def __init__(self, name: str, args: AwsRoleBridgeArgs, opts: Optional[pulumi.ResourceOptions] = None):
        check_args(component_label("AwsRoleBridge", name), AwsRoleBridgeArgs, args)
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
        mount_path = args.get("mount_path") or DEFAULT_MOUNT_PATH
        values = pulumi.Output.all(
            access_key_id=creds.access_key_id, secret_access_key=creds.secret_access_key,
            session_token=creds.session_token, expiration=creds.expiration, region=args["region"],
        )
        # One secret output per key: the keys stay visible in previews and the
        # render, every value stays encrypted.
        data = {
            key: pulumi.Output.secret(values.apply(lambda v, key=key: secret_data(v, v["region"], mount_path)[key]))
            for key in SECRET_KEYS
        }
        self.secrets = [
            k8s.core.v1.Secret(
                f"{name}-secret-{namespace}",
                metadata={
                    "name": secret_name,
                    "namespace": namespace,
                    "annotations": {
                        EXPIRES_ANNOTATION: creds.expiration,
                        # `raykube credentials renew` updates this Secret between
                        # `pulumi up`s; Pulumi's next apply then takes it back.
                        "pulumi.com/patchForce": "true",
                    },
                    "labels": dict(SECRET_LABELS),
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
