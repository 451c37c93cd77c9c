"""AWS access for Ray pods: the IAM role (created or given) and how pods get it.

secret mode: the role's STS credentials in a Secret per Ray namespace
(AwsRoleBridge), mounted into every Ray container and read through the AWS
config file's credential_process, so renewals reach running processes; irsa mode (EKS): a service account per namespace annotated
with the role, trusted through the cluster's OIDC provider; no Secret. webIdentity (EKS, GKE, AKS):
the same trust, an IAM OIDC provider for the cluster's issuer (created unless given), and every
Ray container's own projected ServiceAccount token for STS; no Secret, no webhook, nothing to renew.
On the local kubeadm target the issuer is one raykube publishes (PublishedOidcIssuer, awsAccess.issuerBucket).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws_role_bridge import AwsRoleBridge, ray_injection
from components.credentials_renewer import DEFAULT_SERVICE_ACCOUNT, CredentialsRenewer
from components.published_oidc_issuer import PublishedOidcIssuer
from components.ray_pod import STS_AUDIENCE, TOKEN_FILE, WEB_IDENTITY_TOKEN_DIR
from components.s3_access_role import (
    S3AccessRole, assume_role_trust_policy, irsa_trust_policy, merged_trust, pod_identity_trust_policy,
)
from raykube.cluster_issuer import issuer_documents
from raykube.settings import Settings
from raykube.settings.namespaces import namespace_dependency


def created_role_name(stack: str) -> str:
    """The role raykube creates when awsAccess.roleArn is not given."""
    return f"raykube-{stack}-ray-s3"


def session_name(stack: str) -> str:
    """STS session name: CloudTrail shows which stack assumed the role."""
    return f"raykube-{stack}"


# The renewer's component name, which is also its CronJob's (raykube credentials status reads it).
RENEWER_NAME = "credentials-renewer"


def web_identity_injection(role_arn: Any, region: str, expiration_seconds: int) -> dict[str, Any]:
    """The SecretInjection of mode webIdentity: a projected token for STS in every Ray container, and
    the variables with which botocore (and every AWS SDK) assumes the role with it, and again before
    the credentials expire, re-reading the file the kubelet renews. No Secret, nothing to renew."""
    return {
        "token_volumes": [{"audience": STS_AUDIENCE, "mount_path": WEB_IDENTITY_TOKEN_DIR, "expiration_seconds": expiration_seconds}],
        "env": {
            "AWS_ROLE_ARN": role_arn,
            "AWS_WEB_IDENTITY_TOKEN_FILE": f"{WEB_IDENTITY_TOKEN_DIR}/{TOKEN_FILE}",
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_STS_REGIONAL_ENDPOINTS": "regional",
        },
    }


def host_renewal_warning(settings: Settings) -> str:
    """What `pulumi up` says of a secret-mode stack: nothing in the cluster renews its credentials."""
    access = settings.aws_access
    hours = access.session_duration_seconds / 3600
    where = "issuerBucket" if settings.profile.kubeadm_config else "oidcIssuer"
    instead = (
        f"with the cluster's issuer in awsAccess.{where}, a CronJob in the cluster renews them (renewal: cluster), "
        "and awsAccess.mode webIdentity needs no renewal at all"
    )
    return (
        f"awsAccess.mode secret: the Secrets' credentials last {hours:g} h and only `pulumi up` or "
        "`raykube credentials renew` renews them: run the renewal from a system timer (docs/aws-credentials-renewal.md); "
        + instead
    )


def credentials_renewer(settings: Settings, renewer_namespace: str, role_arn: Any, k8s_opts: pulumi.ResourceOptions,
                        after: list[pulumi.Resource]) -> dict[str, Any]:
    """secret mode with an issuer AWS trusts: the CronJob that renews the Secrets, in a namespace of its own."""
    access = settings.aws_access
    namespace = k8s.core.v1.Namespace(
        f"namespace-{renewer_namespace}",
        metadata={"name": renewer_namespace, "labels": {"pod-security.kubernetes.io/enforce": "restricted",
                                                                "app.kubernetes.io/managed-by": "raykube"}},
        opts=k8s_opts,
    )
    renewer = CredentialsRenewer(
        RENEWER_NAME,
        {
            "namespace": renewer_namespace,
            "role_arn": role_arn,
            "region": access.effective_region,
            "ray_namespaces": settings.namespaces,
            # The stack's pinned Ray image: already pulled on the nodes, and it has python3.
            "image": settings.ray_image(settings.ray_clusters[0]),
            "secret_name": access.secret_name,
            "mount_path": access.mount_path,
            "session_name": f"{session_name(pulumi.get_stack())}-renewer",
            "duration_seconds": access.session_duration_seconds,
            "interval_minutes": access.renewal_interval_minutes,
            "token_expiration_seconds": access.token_expiration_seconds,
            "sts_endpoint_url": access.endpoint_url,
        },
        # After the Secrets exist: the first run patches them.
        opts=pulumi.ResourceOptions(providers=[k8s_opts.provider], depends_on=[namespace, *after]),
    )
    return {"cronJob": pulumi.Output.concat(renewer_namespace, "/", renewer.cron_job_name), "schedule": renewer.schedule, "subject": renewer.subject}


@dataclass
class RayAwsAccess:
    """How Ray pods reach AWS: Secrets to inject, or a service account (IRSA)."""

    injection: dict[str, Any] = field(default_factory=dict)
    service_account: str | None = None
    depends_on: list[pulumi.Resource] = field(default_factory=list)
    # The AWS provider of the stack's region (None without AWS access), and what
    # creates the bucket when raykube does: for job code uploads.
    aws_opts: pulumi.ResourceOptions | None = None


def _ray_service_accounts(settings: Settings, namespaces: dict[str, k8s.core.v1.Namespace], k8s_opts,
                          irsa_role_arn: Any = None) -> list[k8s.core.v1.ServiceAccount]:
    """The Ray pods' ServiceAccount in each Ray namespace. IRSA's names the role (EKS's webhook reads the
    annotation); the others mount no API token: webIdentity's pods get a projected token for STS, Pod
    Identity's one from EKS's webhook."""
    access = settings.aws_access
    metadata: dict[str, Any] = {"name": access.service_account_name}
    extra: dict[str, Any] = {"automount_service_account_token": False}
    if irsa_role_arn is not None:
        metadata["annotations"] = {"eks.amazonaws.com/role-arn": irsa_role_arn}
        extra = {}
    return [
        k8s.core.v1.ServiceAccount(
            f"ray-s3-serviceaccount-{namespace}",
            metadata={**metadata, "namespace": namespace},
            opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=namespace_dependency(namespaces, namespace))),
            **extra,
        )
        for namespace in settings.namespaces
    ]


def aws_access(settings: Settings, namespaces: dict[str, k8s.core.v1.Namespace], k8s_opts, outputs: dict[str, Any]) -> RayAwsAccess:
    """The IAM role (created or given) and its bridge to the Ray namespaces."""
    access = settings.aws_access
    if access.mode == "none":
        return RayAwsAccess()
    region = access.effective_region
    endpoints = [{service: access.endpoint_url for service in ("iam", "sts", "s3")}] if access.endpoint_url else None
    aws_provider = aws.Provider("aws", region=region, endpoints=endpoints, s3_use_path_style=bool(endpoints))
    aws_opts = pulumi.ResourceOptions(providers=[aws_provider])
    subjects = [f"system:serviceaccount:{namespace}:{access.service_account_name}" for namespace in settings.namespaces]
    role_arn: Any = access.role_arn
    role = None
    provider_arn: Any = access.oidc_provider_arn
    issuer = access.effective_oidc_issuer
    provider_opts = aws_opts
    if access.issuer_bucket:
        # A kubeadm cluster: its issuer is the bucket the documents it serves are published to.
        lookup = issuer_documents(settings)
        if lookup.warning:
            pulumi.log.warn(lookup.warning)
        documents = lookup.documents
        published = PublishedOidcIssuer(
            "oidc-issuer",
            {
                "bucket": access.issuer_bucket,
                "region": region,
                **({"discovery_document": documents.discovery_document, "jwks": documents.jwks} if documents else {}),
            },
            opts=aws_opts,
        )
        outputs["serviceAccountIssuer"] = published.issuer_url
        provider_opts = pulumi.ResourceOptions.merge(aws_opts, pulumi.ResourceOptions(depends_on=[published]))
    # secret mode, renewed in the cluster: the renewer's ServiceAccount assumes the role through the issuer.
    in_cluster_renewal = access.mode == "secret" and access.effective_renewal == "cluster"
    renewer_namespace = access.effective_renewer_namespace(pulumi.get_stack())
    renewer_subject = f"system:serviceaccount:{renewer_namespace}:{DEFAULT_SERVICE_ACCOUNT}"
    if (access.mode == "webIdentity" or in_cluster_renewal) and not provider_arn and not role_arn:
        # IAM trusts the cluster's issuer for tokens meant for STS (its keys fetched from the issuer's JWKS).
        provider = aws.iam.OpenIdConnectProvider(
            "ray-oidc-provider", url=f"https://{issuer}", client_id_lists=[STS_AUDIENCE], opts=provider_opts
        )
        provider_arn = provider.arn
    if not role_arn:
        if access.mode in ("irsa", "webIdentity"):
            trust = irsa_trust_policy(provider_arn, issuer, subjects)
        elif access.mode == "podIdentity":
            trust = pod_identity_trust_policy(access.eks_cluster_name, settings.namespaces, access.service_account_name)
        else:
            trust = assume_role_trust_policy(access.trusted_principals, access.external_id)
            if in_cluster_renewal:
                trust = merged_trust(trust, irsa_trust_policy(provider_arn, issuer, [renewer_subject]))
        role = S3AccessRole(
            "ray-s3",
            {
                "bucket": access.bucket,
                "create_bucket": access.create_bucket,
                "role_name": created_role_name(pulumi.get_stack()),
                "trust_policy": trust,
                "max_session_duration_seconds": max(access.session_duration_seconds, 3600),
            },
            opts=aws_opts,
        )
        role_arn = role.role_arn
        aws_opts = pulumi.ResourceOptions.merge(aws_opts, pulumi.ResourceOptions(depends_on=[role]))
    outputs["awsRoleArn"] = role_arn
    if access.mode == "webIdentity":
        accounts = _ray_service_accounts(settings, namespaces, k8s_opts)
        injection = web_identity_injection(role_arn, region, access.token_expiration_seconds)
        # The pods start once the role they assume exists.
        return RayAwsAccess(injection=injection, service_account=access.service_account_name,
                            depends_on=[*accounts, *([role] if role else [])], aws_opts=aws_opts)
    if access.mode == "podIdentity":
        accounts = _ray_service_accounts(settings, namespaces, k8s_opts)
        associations = [
            aws.eks.PodIdentityAssociation(
                f"ray-s3-pod-identity-{namespace}",
                cluster_name=access.eks_cluster_name,
                namespace=namespace,
                service_account=access.service_account_name,
                role_arn=role_arn,
                opts=aws_opts,
            )
            for namespace in settings.namespaces
        ]
        # The webhook injects AWS_CONTAINER_CREDENTIALS_FULL_URI and its token only into pods created after the association.
        injection = {"env": {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}}
        return RayAwsAccess(injection=injection, service_account=access.service_account_name,
                            depends_on=[*accounts, *associations], aws_opts=aws_opts)
    if access.mode == "irsa":
        accounts = _ray_service_accounts(settings, namespaces, k8s_opts, irsa_role_arn=role_arn)
        return RayAwsAccess(service_account=access.service_account_name, depends_on=accounts, aws_opts=aws_opts)
    bridge = AwsRoleBridge(
        "aws-bridge",
        {
            "role_arn": role_arn,
            "region": region,
            "namespaces": settings.namespaces,
            "secret_name": access.secret_name,
            "mount_path": access.mount_path,
            "session_name": session_name(pulumi.get_stack()),
            "duration_seconds": access.session_duration_seconds,
            "renew_before_seconds": access.renew_before_seconds,
            "external_id": access.external_id,
            "endpoint_url": access.endpoint_url,
            "bucket": access.bucket,
        },
        opts=pulumi.ResourceOptions(
            providers=[k8s_opts.provider], depends_on=[*namespaces.values(), *([role] if role else [])]
        ),
    )
    outputs["awsCredentialsExpiration"] = bridge.expiration
    if in_cluster_renewal:
        outputs["credentialsRenewer"] = credentials_renewer(settings, renewer_namespace, role_arn, k8s_opts, [bridge])
    else:
        pulumi.log.warn(host_renewal_warning(settings))
    injection = ray_injection(access.secret_name, region, access.mount_path)
    return RayAwsAccess(injection=injection, depends_on=[bridge], aws_opts=aws_opts)
