"""The raykube program: the target's components, wired in dependency order.

CRDs (once) -> one operator per Ray namespace -> RayClusters; the target
profile decides which cluster add-ons exist. `__main__.py` only loads the
settings and calls `build`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.aws_role_bridge import CREDENTIALS_FILE_KEY, AwsRoleBridge
from components.flannel import Flannel
from components.kubeadm_config import KubeadmConfig
from components.kuberay_crds import KubeRayCrds
from components.kuberay_operator import KubeRayOperator
from components.metrics_server import MetricsServer
from components.ray_cluster import RayCluster
from components.ray_worker_pool import RayWorkerPool
from components.s3_access_role import S3AccessRole, assume_role_trust_policy, irsa_trust_policy
from raykube.settings import RayClusterSettings, Settings

# Ray pods meet "restricted" (non-root, no privilege escalation, no added
# capabilities, RuntimeDefault seccomp). Enforce "baseline" and warn/audit on
# "restricted", so sidecars a user adds through podTemplate get a warning, not
# a silent rejection.
POD_SECURITY_LABELS = {
    "pod-security.kubernetes.io/enforce": "baseline",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}


def kubernetes_provider(settings: Settings) -> k8s.Provider:
    """The one provider every Kubernetes resource uses.

    Server-side apply: the KubeRay CRDs exceed the client-side annotation limit.
    """
    return k8s.Provider(
        "kubernetes",
        kubeconfig=settings.kubeconfig,
        context=settings.kube_context,
        enable_server_side_apply=True,
    )


def _group_args(group: Any) -> dict[str, Any]:
    return group.model_dump(exclude={"hpa"})


def _cluster_args(cluster: RayClusterSettings, injection: dict[str, Any], service_account: str | None) -> dict[str, Any]:
    return {
        "namespace": cluster.namespace,
        "cluster_name": cluster.name,
        "ray_version": cluster.effective_ray_version,
        "image": cluster.effective_image,
        "head": _group_args(cluster.head),
        "worker_groups": [_group_args(group) for group in cluster.worker_groups if group.autoscaling != "hpa"],
        "autoscaler": cluster.autoscaler.model_dump(),
        "injection": injection,
        "service_account_name": service_account,
        "ready_timeout_seconds": cluster.ready_timeout_seconds,
        "dashboard_ingress": cluster.dashboard_ingress.model_dump(),
    }


@dataclass
class StackResult:
    """What `build` made: stack outputs, and files `pulumi up` writes ({path: text})."""

    outputs: dict[str, Any]
    files: dict[str, Any] = field(default_factory=dict)

    def as_tuple(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.outputs, self.files


@dataclass
class RayAwsAccess:
    """How Ray pods reach AWS: Secrets to inject, or a service account (IRSA)."""

    injection: dict[str, Any] = field(default_factory=dict)
    service_account: str | None = None
    depends_on: list[pulumi.Resource] = field(default_factory=list)


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
    if not role_arn:
        trust = (
            irsa_trust_policy(access.oidc_provider_arn, access.oidc_issuer, subjects)
            if access.mode == "irsa"
            else assume_role_trust_policy(access.trusted_principals, access.external_id)
        )
        role = S3AccessRole(
            "ray-s3",
            {
                "bucket": access.bucket,
                "create_bucket": access.create_bucket,
                "role_name": f"raykube-{pulumi.get_stack()}-ray-s3",
                "trust_policy": trust,
                "max_session_duration_seconds": max(access.session_duration_seconds, 3600),
            },
            opts=aws_opts,
        )
        role_arn = role.role_arn
    outputs["awsRoleArn"] = role_arn
    if access.mode == "irsa":
        accounts = [
            k8s.core.v1.ServiceAccount(
                f"ray-s3-serviceaccount-{namespace}",
                metadata={
                    "name": access.service_account_name,
                    "namespace": namespace,
                    "annotations": {"eks.amazonaws.com/role-arn": role_arn},
                },
                opts=pulumi.ResourceOptions.merge(k8s_opts, pulumi.ResourceOptions(depends_on=[namespaces[namespace]])),
            )
            for namespace in settings.namespaces
        ]
        return RayAwsAccess(service_account=access.service_account_name, depends_on=accounts)
    bridge = AwsRoleBridge(
        "aws-bridge",
        {
            "role_arn": role_arn,
            "region": region,
            "namespaces": settings.namespaces,
            "secret_name": access.secret_name,
            "session_name": f"raykube-{pulumi.get_stack()}",
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
    injection = {
        "env_from_secrets": [access.secret_name],
        "head_secret_volumes": [{"secret_name": access.secret_name, "mount_path": access.mount_path}],
        "head_env": {"AWS_SHARED_CREDENTIALS_FILE": f"{access.mount_path.rstrip('/')}/{CREDENTIALS_FILE_KEY}"},
    }
    return RayAwsAccess(injection=injection, depends_on=[bridge])


def build(settings: Settings) -> StackResult:
    """Create every resource of the stack."""
    provider = kubernetes_provider(settings)
    k8s_opts = pulumi.ResourceOptions(provider=provider)
    component_opts = pulumi.ResourceOptions(providers=[provider])
    profile = settings.profile
    outputs: dict[str, Any] = {"target": settings.target, "namespaces": settings.namespaces}
    files: dict[str, Any] = {}

    network, autoscaling = settings.effective_network, settings.autoscaling
    if profile.kubeadm_config:
        kubeadm = settings.effective_kubeadm
        kubeadm_config = KubeadmConfig(
            "kubeadm",
            {
                "kubernetes_version": settings.kubernetes_version,
                "pod_subnet": network.pod_cidr,
                "service_subnet": network.service_cidr,
                "scale_down_stabilization_seconds": autoscaling.scale_down_stabilization_seconds,
                "sync_period_seconds": autoscaling.sync_period_seconds,
                "cri_socket": kubeadm.cri_socket,
                "advertise_address": kubeadm.advertise_address,
                "node_name": kubeadm.node_name,
                "path": kubeadm.config_path,
            },
        )
        outputs["kubeadmConfigPath"] = kubeadm.config_path
        outputs["kubeadmConfig"] = kubeadm_config.config_yaml
        files[kubeadm.config_path] = kubeadm_config.config_yaml

    cluster_add_ons: list[pulumi.Resource] = []
    if profile.flannel:
        # podCidr is the same setting as kubeadm's podSubnet: one value, never two.
        cluster_add_ons.append(
            Flannel("flannel", {"pod_cidr": network.pod_cidr, "backend": network.flannel_backend}, opts=component_opts)
        )
    metrics_server = None
    if profile.metrics_server:
        metrics = settings.effective_metrics
        metrics_server = MetricsServer(
            "metrics-server",
            {
                "resolution_seconds": metrics.resolution_seconds,
                "kubelet_request_timeout_seconds": metrics.kubelet_request_timeout_seconds,
                "kubelet_insecure_tls": settings.kubelet_insecure_tls,
            },
            opts=component_opts,
        )

    namespaces = {
        namespace: k8s.core.v1.Namespace(
            f"namespace-{namespace}",
            metadata={"name": namespace, "labels": {**POD_SECURITY_LABELS, "app.kubernetes.io/managed-by": "raykube"}},
            opts=k8s_opts,
        )
        for namespace in settings.namespaces
    }

    crds = KubeRayCrds("kuberay", {"version": settings.operator.version}, opts=component_opts)
    operator = settings.operator
    operators = {
        namespace: KubeRayOperator(
            f"kuberay-operator-{namespace}",
            {
                "namespace": namespace,
                "watch_namespaces": [namespace],
                "version": operator.version,
                "image": operator.image.model_dump(),
                "resources": operator.resources,
                "leader_election": operator.leader_election,
                "node_selector": operator.node_selector,
                "tolerations": operator.tolerations,
                "values": operator.values,
            },
            opts=pulumi.ResourceOptions.merge(
                component_opts, pulumi.ResourceOptions(depends_on=[crds, namespaces[namespace], *cluster_add_ons])
            ),
        )
        for namespace in settings.namespaces
    }

    ray_aws = aws_access(settings, namespaces, k8s_opts, outputs)
    cluster_outputs: dict[str, Any] = {}
    for cluster in settings.ray_clusters:
        key = f"{cluster.namespace}/{cluster.name}"
        ray_cluster = RayCluster(
            f"{cluster.namespace}-{cluster.name}",
            _cluster_args(cluster, ray_aws.injection, ray_aws.service_account),
            opts=pulumi.ResourceOptions.merge(
                component_opts, pulumi.ResourceOptions(depends_on=[operators[cluster.namespace], *ray_aws.depends_on])
            ),
        )
        pools = {}
        for group in cluster.worker_groups:
            if group.autoscaling != "hpa":
                continue
            pool = RayWorkerPool(
                f"{cluster.namespace}-{cluster.name}-{group.name}",
                {
                    "namespace": cluster.namespace,
                    "cluster_name": cluster.name,
                    "group": _group_args(group),
                    "image": cluster.effective_image,
                    "injection": ray_aws.injection,
                    "service_account_name": ray_aws.service_account,
                    "target_cpu_utilization_percent": group.hpa.target_cpu_utilization_percent,
                    "scale_down_stabilization_seconds": autoscaling.scale_down_stabilization_seconds,
                    "scale_up": group.hpa.scale_up.model_dump(),
                },
                opts=pulumi.ResourceOptions.merge(
                    component_opts,
                    # Workers join a ready head; the HPA needs metrics to act on.
                    pulumi.ResourceOptions(depends_on=[ray_cluster, *([metrics_server] if metrics_server else [])]),
                ),
            )
            pools[group.name] = pool.deployment_name
        cluster_outputs[key] = {
            "headService": ray_cluster.head_service_name,
            "headServiceDns": ray_cluster.head_service_dns,
            "jobsApi": ray_cluster.jobs_api_address,
            "client": ray_cluster.client_address,
            "gcs": ray_cluster.gcs_address,
            "dashboardPortForward": ray_cluster.dashboard_port_forward,
            "hpaWorkerPools": pools,
        }
    outputs["rayClusters"] = cluster_outputs
    return StackResult(outputs=outputs, files=files)
