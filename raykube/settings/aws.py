"""AWS access for Ray jobs: the role, the bucket, and how pods get credentials."""
from __future__ import annotations

import difflib
import os
import re
from typing import Annotated, Literal, Optional

from pydantic import Field, ValidationInfo, field_validator, model_validator

from components.credentials_renewer import INTERVALS
from components.published_oidc_issuer import published_issuer
from raykube.settings.network_policies import namespace_name
from raykube.settings.model import Model
from raykube.settings.checked import ObjectName, refused_by


# Every AWS region, by partition: botocore 1.44.18's data/endpoints.json (the
# botocore boto3 1.44.5 installs), partitions[].regions. A name not here is no
# region (a typo such as us-east1 would only fail at `pulumi up`, on the first
# AWS call); tests/test_validation_rules.py keeps this list equal to botocore's.
AWS_REGIONS = (
    # aws
    "af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1", "ap-south-2",
    "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7",
    "ca-central-1", "ca-west-1", "eu-central-1", "eu-central-2", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2",
    "eu-west-3", "il-central-1", "me-central-1", "me-south-1", "mx-central-1", "sa-east-1", "us-east-1", "us-east-2", "us-west-1",
    "us-west-2",
    # aws-cn, aws-us-gov, aws-eusc
    "cn-north-1", "cn-northwest-1", "us-gov-east-1", "us-gov-west-1", "eusc-de-east-1",
    # aws-iso, aws-iso-b, aws-iso-e, aws-iso-f
    "us-iso-east-1", "us-iso-west-1", "us-isob-east-1", "us-isob-west-1", "eu-isoe-west-1", "us-isof-east-1", "us-isof-south-1",
)


def region_problem(region: str) -> Optional[str]:
    if region not in AWS_REGIONS:
        close = difflib.get_close_matches(region, AWS_REGIONS, n=1)
        return f"{region!r} is not an AWS region" + (f" (did you mean {close[0]}?)" if close else " (e.g. us-east-1)")
    return None


AwsRegion = Annotated[str, refused_by(region_problem)]


