"""CredentialsRenewer: the credentials Secrets of the Ray namespaces, renewed inside the cluster.

A CronJob in a namespace of its own assumes the S3 role through web identity (its pod's
projected token for sts.amazonaws.com, trusted through the cluster's IAM OIDC provider: no
long-lived key in the cluster) every `interval_minutes` and rewrites the credentials Secret of
every Ray namespace. Its ServiceAccount may get and patch exactly those Secrets (one Role per Ray
namespace, resourceNames), nothing else. The job's code is credentials_renewer_job.py, shipped
with the Secret's format (credentials_secret.py) in a ConfigMap and run by the Ray image.
"""

from pathlib import Path
from typing import Any, Optional, Required, Sequence, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.args import ComponentArgsError, check_args, component_label
from components.credentials_secret import DEFAULT_MOUNT_PATH
from components.ray_pod import (
    CONTAINER_SECURITY_CONTEXT, POD_SECURITY_CONTEXT, STS_AUDIENCE, TOKEN_FILE, WEB_IDENTITY_TOKEN_DIR, token_projection,
)

HERE = Path(__file__).resolve().parent
# The ConfigMap's files: the job, and the Secret format it imports.
SCRIPT_FILES = {"renew.py": HERE / "credentials_renewer_job.py", "credentials_secret.py": HERE / "credentials_secret.py"}
SCRIPT_DIR = "/opt/raykube"
INTERVALS = (5, 10, 15, 20, 30, 60)
DEFAULT_SERVICE_ACCOUNT = "credentials-renewer"


def cron_schedule(interval_minutes: int) -> str:
    """Every `interval_minutes` (a divisor of 60, so the runs are evenly spaced across the hour)."""
    if interval_minutes not in INTERVALS:
        raise ValueError(f"interval_minutes must be one of {', '.join(map(str, INTERVALS))}, not {interval_minutes}")
    return "0 * * * *" if interval_minutes == 60 else f"*/{interval_minutes} * * * *"


def secret_rules(secret_name: str) -> list[dict[str, Any]]:
    """What the renewer may do in a Ray namespace: read and patch the one credentials Secret."""
    return [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [secret_name], "verbs": ["get", "patch"]}]


def renewer_env(args: "CredentialsRenewerArgs", role_arn: Any) -> list[dict[str, Any]]:
    env = {
        "AWS_ROLE_ARN": role_arn,
        "AWS_WEB_IDENTITY_TOKEN_FILE": f"{WEB_IDENTITY_TOKEN_DIR}/{TOKEN_FILE}",
        "AWS_ROLE_SESSION_NAME": args.get("session_name") or "raykube-renewer",
        "AWS_REGION": args["region"],
        "DURATION_SECONDS": str(args.get("duration_seconds", 3600)),
        "RAY_NAMESPACES": ",".join(args["ray_namespaces"]),
        "SECRET_NAME": args.get("secret_name") or "aws-credentials",
        "MOUNT_PATH": args.get("mount_path") or DEFAULT_MOUNT_PATH,
        "PYTHONDONTWRITEBYTECODE": "1",  # the script's directory is a read-only ConfigMap
        **({"AWS_ENDPOINT_URL_STS": args["sts_endpoint_url"]} if args.get("sts_endpoint_url") else {}),
    }
    return [{"name": name, "value": value} for name, value in env.items()]


def renewer_pod_spec(args: "CredentialsRenewerArgs", role_arn: Any, config_map: Any) -> dict[str, Any]:
    account = args.get("service_account_name") or DEFAULT_SERVICE_ACCOUNT
    return {
        "serviceAccountName": account,
        "restartPolicy": "Never",
        "securityContext": dict(POD_SECURITY_CONTEXT),
        "containers": [{
            "name": "renew",
            "image": args["image"],
            "command": ["python", f"{SCRIPT_DIR}/renew.py"],
            "env": renewer_env(args, role_arn),
            "securityContext": dict(CONTAINER_SECURITY_CONTEXT),
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}},
            "volumeMounts": [
                {"name": "script", "mountPath": SCRIPT_DIR, "readOnly": True},
                {"name": "sts-token", "mountPath": WEB_IDENTITY_TOKEN_DIR, "readOnly": True},
            ],
        }],
        "volumes": [
            {"name": "script", "configMap": {"name": config_map, "defaultMode": 0o444}},
            {"name": "sts-token", "projected": {"sources": [token_projection(STS_AUDIENCE, args.get("token_expiration_seconds", 3600))]}},
        ],
    }


