"""S3AccessRole: an IAM role that may use exactly one S3 bucket, optionally with the bucket."""

import json
from typing import Any, Optional, Sequence, Required, TypedDict

import pulumi
import pulumi_aws as aws
from components.args import check_args, component_label
from components.ray_pod import STS_AUDIENCE


def bucket_policy(bucket: str) -> dict[str, Any]:
    """Least privilege: objects in the one bucket, and listing it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ObjectsInTheBucket",
                "Effect": "Allow",
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                "Resource": f"arn:aws:s3:::{bucket}/*",
            },
            {"Sid": "ListTheBucket", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
        ],
    }


def assume_role_trust_policy(principals: Sequence[str], external_id: Optional[str] = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"AWS": sorted(principals)}, "Action": "sts:AssumeRole"}
    if external_id:
        statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
    return {"Version": "2012-10-17", "Statement": [statement]}


def irsa_trust_policy(oidc_provider_arn: str, oidc_issuer: str, subjects: Sequence[str]) -> dict[str, Any]:
    """Web identity trust limited to the given service accounts (`system:serviceaccount:<ns>:<sa>`)."""
    issuer = oidc_issuer.removeprefix("https://")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": oidc_provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {f"{issuer}:sub": sorted(subjects) if len(subjects) > 1 else subjects[0], f"{issuer}:aud": STS_AUDIENCE}
                },
            }
        ],
    }


POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"


def pod_identity_trust_policy(cluster_name: str, namespaces: Sequence[str], service_account: str) -> dict[str, Any]:
    """EKS Pod Identity: the agent assumes the role for a pod, tagging the session with the pod's cluster,
    namespace and service account; the trust takes only those of the Ray service accounts in this cluster."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Condition": {
                    "StringEquals": {
                        "aws:RequestTag/eks-cluster-name": cluster_name,
                        "aws:RequestTag/kubernetes-service-account": service_account,
                        "aws:RequestTag/kubernetes-namespace": sorted(namespaces) if len(namespaces) > 1 else namespaces[0],
                    }
                },
            }
        ],
    }


def merged_trust(*policies: dict[str, Any]) -> dict[str, Any]:
    """One trust policy allowing what any of `policies` allows."""
    return {"Version": "2012-10-17", "Statement": [statement for policy in policies for statement in policy["Statement"]]}


class S3AccessRoleArgs(TypedDict, total=False):
    """Arguments of S3AccessRole (plain values)."""

    bucket: Required[str]
    """the bucket (required)."""
    create_bucket: bool
    """create it, private (default False)."""
    role_name: str
    """(default: the component's name)."""
    trust_policy: Required[dict[str, Any]]
    """the role's trust policy document (required: assume_role_trust_policy or irsa_trust_policy)."""
    max_session_duration_seconds: int
    """(default 3600)."""


class S3AccessRole(pulumi.ComponentResource):
    """An IAM role that may use exactly one S3 bucket (objects and listing), optionally with the bucket, private."""

    role_arn: pulumi.Output[str]
    """ARN of the role."""
    bucket: pulumi.Output[str]
    """The bucket the role may use."""

    def __init__(self, name: str, args: S3AccessRoleArgs, opts: Optional[pulumi.ResourceOptions] = None):
        check_args(component_label("S3AccessRole", name), S3AccessRoleArgs, args)
        super().__init__("raykube:index:S3AccessRole", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        bucket = args["bucket"]
        if args.get("create_bucket"):
            created = aws.s3.Bucket(f"{name}-bucket", bucket=bucket, opts=child)
            aws.s3.BucketPublicAccessBlock(
                f"{name}-bucket-private",
                bucket=created.id,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
                opts=child,
            )
        self.role = aws.iam.Role(
            f"{name}-role",
            name=args.get("role_name") or name,
            # The trust may name an OIDC provider created in the same `pulumi up` (an Output).
            assume_role_policy=pulumi.Output.from_input(args["trust_policy"]).apply(lambda trust: json.dumps(trust, sort_keys=True)),
            max_session_duration=args.get("max_session_duration_seconds", 3600),
            opts=child,
        )
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=self.role.id,
            policy=json.dumps(bucket_policy(bucket), sort_keys=True),
            opts=child,
        )
        self.role_arn = self.role.arn
        self.bucket = pulumi.Output.from_input(bucket)
        self.register_outputs({"role_arn": self.role_arn, "bucket": self.bucket})