class AwsAccessSettings(Model):
    """AWS access for Ray jobs (S3)."""

    mode: Literal["none", "secret", "irsa", "webIdentity", "podIdentity"] = Field(
        default="none",
        description="secret: assumed-role credentials in a Secret; irsa: EKS service account, no Secret; "
        "webIdentity: the pods' own projected ServiceAccount tokens, exchanged with STS (any cluster whose issuer AWS can reach); "
        "podIdentity: EKS Pod Identity associations (the cluster's eks-pod-identity-agent add-on hands out the credentials)",
    )
    eks_cluster_name: Optional[str] = Field(default=None, description="podIdentity: the EKS cluster the associations belong to")
    region: Optional[AwsRegion] = Field(default=None, description="AWS region (or AWS_REGION in the environment)")
    bucket: Optional[str] = Field(default=None, description="the S3 bucket Ray jobs read and write")
    create_bucket: bool = Field(default=False, description="create the bucket")
    role_arn: Optional[str] = Field(default=None, description="use this existing role instead of creating one")
    trusted_principals: list[str] = Field(
        default_factory=list, description="ARNs allowed to assume the created role (secret mode)"
    )
    session_duration_seconds: int = Field(default=3600, ge=900, le=43200, description="credential lifetime")
    renew_before_seconds: int = Field(default=1800, ge=0, description="renew on `pulumi up` when expiry is this close")
    external_id: Optional[str] = Field(default=None, description="sts:ExternalId, if the role's trust requires one")
    endpoint_url: Optional[str] = Field(default=None, description="AWS endpoint override (tests, private endpoints)")
    secret_name: ObjectName = Field(default="aws-credentials", description="Secret name in each Ray namespace")
    mount_path: str = Field(
        default="/etc/aws", description="where every Ray container mounts the credentials Secret (AWS_CONFIG_FILE points into it)"
    )
    service_account_name: ObjectName = Field(default="ray-s3", description="service account of the Ray pods (irsa, webIdentity)")
    oidc_provider_arn: Optional[str] = Field(
        default=None, description="the IAM OIDC provider of the cluster's issuer (irsa: required; webIdentity: default created)"
    )
    oidc_issuer: Optional[str] = Field(
        default=None, description="the cluster's service-account issuer, host/path without https:// (irsa, webIdentity, secret's in-cluster renewal)"
    )
    issuer_bucket: Optional[str] = Field(
        default=None,
        description="local target, webIdentity or secret's in-cluster renewal: the S3 bucket raykube creates to publish the kubeadm cluster's service-account issuer "
        "(its discovery document and JWKS, public-read on those two objects only); the issuer is https://<issuerBucket>.s3.<region>.amazonaws.com",
    )
    renewal: Optional[Literal["cluster", "host"]] = Field(
        default=None,
        description="secret mode: who renews the Secrets' credentials. cluster: a CronJob in renewerNamespace, through web identity "
        "(the default when AWS can reach the cluster's issuer: oidcIssuer, or issuerBucket on local); host: `pulumi up` or "
        "`raykube credentials renew` on a system timer (the default otherwise)",
    )
    renewal_interval_minutes: int = Field(default=20, description="renewal cluster: minutes between renewals (5, 10, 15, 20, 30 or 60)")
    renewer_namespace: Optional[str] = Field(
        default=None, description="renewal cluster: the renewer's own namespace (default raykube-credentials-<stack>: one per stack, so stacks sharing a cluster never share it)"
    )
    token_expiration_seconds: int = Field(
        default=3600, ge=600, le=86400, description="webIdentity: lifetime of the pods' projected token (the kubelet renews it at 80%)"
    )

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, bucket: Optional[str]) -> Optional[str]:
        if bucket is not None and not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", bucket):
            raise ValueError(f"{bucket!r} is not an S3 bucket name (3-63 lowercase letters, digits, '.', '-')")
        return bucket

    @field_validator("issuer_bucket")
    @classmethod
    def _issuer_bucket_name(cls, bucket: Optional[str]) -> Optional[str]:
        # The issuer URL is virtual-hosted (https://<bucket>.s3...): a dot would break its TLS name.
        if bucket is not None and not re.match(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", bucket):
            raise ValueError(f"{bucket!r} is not an issuer bucket name (3-63 lowercase letters, digits, '-'; no '.', which breaks the issuer's https name)")
        return bucket

    @field_validator("renewal_interval_minutes")
    @classmethod
    def _interval(cls, minutes: int) -> int:
        if minutes not in INTERVALS:
            raise ValueError(f"must be one of {', '.join(map(str, INTERVALS))} (runs evenly spaced across the hour), got {minutes}")
        return minutes

    @field_validator("renewer_namespace")
    @classmethod
    def _renewer_namespace(cls, namespace: Optional[str]) -> Optional[str]:
        return namespace_name(namespace)

    @field_validator("role_arn", "oidc_provider_arn")
    @classmethod
    def _arn(cls, arn: Optional[str]) -> Optional[str]:
        if arn is not None and not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:(role|oidc-provider)/.+$", arn):
            raise ValueError(f"{arn!r} is not an IAM role or OIDC provider ARN (arn:aws:iam::<account>:role/<name>)")
        return arn

    @field_validator("trusted_principals")
    @classmethod
    def _principals(cls, principals: list[str]) -> list[str]:
        for principal in principals:
            if not re.match(r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:.+$", principal):
                raise ValueError(f"{principal!r} is not an IAM principal ARN (arn:aws:iam::<account>:user/<name>, role/..., root)")
        return principals

    @field_validator("oidc_issuer")
    @classmethod
    def _issuer(cls, issuer: Optional[str]) -> Optional[str]:
        if issuer is None:
            return None
        bare = issuer.removeprefix("https://").rstrip("/")
        if issuer.startswith("http://") or not re.match(r"^[a-z0-9.-]+\.[a-z]{2,}(/[A-Za-z0-9._~/-]*)?$", bare):
            raise ValueError(f"{issuer!r} is not an issuer AWS can reach: an https host and path, e.g. oidc.eks.us-west-2.amazonaws.com/id/EXAMPLE")
        return bare

    @field_validator("mount_path")
    @classmethod
    def _mount_path(cls, path: str) -> str:
        # An absolute directory of its own: the Secret volume hides whatever the image has there.
        if not re.match(r"^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$", path) or path.rstrip("/") in ("/etc", "/home", "/usr", "/tmp") or ".." in path:
            raise ValueError(f"{path!r} must be an absolute directory of its own, such as /etc/aws (the volume hides what is there)")
        return path

    @field_validator("renew_before_seconds")
    @classmethod
    def _renew_window(cls, renew: int, info: ValidationInfo) -> int:
        duration = info.data.get("session_duration_seconds")
        if duration is not None and renew >= duration:
            raise ValueError(f"must be below sessionDurationSeconds ({duration}), got {renew}")
        return renew

    @model_validator(mode="after")
    def _mode_rules(self) -> "AwsAccessSettings":
        if self.mode == "none":
            return self
        if not self.effective_region:
            raise ValueError(f"__region__ awsAccess.mode {self.mode} needs a region (set it here, or AWS_REGION)")
        if not self.region and region_problem(self.effective_region):
            raise ValueError(f"__region__ AWS_REGION in the environment: {region_problem(self.effective_region)}")
        if not self.bucket:
            raise ValueError(f"__bucket__ awsAccess.mode {self.mode} needs the S3 bucket name")
        if self.issuer_bucket and self.mode not in ("webIdentity", "secret"):
            raise ValueError(f"__issuerBucket__ publishes the issuer for mode webIdentity or secret's in-cluster renewal; this stack's mode is {self.mode}")
        if self.mode == "secret" and not self.role_arn and not self.trusted_principals:
            raise ValueError("__trustedPrincipals__ name who may assume the created role, or give roleArn")
        if self.mode == "irsa" and not self.role_arn and not (self.oidc_provider_arn and self.oidc_issuer):
            raise ValueError("__oidcProviderArn__ irsa mode needs oidcProviderArn and oidcIssuer of the EKS cluster")
        if self.mode == "podIdentity" and not self.eks_cluster_name:
            raise ValueError("__eksClusterName__ podIdentity associates the Ray service accounts with the role in one EKS cluster: name it")
        if self.eks_cluster_name and self.mode != "podIdentity":
            raise ValueError(f"__eksClusterName__ is used by mode podIdentity only; this stack's mode is {self.mode}")
        if self.renewal is not None and self.mode != "secret":
            raise ValueError(f"__renewal__ only mode secret has credentials to renew; this stack's mode is {self.mode}")
        if self.renewal == "cluster" and not (self.oidc_issuer or self.issuer_bucket):
            raise ValueError(
                "__renewal__ the in-cluster renewer assumes the role through the cluster's issuer: set oidcIssuer (EKS, GKE, AKS) "
                "or issuerBucket (local kubeadm), or use renewal: host"
            )
        if self.mode == "secret" and self.effective_renewal == "cluster" and self.session_duration_seconds < 2 * 60 * self.renewal_interval_minutes:
            raise ValueError(
                f"__renewalIntervalMinutes__ one failed renewal must not let the credentials expire: at most half of "
                f"sessionDurationSeconds ({self.session_duration_seconds} s), got {self.renewal_interval_minutes} min"
            )
        if self.issuer_bucket and self.oidc_issuer:
            raise ValueError("__oidcIssuer__ give oidcIssuer or issuerBucket, not both: with issuerBucket the issuer is the one raykube publishes")
        return self

    def effective_renewer_namespace(self, stack: str) -> str:
        """The renewer's namespace: as set, or one of the stack's own."""
        if self.renewer_namespace:
            return self.renewer_namespace
        return re.sub(r"[^a-z0-9-]+", "-", f"raykube-credentials-{stack}".lower())[:63].strip("-")

    @property
    def effective_renewal(self) -> str:
        """secret mode: cluster when AWS can reach the cluster's issuer (so the renewer needs no key), else host."""
        if self.renewal:
            return self.renewal
        return "cluster" if (self.oidc_issuer or self.issuer_bucket) else "host"

    @property
    def effective_oidc_issuer(self) -> Optional[str]:
        """The issuer AWS trusts, host/path: the stack's oidcIssuer, or the one raykube publishes to issuerBucket."""
        if self.issuer_bucket:
            return published_issuer(self.issuer_bucket, self.effective_region or "us-east-1")
        return self.oidc_issuer

    @property
    def effective_region(self) -> Optional[str]:
        return self.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