class CredentialsRenewerArgs(TypedDict, total=False):
    """Arguments of CredentialsRenewer (plain values, but role_arn)."""

    namespace: Required[str]
    """the renewer's own namespace, which must exist (required)."""
    role_arn: Required[pulumi.Input[str]]
    """the S3 role, which must trust system:serviceaccount:<namespace>:<service_account_name> through the cluster's OIDC provider (required)."""
    region: Required[str]
    """AWS region (required)."""
    ray_namespaces: Required[Sequence[str]]
    """the namespaces whose credentials Secret it rewrites (required)."""
    image: Required[str]
    """an image with python3 (required; raykube gives the stack's pinned Ray image)."""
    secret_name: str
    """the credentials Secret in each Ray namespace (default aws-credentials)."""
    mount_path: str
    """where Ray containers mount it; the Secret's AWS config names it (default /etc/aws)."""
    session_name: str
    """STS session name: CloudTrail shows who renewed (default raykube-renewer)."""
    duration_seconds: int
    """credential lifetime (default 3600; at least twice the interval)."""
    interval_minutes: int
    """minutes between renewals: 5, 10, 15, 20, 30 or 60 (default 20)."""
    service_account_name: str
    """(default credentials-renewer)."""
    token_expiration_seconds: int
    """lifetime of the pod's projected token for STS (default 3600)."""
    sts_endpoint_url: Optional[str]
    """STS endpoint override (default https://sts.<region>.amazonaws.com)."""


class CredentialsRenewer(pulumi.ComponentResource):
    """A CronJob that renews the Ray namespaces' credentials Secrets through web identity, with RBAC for exactly those Secrets."""

    cron_job_name: pulumi.Output[str]
    """The CronJob, in `namespace`."""
    schedule: pulumi.Output[str]
    """Its cron schedule."""
    subject: pulumi.Output[str]
    """system:serviceaccount:<namespace>:<service account>: what the role's trust must name."""

    def __init__(self, name: str, args: CredentialsRenewerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        label = component_label("CredentialsRenewer", name)
        check_args(label, CredentialsRenewerArgs, args)
        interval = args.get("interval_minutes", 20)
        try:
            schedule = cron_schedule(interval)
        except ValueError as error:
            raise ComponentArgsError(label, "interval_minutes", str(error)) from None
        if args.get("duration_seconds", 3600) < 2 * interval * 60:
            # One failed run must not let the credentials expire before the next.
            raise ComponentArgsError(label, "duration_seconds", f"must be at least twice interval_minutes ({2 * interval * 60} s)")
        super().__init__("raykube:index:CredentialsRenewer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        namespace = args["namespace"]
        account = args.get("service_account_name") or DEFAULT_SERVICE_ACCOUNT
        secret_name = args.get("secret_name") or "aws-credentials"
        service_account = k8s.core.v1.ServiceAccount(f"{name}-serviceaccount", metadata={"name": account, "namespace": namespace}, opts=child)
        script = k8s.core.v1.ConfigMap(
            f"{name}-script",
            metadata={"name": f"{name}-script", "namespace": namespace},
            data={file: path.read_text() for file, path in SCRIPT_FILES.items()},
            opts=child,
        )
        bindings = []
        for ray_namespace in args["ray_namespaces"]:
            role = k8s.rbac.v1.Role(
                f"{name}-role-{ray_namespace}",
                metadata={"name": f"{name}-{namespace}", "namespace": ray_namespace},
                rules=secret_rules(secret_name),
                opts=child,
            )
            bindings.append(k8s.rbac.v1.RoleBinding(
                f"{name}-rolebinding-{ray_namespace}",
                metadata={"name": f"{name}-{namespace}", "namespace": ray_namespace},
                role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role.metadata["name"]},
                subjects=[{"kind": "ServiceAccount", "name": account, "namespace": namespace}],
                opts=child,
            ))
        cron_job = k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            metadata={"name": name, "namespace": namespace},
            spec={
                "schedule": schedule,
                "timeZone": "Etc/UTC",
                "concurrencyPolicy": "Forbid",
                # A slot missed by more than an interval is skipped, not run late in a burst.
                "startingDeadlineSeconds": interval * 60,
                "successfulJobsHistoryLimit": 1,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {"spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": 300,
                    "template": {"metadata": {"labels": {"app.kubernetes.io/name": "raykube-credentials-renewer"}},
                                 "spec": renewer_pod_spec(args, args["role_arn"], script.metadata["name"])},
                }},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[service_account, *bindings]),
        )
        self.cron_job_name = cron_job.metadata["name"]
        self.schedule = pulumi.Output.from_input(schedule)
        self.subject = pulumi.Output.from_input(f"system:serviceaccount:{namespace}:{account}")
        self.register_outputs({"cron_job_name": self.cron_job_name, "schedule": self.schedule, "subject": self.subject})
