"""The raykube program: the target's components, wired in dependency order.

CRDs (once) -> one operator per Ray namespace -> RayClusters; the target
profile decides which cluster add-ons exist. `__main__.py` only loads the
settings and calls `build`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.kuberay_crds import KubeRayCrds
from components.kuberay_operator import KubeRayOperator
from components.ray_cluster import RayCluster
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


def build(settings: Settings) -> StackResult:
    """Create every resource of the stack."""
    provider = kubernetes_provider(settings)
    k8s_opts = pulumi.ResourceOptions(provider=provider)
    component_opts = pulumi.ResourceOptions(providers=[provider])

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
            opts=pulumi.ResourceOptions.merge(component_opts, pulumi.ResourceOptions(depends_on=[crds, namespaces[namespace]])),
        )
        for namespace in settings.namespaces
    }

    outputs: dict[str, Any] = {"target": settings.target, "namespaces": settings.namespaces}
    files: dict[str, Any] = {}
    cluster_outputs: dict[str, Any] = {}
    for cluster in settings.ray_clusters:
        key = f"{cluster.namespace}/{cluster.name}"
        ray_cluster = RayCluster(
            f"{cluster.namespace}-{cluster.name}",
            _cluster_args(cluster, {}, None),
            opts=pulumi.ResourceOptions.merge(component_opts, pulumi.ResourceOptions(depends_on=[operators[cluster.namespace]])),
        )
        cluster_outputs[key] = {
            "headService": ray_cluster.head_service_name,
            "headServiceDns": ray_cluster.head_service_dns,
            "jobsApi": ray_cluster.jobs_api_address,
            "client": ray_cluster.client_address,
            "gcs": ray_cluster.gcs_address,
            "dashboardPortForward": ray_cluster.dashboard_port_forward,
        }
    outputs["rayClusters"] = cluster_outputs
    return StackResult(outputs=outputs, files=files)
