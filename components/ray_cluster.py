"""RayCluster: a `ray.io/v1` RayCluster that `pulumi up` waits for, plus its dashboard Ingress."""

from typing import Any, Mapping, Optional, Sequence, Required, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.dashboard_ingress import DASHBOARD_PORT, DashboardIngressArgs, dashboard_ingress
from components.ray_monitors import AUTOSCALER_METRICS_PORT_NAME, DASHBOARD_METRICS_PORT_NAME
from components.ray_network_policies import AUTOSCALER_METRICS_PORT, DASHBOARD_METRICS_PORT
from components.ray_node import ray_resources, ray_resources_problem, ray_start_params
from components.ray_pod import KUBERNETES_API_CLIENT_LABEL, TMP_MOUNT, SecretInjection, container_security_context, ray_pod_template
from components.args import ComponentArgsError, check_args, component_label
from components.quantity import resources_problem
from components import defaults

GCS_PORT = 6379
CLIENT_PORT = 10001
# KubeRay's token Secret: named after the cluster, the token under this key.
AUTH_TOKEN_KEY = "auth_token"
HEAD_PORTS = (
    {"containerPort": GCS_PORT, "name": "gcs"},
    {"containerPort": DASHBOARD_PORT, "name": "dashboard"},
    {"containerPort": CLIENT_PORT, "name": "client"},
)
# Ray's metrics endpoints on the head besides the node's (`metrics`, 8080, which
# KubeRay adds to every Ray container): the autoscaler's and the dashboard's
# (Ray's defaults, AUTOSCALER_METRIC_PORT and DASHBOARD_METRIC_PORT). Named, so
# a PodMonitor finds them (RayMonitors); the name is at most 15 characters.
HEAD_METRICS_PORTS = (
    {"containerPort": AUTOSCALER_METRICS_PORT, "name": AUTOSCALER_METRICS_PORT_NAME},
    {"containerPort": DASHBOARD_METRICS_PORT, "name": DASHBOARD_METRICS_PORT_NAME},
)
# The Ray autoscaler sidecar KubeRay adds to the head (autoscaling: ray).
AUTOSCALER_RESOURCES = {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}}


class HeadGroupArgs(TypedDict, total=False):
    """The head group."""

    # The pod fields every group shares. Declared in each group type, not
    # inherited: Pulumi's schema inference reads a field's docstring only from
    # the class that declares it, and other languages need the descriptions.
    resources: Mapping[str, Mapping[str, str]]
    """{requests, limits} of the Ray container (default none: Ray detects)."""
    ray_resources: Mapping[str, float]
    """overrides of derived Ray resources: CPU, GPU, memory (bytes), custom (default {}; head: CPU 0 is the caller's choice)."""
    node_selector: Mapping[str, str]
    """Pod nodeSelector (default {})."""
    tolerations: Sequence[Mapping[str, Any]]
    """Pod tolerations (default [])."""
    affinity: Mapping[str, Any]
    """Pod affinity (default none)."""
    labels: Mapping[str, str]
    """Extra pod labels (default {})."""
    env: Mapping[str, str]
    """Extra environment variables of the Ray container (default {})."""
    pod_template: Mapping[str, Any]
    """raw PodTemplateSpec merged last (default {})."""
    service_type: str
    """Type of the <cluster>-head-svc Service: ClusterIP, NodePort or LoadBalancer (default ClusterIP)."""


class WorkerGroupArgs(TypedDict, total=False):
    """A worker group managed by KubeRay."""

    # The pod fields every group shares. Declared in each group type, not
    # inherited: Pulumi's schema inference reads a field's docstring only from
    # the class that declares it, and other languages need the descriptions.
    resources: Mapping[str, Mapping[str, str]]
    """{requests, limits} of the Ray container (default none: Ray detects)."""
    ray_resources: Mapping[str, float]
    """overrides of derived Ray resources: CPU, GPU, memory (bytes), custom (default {}; head: CPU 0 is the caller's choice)."""
    node_selector: Mapping[str, str]
    """Pod nodeSelector (default {})."""
    tolerations: Sequence[Mapping[str, Any]]
    """Pod tolerations (default [])."""
    affinity: Mapping[str, Any]
    """Pod affinity (default none)."""
    labels: Mapping[str, str]
    """Extra pod labels (default {})."""
    env: Mapping[str, str]
    """Extra environment variables of the Ray container (default {})."""
    pod_template: Mapping[str, Any]
    """raw PodTemplateSpec merged last (default {})."""
    name: Required[str]
    """group name (required)."""
    autoscaling: str
    """"ray" (KubeRay's autoscaler scales min..max) or "fixed" (default "ray")."""
    replicas: Optional[int]
    """fixed count (default min_replicas). In "ray" mode it is never sent: Ray's autoscaler owns it, and KubeRay starts the group at min_replicas."""
    min_replicas: int
    """Fewest workers (default 0)."""
    max_replicas: int
    """Most workers (default 4)."""
    image: Optional[str]
    """this group's image (default the cluster's)."""
    idle_timeout_seconds: Optional[int]
    """"ray" mode, autoscaler v2: idle time before its workers go (default the cluster's)."""
    termination_grace_period_seconds: Optional[int]
    """time a stopping worker pod gets before it is killed (default Kubernetes', 30)."""


