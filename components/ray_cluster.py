"""RayCluster: a `ray.io/v1` RayCluster that `pulumi up` waits for, plus its dashboard Ingress."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.ray_node import ray_resources, ray_start_params
from components.ray_pod import CONTAINER_SECURITY_CONTEXT, SecretInjection, ray_pod_template

GCS_PORT = 6379
DASHBOARD_PORT = 8265
CLIENT_PORT = 10001
HEAD_PORTS = (
    {"containerPort": GCS_PORT, "name": "gcs"},
    {"containerPort": DASHBOARD_PORT, "name": "dashboard"},
    {"containerPort": CLIENT_PORT, "name": "client"},
)
# The Ray autoscaler sidecar KubeRay adds to the head (autoscaling: ray).
AUTOSCALER_RESOURCES = {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}


class RayGroupArgs(TypedDict, total=False):
    """A Ray pod group (head or worker), the same shape as raykube's settings.

    resources: {requests, limits} of the Ray container (default none: Ray detects).
    ray_resources: overrides of derived Ray resources: CPU, GPU, memory (bytes), custom (default {}; head: CPU 0 is the caller's choice).
    node_selector, tolerations, affinity, labels, env: the usual pod fields (default empty).
    pod_template: raw PodTemplateSpec merged last (default {}).
    """

    resources: Mapping[str, Mapping[str, str]]
    ray_resources: Mapping[str, float]
    node_selector: Mapping[str, str]
    tolerations: Sequence[Mapping[str, Any]]
    affinity: Mapping[str, Any]
    labels: Mapping[str, str]
    env: Mapping[str, str]
    pod_template: Mapping[str, Any]


class HeadGroupArgs(RayGroupArgs, total=False):
    """The head group. service_type: type of <cluster>-head-svc (default ClusterIP)."""

    service_type: str


class WorkerGroupArgs(RayGroupArgs, total=False):
    """A worker group managed by KubeRay.

    name: group name (required).
    autoscaling: "ray" (KubeRay's autoscaler scales min..max) or "fixed" (default "ray").
    replicas: initial (ray) or fixed count (default min_replicas).
    min_replicas / max_replicas: bounds (default 0 / 4).
    """

    name: str
    autoscaling: str
    replicas: Optional[int]
    min_replicas: int
    max_replicas: int


class AutoscalerArgs(TypedDict, total=False):
    """KubeRay's in-tree autoscaler: version (default "v2"), upscaling_mode (default "Default"), idle_timeout_seconds (default 60)."""

    version: str
    upscaling_mode: str
    idle_timeout_seconds: int


class DashboardIngressArgs(TypedDict, total=False):
    """Dashboard Ingress: enabled (default False), class_name, host (default any), path (default "/")."""

    enabled: bool
    class_name: Optional[str]
    host: Optional[str]
    path: str


class RayClusterArgs(TypedDict, total=False):
    """Arguments of RayCluster.

    namespace: namespace of the cluster (required, plain string: names are derived from it).
    cluster_name: metadata.name (default: the component's name; plain string).
    ray_version: Ray version of the image (required).
    image: Ray image for head and workers (required).
    head: HeadGroupArgs (default {}).
    worker_groups: WorkerGroupArgs list, autoscaling "ray" or "fixed" (default []).
    autoscaler: AutoscalerArgs (default {}).
    injection: SecretInjection, Secrets for Ray containers (default none).
    service_account_name: service account of Ray pods (default the namespace's default).
    ready_timeout_seconds: how long `pulumi up` waits for state "ready" (default 900).
    dashboard_ingress: DashboardIngressArgs (default disabled; `enabled` is a plain bool).
    """

    namespace: str
    cluster_name: str
    ray_version: pulumi.Input[str]
    image: pulumi.Input[str]
    head: pulumi.Input[HeadGroupArgs]
    worker_groups: pulumi.Input[Sequence[WorkerGroupArgs]]
    autoscaler: pulumi.Input[AutoscalerArgs]
    injection: pulumi.Input[SecretInjection]
    service_account_name: pulumi.Input[Optional[str]]
    ready_timeout_seconds: int
    dashboard_ingress: DashboardIngressArgs


def head_service_name(cluster_name: str) -> str:
    """KubeRay's name for the head Service."""
    return f"{cluster_name}-head-svc"


def ray_cluster_spec(args: Mapping[str, Any]) -> dict[str, Any]:
    """The RayCluster `spec` for resolved (plain) arguments."""
    head = dict(args.get("head") or {})
    groups = [dict(group) for group in args.get("worker_groups") or ()]
    injection = args.get("injection") or {}
    image = args["image"]
    head_params = ray_start_params(ray_resources(head.get("resources") or {}, head.get("ray_resources")))
    head_params["dashboard-host"] = "0.0.0.0"
    spec: dict[str, Any] = {
        "rayVersion": args["ray_version"],
        "headGroupSpec": {
            "serviceType": head.get("service_type") or "ClusterIP",
            "rayStartParams": head_params,
            "template": ray_pod_template(
                group=head,
                container_name="ray-head",
                image=image,
                injection=injection,
                service_account_name=args.get("service_account_name"),
                ports=HEAD_PORTS,
            ),
        },
        "workerGroupSpecs": [],
    }
    for group in groups:
        mode = group.get("autoscaling", "ray")
        if mode not in ("ray", "fixed"):
            raise ValueError(f"worker group {group.get('name')!r}: RayCluster takes autoscaling 'ray' or 'fixed', not {mode!r}")
        minimum = group.get("min_replicas", 0)
        maximum = group.get("max_replicas", 4)
        replicas = group.get("replicas")
        replicas = minimum if replicas is None else replicas
        if mode == "fixed":
            minimum = maximum = replicas
        spec["workerGroupSpecs"].append(
            {
                "groupName": group["name"],
                "replicas": replicas,
                "minReplicas": minimum,
                "maxReplicas": maximum,
                "rayStartParams": ray_start_params(ray_resources(group.get("resources") or {}, group.get("ray_resources"))),
                "template": ray_pod_template(
                    group=group,
                    container_name="ray-worker",
                    image=image,
                    injection=injection,
                    service_account_name=args.get("service_account_name"),
                ),
            }
        )
    if any(group.get("autoscaling", "ray") == "ray" for group in groups):
        autoscaler = dict(args.get("autoscaler") or {})
        spec["enableInTreeAutoscaling"] = True
        spec["autoscalerOptions"] = {
            "version": autoscaler.get("version", "v2"),
            "upscalingMode": autoscaler.get("upscaling_mode", "Default"),
            "idleTimeoutSeconds": autoscaler.get("idle_timeout_seconds", 60),
            "resources": AUTOSCALER_RESOURCES,
            "securityContext": dict(CONTAINER_SECURITY_CONTEXT),
        }
    return spec


class RayCluster(pulumi.ComponentResource):
    """A KubeRay RayCluster in one namespace; `pulumi up` returns once it is ready."""

    cluster_name: pulumi.Output[str]
    namespace: pulumi.Output[str]
    head_service_name: pulumi.Output[str]
    head_service_dns: pulumi.Output[str]
    jobs_api_address: pulumi.Output[str]
    client_address: pulumi.Output[str]
    gcs_address: pulumi.Output[str]
    dashboard_port_forward: pulumi.Output[str]

    def __init__(self, name: str, args: RayClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("raykube:index:RayCluster", name, None, opts)
        namespace = args["namespace"]
        cluster_name = args.get("cluster_name") or name
        timeout = int(args.get("ready_timeout_seconds", 900))
        spec = pulumi.Output.from_input({key: value for key, value in args.items() if key != "dashboard_ingress"}).apply(
            ray_cluster_spec
        )
        self.resource = k8s.apiextensions.CustomResource(
            f"{name}-raycluster",
            api_version="ray.io/v1",
            kind="RayCluster",
            metadata={
                "name": cluster_name,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "raykube"},
                "annotations": {
                    # A green `pulumi up` means jobs can be submitted: wait for
                    # KubeRay to report the head and min workers ready.
                    "pulumi.com/waitFor": "jsonpath={.status.state}=ready",
                    "pulumi.com/timeoutSeconds": str(timeout),
                },
            },
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self),
        )
        service = head_service_name(cluster_name)
        dns = f"{service}.{namespace}.svc.cluster.local"
        ingress = dict(args.get("dashboard_ingress") or {})
        self.ingress: Optional[k8s.networking.v1.Ingress] = None
        if ingress.get("enabled"):
            rule: dict[str, Any] = {
                "http": {
                    "paths": [
                        {
                            "path": ingress.get("path") or "/",
                            "pathType": "Prefix",
                            "backend": {"service": {"name": service, "port": {"number": DASHBOARD_PORT}}},
                        }
                    ]
                }
            }
            if ingress.get("host"):
                rule["host"] = ingress["host"]
            self.ingress = k8s.networking.v1.Ingress(
                f"{name}-dashboard",
                metadata={"name": f"{cluster_name}-dashboard", "namespace": namespace},
                spec={"rules": [rule], **({"ingressClassName": ingress["class_name"]} if ingress.get("class_name") else {})},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.resource]),
            )
        self.cluster_name = pulumi.Output.from_input(cluster_name)
        self.namespace = pulumi.Output.from_input(namespace)
        ready = self.resource.id.apply(lambda _: None)  # outputs resolve once the cluster is ready
        self.head_service_name = ready.apply(lambda _: service)
        self.head_service_dns = ready.apply(lambda _: dns)
        self.jobs_api_address = ready.apply(lambda _: f"http://{dns}:{DASHBOARD_PORT}")
        self.client_address = ready.apply(lambda _: f"ray://{dns}:{CLIENT_PORT}")
        self.gcs_address = ready.apply(lambda _: f"{dns}:{GCS_PORT}")
        self.dashboard_port_forward = pulumi.Output.from_input(
            f"kubectl -n {namespace} port-forward service/{service} {DASHBOARD_PORT}:{DASHBOARD_PORT}"
        )
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "namespace": self.namespace,
                "head_service_name": self.head_service_name,
                "head_service_dns": self.head_service_dns,
                "jobs_api_address": self.jobs_api_address,
                "client_address": self.client_address,
                "gcs_address": self.gcs_address,
                "dashboard_port_forward": self.dashboard_port_forward,
            }
        )
