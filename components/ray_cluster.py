"""RayCluster: a `ray.io/v1` RayCluster that `pulumi up` waits for, plus its dashboard Ingress."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.dashboard_ingress import DASHBOARD_PORT, DashboardIngressArgs, dashboard_ingress
from components.ray_node import ray_resources, ray_start_params
from components.ray_pod import CONTAINER_SECURITY_CONTEXT, SecretInjection, ray_pod_template

GCS_PORT = 6379
CLIENT_PORT = 10001
# KubeRay's token Secret: named after the cluster, the token under this key.
AUTH_TOKEN_KEY = "auth_token"
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
    replicas: fixed count (default min_replicas). In "ray" mode it is never sent: Ray's autoscaler
        owns it, and KubeRay starts the group at min_replicas.
    min_replicas / max_replicas: bounds (default 0 / 4).
    image: this group's image (default the cluster's).
    idle_timeout_seconds: "ray" mode, autoscaler v2: idle time before its workers go (default the cluster's).
    """

    name: str
    autoscaling: str
    replicas: Optional[int]
    min_replicas: int
    max_replicas: int
    image: Optional[str]
    idle_timeout_seconds: Optional[int]


class AutoscalerArgs(TypedDict, total=False):
    """KubeRay's in-tree autoscaler: version (default "v2"), upscaling_mode (default "Default"), idle_timeout_seconds (default 60)."""

    version: str
    upscaling_mode: str
    idle_timeout_seconds: int


class GcsStorageArgs(TypedDict, total=False):
    """rocksdb backend's PVC: size, storage_class_name, access_modes (default [ReadWriteOnce]),
    claim_name (an existing PVC), deletion_policy (default DeleteWithCluster)."""

    size: Optional[str]
    storage_class_name: Optional[str]
    access_modes: Sequence[str]
    claim_name: Optional[str]
    deletion_policy: str


class SecretKeyArgs(TypedDict):
    """A key of an existing Secret: name, key."""

    name: str
    key: str


class RedisArgs(TypedDict, total=False):
    """redis backend: address (host:port, required), password_secret (SecretKeyArgs, default none)."""

    address: str
    password_secret: Optional[SecretKeyArgs]


class GcsFaultToleranceArgs(TypedDict, total=False):
    """Head fault tolerance: backend "rocksdb" (storage) or "redis" (redis) (required),
    external_storage_namespace (default KubeRay's)."""

    backend: str
    storage: Optional[GcsStorageArgs]
    redis: Optional[RedisArgs]
    external_storage_namespace: Optional[str]


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
    dashboard_ingress: DashboardIngressArgs (default disabled; plain values).
    upgrade_strategy: "Recreate" (a changed pod spec recreates every pod; running jobs end) or
        "None" (default "Recreate"; needs KubeRay 1.6).
    auth_mode: "token" (KubeRay generates a token Secret named after the cluster; Ray >= 2.52,
        KubeRay >= 1.5.1) or "disabled" (default "token").
    gcs_fault_tolerance: GcsFaultToleranceArgs (default none: a restarted head loses the cluster's state).
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
    upgrade_strategy: pulumi.Input[str]
    auth_mode: pulumi.Input[str]
    gcs_fault_tolerance: pulumi.Input[Optional[GcsFaultToleranceArgs]]


def head_service_name(cluster_name: str) -> str:
    """KubeRay's name for the head Service."""
    return f"{cluster_name}-head-svc"


def auth_token_secret(cluster_name: str) -> str:
    """The Secret KubeRay creates for token authentication (its key: AUTH_TOKEN_KEY)."""
    return cluster_name


def gcs_fault_tolerance_options(ft: Mapping[str, Any]) -> dict[str, Any]:
    """KubeRay's `gcsFaultToleranceOptions` from GcsFaultToleranceArgs."""
    options: dict[str, Any] = {"backend": ft["backend"]}
    if ft.get("external_storage_namespace"):
        options["externalStorageNamespace"] = ft["external_storage_namespace"]
    if ft["backend"] == "rocksdb":
        storage = dict(ft.get("storage") or {})
        fields = {
            "size": storage.get("size"),
            "storageClassName": storage.get("storage_class_name"),
            "accessModes": list(storage.get("access_modes") or ["ReadWriteOnce"]),
            "claimName": storage.get("claim_name"),
            "deletionPolicy": storage.get("deletion_policy"),
        }
        options["storage"] = {key: value for key, value in fields.items() if value}
    else:
        redis = dict(ft.get("redis") or {})
        options["redisAddress"] = redis["address"]
        if redis.get("password_secret"):
            secret = redis["password_secret"]
            options["redisPassword"] = {"valueFrom": {"secretKeyRef": {"name": secret["name"], "key": secret["key"]}}}
    return options


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
        spec_group: dict[str, Any] = {"groupName": group["name"]}
        if mode == "fixed":
            replicas = group.get("replicas")
            minimum = maximum = minimum if replicas is None else replicas
            spec_group["replicas"] = minimum
        # "ray" mode: no `replicas`. Ray's autoscaler writes it; a value here would be
        # applied again by every `pulumi up` and undo the autoscaler's decisions.
        spec_group.update(minReplicas=minimum, maxReplicas=maximum)
        if mode == "ray" and group.get("idle_timeout_seconds") is not None:
            spec_group["idleTimeoutSeconds"] = group["idle_timeout_seconds"]
        spec_group["rayStartParams"] = ray_start_params(ray_resources(group.get("resources") or {}, group.get("ray_resources")))
        spec_group["template"] = ray_pod_template(
            group=group,
            container_name="ray-worker",
            image=group.get("image") or image,
            injection=injection,
            service_account_name=args.get("service_account_name"),
        )
        spec["workerGroupSpecs"].append(spec_group)
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
    spec["upgradeStrategy"] = {"type": args.get("upgrade_strategy") or "Recreate"}
    if (args.get("auth_mode") or "token") == "token":
        spec["authOptions"] = {"mode": "token"}
    if args.get("gcs_fault_tolerance"):
        spec["gcsFaultToleranceOptions"] = gcs_fault_tolerance_options(args["gcs_fault_tolerance"])
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
    auth_token_command: pulumi.Output[str]

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
                    # Ray's autoscaler patches workerGroupSpecs[i].replicas. The CRD
                    # declares workerGroupSpecs an atomic list, so that patch makes the
                    # autoscaler own the whole list, and the next `pulumi up` that
                    # changes this RayCluster would fail on the field conflict. Forcing
                    # lets it through; the groups restart from minReplicas (README).
                    "pulumi.com/patchForce": "true",
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
            manifest = dashboard_ingress(ingress, service, f"{cluster_name}-dashboard", namespace)
            self.ingress = k8s.networking.v1.Ingress(
                f"{name}-dashboard",
                metadata=manifest["metadata"],
                spec=manifest["spec"],
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
        # How to obtain the token, never the token itself.
        self.auth_token_command = pulumi.Output.from_input(args.get("auth_mode") or "token").apply(
            lambda mode: f"kubectl -n {namespace} get secret {auth_token_secret(cluster_name)} "
            f"-o jsonpath='{{.data.{AUTH_TOKEN_KEY}}}' | base64 -d" if mode == "token" else ""
        )
        self.register_outputs(
            {
                "auth_token_command": self.auth_token_command,
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