class AutoscalerArgs(TypedDict, total=False):
    """KubeRay's in-tree Ray autoscaler (groups in "ray" mode)."""

    version: str
    """Ray autoscaler version, v1 or v2 (default "v2")."""
    upscaling_mode: str
    """Default, Aggressive or Conservative (default "Default")."""
    idle_timeout_seconds: int
    """Idle time before a worker is removed (default 60)."""


class GcsStorageArgs(TypedDict, total=False):
    """rocksdb backend's PVC: size, storage_class_name, access_modes (default KubeRay's),
    or claim_name (an existing PVC, alone), deletion_policy (default DeleteWithCluster)."""

    size: Optional[str]
    """PVC size, e.g. 10Gi (needed unless claim_name is given)."""
    storage_class_name: Optional[str]
    """Storage class (default the cluster's default class)."""
    access_modes: Sequence[str]
    """PVC access modes (default KubeRay's, ReadWriteOnce; not with claim_name)."""
    claim_name: Optional[str]
    """An existing PVC to use instead of creating one (default none)."""
    deletion_policy: str
    """DeleteWithCluster or Retain (default DeleteWithCluster)."""


class SecretKeyArgs(TypedDict):
    """A key of an existing Secret: name, key."""

    name: str
    """Secret name."""
    key: str
    """Key in the Secret."""


class RedisArgs(TypedDict, total=False):
    """redis backend: address (host:port, required), password_secret (SecretKeyArgs, default none)."""

    address: Required[str]
    """host:port of the Redis (required)."""
    password_secret: Optional[SecretKeyArgs]
    """The password, from an existing Secret (default none)."""


class GcsFaultToleranceArgs(TypedDict, total=False):
    """Head fault tolerance: backend "rocksdb" (storage) or "redis" (redis) (required),
    external_storage_namespace (default KubeRay's)."""

    backend: Required[str]
    """rocksdb (a PVC) or redis (an external Redis) (required)."""
    storage: Optional[GcsStorageArgs]
    """rocksdb: the PVC."""
    redis: Optional[RedisArgs]
    """redis: address and password."""
    external_storage_namespace: Optional[str]
    """Key prefix in the store (default KubeRay's: the cluster's UID)."""


class RayClusterArgs(TypedDict, total=False):
    """Arguments of RayCluster."""

    namespace: Required[str]
    """namespace of the cluster (required, plain string: names are derived from it)."""
    cluster_name: str
    """metadata.name (default: the component's name; plain string)."""
    ray_version: Required[pulumi.Input[str]]
    """Ray version of the image (required)."""
    image: Required[pulumi.Input[str]]
    """Ray image for head and workers (required)."""
    head: pulumi.Input[HeadGroupArgs]
    """HeadGroupArgs (default {})."""
    worker_groups: pulumi.Input[Sequence[WorkerGroupArgs]]
    """WorkerGroupArgs list, autoscaling "ray" or "fixed" (default [])."""
    autoscaler: pulumi.Input[AutoscalerArgs]
    """AutoscalerArgs (default {})."""
    injection: pulumi.Input[SecretInjection]
    """SecretInjection, Secrets for Ray containers (default none)."""
    service_account_name: pulumi.Input[Optional[str]]
    """service account of Ray pods (default the namespace's default)."""
    ready_timeout_seconds: int
    """how long `pulumi up` waits for state "ready" (default 900)."""
    dashboard_ingress: DashboardIngressArgs
    """DashboardIngressArgs (default disabled; plain values)."""
    upgrade_strategy: pulumi.Input[str]
    """"Recreate" (a changed pod spec recreates every pod; running jobs end) or "None" (default "Recreate"; needs KubeRay 1.6)."""
    auth_mode: pulumi.Input[str]
    """"token" (KubeRay generates a token Secret named after the cluster; Ray >= 2.52, KubeRay >= 1.5.1) or "disabled" (default "token")."""
    gcs_fault_tolerance: pulumi.Input[Optional[GcsFaultToleranceArgs]]
    """GcsFaultToleranceArgs (default none: a restarted head loses the cluster's state)."""
    read_only_root_filesystem: pulumi.Input[bool]
    """Ray containers cannot write their image; /tmp (and /tmp/ray) and /dev/shm are emptyDirs (default True)."""
    head_metrics_ports: pulumi.Input[bool]
    """Declare the head's autoscaler (as-metrics, 44217) and dashboard (dash-metrics, 44227) metrics ports, for PodMonitors (default False: a changed port list is a changed head)."""


