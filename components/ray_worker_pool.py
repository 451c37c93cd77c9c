"""RayWorkerPool: Ray workers as a Deployment scaled by an HPA on CPU.

The RayCluster CRD has no /scale subresource, so an HPA cannot scale a
KubeRay worker group. A worker group in `hpa` mode becomes this pool instead:
plain `ray start --block` pods that join the KubeRay head through its
Service, with CPU requests (HPA utilization is relative to them), `--num-cpus`
derived from those requests, and a preStop hook that drains the Ray node
with Ray's own drain facility, so a scale-down never kills running tasks.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.horizontal_pod_autoscaler import HorizontalPodAutoscaler, ScaleUpArgs
from components.ray_cluster import GCS_PORT, RayGroupArgs, head_service_name
from components.ray_node import ray_resources, ray_start_args, ray_start_params
from components.ray_pod import SecretInjection, ray_pod_template

DRAIN_SCRIPT = (Path(__file__).with_name("ray_worker_drain.py")).read_text(encoding="utf-8")
# Time the hook leaves Kubernetes between the drain deadline and SIGKILL.
DRAIN_MARGIN_SECONDS = 15


class WorkerPoolGroupArgs(RayGroupArgs, total=False):
    """The worker group: name, min_replicas (default 1), max_replicas (default 4),
    termination_grace_period_seconds (default 300), plus RayGroupArgs."""

    name: str
    min_replicas: int
    max_replicas: int
    termination_grace_period_seconds: int


class RayWorkerPoolArgs(TypedDict, total=False):
    """Arguments of RayWorkerPool (plain values; names are derived from them).

    namespace, cluster_name: the RayCluster whose head the workers join (required).
    group: WorkerPoolGroupArgs; needs a cpu request (required).
    image: Ray image, the cluster's (required).
    injection: SecretInjection, as for the cluster's workers (default none).
    service_account_name: (default the namespace's default).
    target_cpu_utilization_percent: HPA target (default 50).
    scale_down_stabilization_seconds: HPA scale-down window (default 15).
    scale_up: ScaleUpArgs (default 4 pods or 100% per 15 s).
    cluster_domain: (default cluster.local).
    """

    namespace: str
    cluster_name: str
    group: WorkerPoolGroupArgs
    image: str
    injection: SecretInjection
    service_account_name: Optional[str]
    target_cpu_utilization_percent: int
    scale_down_stabilization_seconds: int
    scale_up: ScaleUpArgs
    cluster_domain: str


def pool_name(cluster_name: str, group_name: str) -> str:
    return f"{cluster_name}-{group_name}-workers"


def worker_pool_deployment(args: Mapping[str, Any]) -> dict[str, Any]:
    """The Deployment (API field names) of the pool."""
    group = dict(args["group"])
    if "cpu" not in (group.get("resources") or {}).get("requests", {}):
        raise ValueError(f"worker pool {group.get('name')!r} needs a cpu request: HPA utilization is relative to it")
    namespace, cluster = args["namespace"], args["cluster_name"]
    name = pool_name(cluster, group["name"])
    gcs = f"{head_service_name(cluster)}.{namespace}.svc.{args.get('cluster_domain') or 'cluster.local'}:{GCS_PORT}"
    grace = int(group.get("termination_grace_period_seconds", 300))
    drain_deadline = max(grace - DRAIN_MARGIN_SECONDS, 1)
    selector = {"raykube.io/cluster": cluster, "raykube.io/worker-group": group["name"]}
    params = ray_start_params(ray_resources(group.get("resources") or {}, group.get("ray_resources")))
    env = [
        {"name": "RAY_GCS_ADDRESS", "value": gcs},
        {"name": "RAY_NODE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "RAYKUBE_DRAIN_DEADLINE_SECONDS", "value": str(drain_deadline)},
        # Ray's own SIGTERM drain, after the hook: bounded by the same deadline.
        {"name": "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S", "value": str(drain_deadline)},
    ]
    template = ray_pod_template(
        group=group,
        container_name="ray-worker",
        image=args["image"],
        injection=args.get("injection"),
        service_account_name=args.get("service_account_name"),
        extra_labels={**selector, "app.kubernetes.io/name": "ray-worker", "app.kubernetes.io/managed-by": "raykube"},
        extra_env=env,
        command=["ray"],
        args=worker_start_args(params),
        lifecycle={"preStop": {"exec": {"command": ["python", "-c", DRAIN_SCRIPT]}}},
        termination_grace_period_seconds=grace,
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(selector)},
        # No `replicas`: the HPA owns it, and `pulumi up` must not reset it.
        "spec": {"selector": {"matchLabels": selector}, "template": template},
    }


def worker_start_args(params: Mapping[str, str]) -> list[str]:
    """`ray start` argv after `ray`; $(VAR) is expanded by Kubernetes from the container env."""
    return ["start", "--address=$(RAY_GCS_ADDRESS)", "--node-ip-address=$(RAY_NODE_IP)", "--block", *ray_start_args(params)]


class RayWorkerPool(pulumi.ComponentResource):
    """A Deployment of Ray workers plus its HPA. Depend it on the RayCluster and metrics-server."""

    deployment_name: pulumi.Output[str]
    hpa_name: pulumi.Output[str]

    def __init__(self, name: str, args: RayWorkerPoolArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("raykube:index:RayWorkerPool", name, None, opts)
        manifest = worker_pool_deployment(args)
        group = args["group"]
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.autoscaler = HorizontalPodAutoscaler(
            f"{name}-autoscaler",
            {
                "namespace": args["namespace"],
                "name": manifest["metadata"]["name"],
                "scale_target": {"apiVersion": "apps/v1", "kind": "Deployment", "name": manifest["metadata"]["name"]},
                "min_replicas": group.get("min_replicas", 1),
                "max_replicas": group.get("max_replicas", 4),
                "target_cpu_utilization_percent": args.get("target_cpu_utilization_percent", 50),
                "scale_down_stabilization_seconds": args.get("scale_down_stabilization_seconds", 15),
                "scale_up": args.get("scale_up") or {},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.deployment]),
        )
        self.deployment_name = pulumi.Output.from_input(manifest["metadata"]["name"])
        self.hpa_name = self.autoscaler.hpa_name
        self.register_outputs({"deployment_name": self.deployment_name, "hpa_name": self.hpa_name})