def head_service_name(cluster_name: str) -> str:
    """KubeRay's name for the head Service."""
    return f"{cluster_name}-head-svc"


def dashboard_ingress_name(cluster_name: str) -> str:
    """The dashboard Ingress (dashboard_ingress enabled)."""
    return f"{cluster_name}-dashboard"


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
            "accessModes": list(storage.get("access_modes") or ()),
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


def check_group_resources(component: str, where: str, group: Any) -> None:
    """A group's container resources as Kubernetes takes them (quantities, names, GPU counts), its Ray resources as `ray start` does."""
    if not isinstance(group, Mapping):
        return
    overrides = group.get("ray_resources")
    if isinstance(overrides, Mapping):
        problem = ray_resources_problem(overrides)
        if problem:
            raise ComponentArgsError(component, f"{where}.ray_resources.{problem[0]}", problem[1])
    resources = group.get("resources")
    if resources is None or isinstance(resources, pulumi.Output):
        return
    problem = resources_problem(resources)
    if problem:
        field, message = problem
        raise ComponentArgsError(component, f"{where}.resources{'.' + field if field else ''}", message)


def check_worker_groups(component: str, groups: Any, head: Any = None) -> None:
    """What the types cannot say: the mode, min <= max, the resources. Outputs are checked once known."""
    if head is not None and not isinstance(head, pulumi.Output):
        check_group_resources(component, "head", head)
    if isinstance(groups, pulumi.Output) or not groups:
        return
    for index, group in enumerate(groups):
        if isinstance(group, pulumi.Output):
            continue
        where = f"worker_groups[{index}]"
        check_group_resources(component, where, group)
        mode = group.get("autoscaling", "ray")
        if mode not in ("ray", "fixed"):
            raise ComponentArgsError(component, f"{where}.autoscaling", f"RayCluster takes 'ray' or 'fixed', not {mode!r} (an HPA-scaled group is a RayWorkerPool)")
        minimum, maximum = group.get("min_replicas", defaults.MIN_WORKERS), group.get("max_replicas", defaults.MAX_WORKERS)
        for key, value in (("min_replicas", minimum), ("max_replicas", maximum), ("replicas", group.get("replicas"))):
            if isinstance(value, int) and value < 0:
                raise ComponentArgsError(component, f"{where}.{key}", f"must be >= 0, got {value}")
        if isinstance(minimum, int) and isinstance(maximum, int) and minimum > maximum:
            raise ComponentArgsError(component, f"{where}.max_replicas", f"must be >= min_replicas ({minimum}), got {maximum}")


def ray_cluster_spec(args: Mapping[str, Any], component: str = "RayCluster") -> dict[str, Any]:
    """The RayCluster `spec` for resolved (plain) arguments."""
    check_worker_groups(component, args.get("worker_groups"), args.get("head"))
    head = dict(args.get("head") or {})
    groups = [dict(group) for group in args.get("worker_groups") or ()]
    injection = args.get("injection") or {}
    image = args["image"]
    head_params = ray_start_params(ray_resources(head.get("resources") or {}, head.get("ray_resources")))
    head_params["dashboard-host"] = "0.0.0.0"
    # The autoscaler sidecar is the only Ray process that calls the Kubernetes
    # API: only its head mounts a ServiceAccount token, and is labelled for the
    # NetworkPolicy that lets it reach the API server.
    autoscaled = any(group.get("autoscaling", "ray") == "ray" for group in groups)
    read_only = args.get("read_only_root_filesystem", True)
    spec: dict[str, Any] = {
        "rayVersion": args["ray_version"],
        "headGroupSpec": {
            "serviceType": head.get("service_type") or defaults.HEAD_SERVICE_TYPE,
            "rayStartParams": head_params,
            "template": ray_pod_template(
                group=head,
                container_name="ray-head",
                image=image,
                injection=injection,
                service_account_name=args.get("service_account_name"),
                extra_labels={KUBERNETES_API_CLIENT_LABEL: "true"} if autoscaled else None,
                ports=HEAD_PORTS + (HEAD_METRICS_PORTS if args.get("head_metrics_ports") else ()),
                automount_service_account_token=autoscaled,
                read_only_root_filesystem=read_only,
            ),
        },
        "workerGroupSpecs": [],
    }
    for group in groups:
        mode = group.get("autoscaling", "ray")
        minimum = group.get("min_replicas", defaults.MIN_WORKERS)
        maximum = group.get("max_replicas", defaults.MAX_WORKERS)
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
            termination_grace_period_seconds=group.get("termination_grace_period_seconds"),
            read_only_root_filesystem=read_only,
        )
        spec["workerGroupSpecs"].append(spec_group)
    if autoscaled:
        autoscaler = dict(args.get("autoscaler") or {})
        spec["enableInTreeAutoscaling"] = True
        spec["autoscalerOptions"] = {
            "version": autoscaler.get("version", defaults.AUTOSCALER_VERSION),
            "upscalingMode": autoscaler.get("upscaling_mode", defaults.AUTOSCALER_UPSCALING_MODE),
            "idleTimeoutSeconds": autoscaler.get("idle_timeout_seconds", defaults.AUTOSCALER_IDLE_TIMEOUT_SECONDS),
            "resources": AUTOSCALER_RESOURCES,
            "securityContext": container_security_context(read_only),
            # The head pod's /tmp: the autoscaler writes its logs under /tmp/ray.
            "volumeMounts": [dict(TMP_MOUNT)],
        }
    spec["upgradeStrategy"] = {"type": args.get("upgrade_strategy") or defaults.UPGRADE_STRATEGY}
    if (args.get("auth_mode") or defaults.AUTH_MODE) == "token":
        spec["authOptions"] = {"mode": "token"}
    if args.get("gcs_fault_tolerance"):
        spec["gcsFaultToleranceOptions"] = gcs_fault_tolerance_options(args["gcs_fault_tolerance"])
    return spec


class RayCluster(pulumi.ComponentResource):
    """A KubeRay RayCluster in one namespace; `pulumi up` returns once it is ready."""

    cluster_name: pulumi.Output[str]
    """Name of the RayCluster."""
    namespace: pulumi.Output[str]
    """Namespace of the RayCluster."""
    head_service_name: pulumi.Output[str]
    """KubeRay's head Service (<cluster>-head-svc); resolves once the cluster is ready."""
    head_service_dns: pulumi.Output[str]
    """In-cluster DNS name of the head Service."""
    jobs_api_address: pulumi.Output[str]
    """In-cluster URL of the Ray Jobs API and dashboard (port 8265)."""
    client_address: pulumi.Output[str]
    """In-cluster Ray Client address (ray://..., port 10001)."""
    gcs_address: pulumi.Output[str]
    """In-cluster GCS address (port 6379)."""
    dashboard_port_forward: pulumi.Output[str]
    """kubectl command that forwards the dashboard to localhost:8265."""
    auth_token_command: pulumi.Output[str]
    """kubectl command that prints the auth token (empty when auth is disabled); never the token."""

    def __init__(self, name: str, args: RayClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        label = component_label("RayCluster", name)
        check_args(label, RayClusterArgs, args)
        check_worker_groups(label, args.get("worker_groups"), args.get("head"))
        super().__init__("raykube:index:RayCluster", name, None, opts)
        namespace = args["namespace"]
        cluster_name = args.get("cluster_name") or name
        timeout = int(args.get("ready_timeout_seconds", defaults.READY_TIMEOUT_SECONDS))
        spec = pulumi.Output.from_input({key: value for key, value in args.items() if key != "dashboard_ingress"}).apply(
            lambda resolved: ray_cluster_spec(resolved, label)
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
                    # lets it through; the spec then reads replicas 0 until the autoscaler
                    # writes its count again, and KubeRay removes no worker meanwhile (docs/day-2.md).
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
            manifest = dashboard_ingress(ingress, service, dashboard_ingress_name(cluster_name), namespace)
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
        self.auth_token_command = pulumi.Output.from_input(args.get("auth_mode") or defaults.AUTH_MODE).apply(
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
