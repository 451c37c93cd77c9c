"""RayService: a KubeRay `ray.io/v1` RayService (Ray Serve applications on a RayCluster it manages).

KubeRay keeps the Serve config and the cluster apart: a change to the Serve
config alone is applied to the running cluster in place; a change to the
cluster spec brings up a second RayCluster and moves the `<name>-serve-svc`
Service to it once its applications are healthy, then deletes the old one
(docs/serving.md).
"""

import json
from typing import Any, Mapping, Optional, Required, Sequence, TypedDict

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pulumi_kubernetes import _utilities as _kubernetes_utilities

from components.args import ComponentArgsError, check_args, component_label
from components.dashboard_ingress import DASHBOARD_PORT, DashboardIngressArgs, dashboard_ingress
from components.ray_cluster import AutoscalerArgs, HeadGroupArgs, WorkerGroupArgs, check_worker_groups, head_service_name, ray_cluster_spec
from components.merge import deep_merge
from components.ray_pod import RAY_SERVE_LABEL, SecretInjection
from components import defaults

# Ray Serve's HTTP port (Ray's default, and KubeRay's: its serve Service and its
# health checks use the Ray container's port named "serve", else 8000).
SERVE_PORT = 8000
SERVE_PORT_NAME = "serve"
# What `pulumi up` waits for: KubeRay's Ready condition (the Service has serve
# endpoints; KubeRay >= 1.3 also mirrors it as status.serviceStatus "Running")
# and no upgrade in progress, so a green `pulumi up` after a cluster change
# means the new cluster serves and the old one is on its way out.
WAIT_FOR = ["condition=Ready", "condition=UpgradeInProgress=False"]
UPGRADE_TYPES = ("NewCluster", "None", "NewClusterWithIncrementalUpgrade")
INCREMENTAL_UPGRADE = "NewClusterWithIncrementalUpgrade"
# KubeRay names a RayService's RayCluster "<service>-<5 characters>" (at most 53): 47 leaves room.
RAY_SERVICE_NAME_MAX = 47


class ClusterUpgradeOptionsArgs(TypedDict, total=False):
    """Incremental upgrades (upgrade_strategy NewClusterWithIncrementalUpgrade; the operator's RayServiceIncrementalUpgrade gate): traffic moves to the new cluster in steps through a Gateway."""

    gateway_class_name: Required[str]
    """The Gateway API GatewayClass of the Gateway KubeRay creates (required)."""
    step_size_percent: int
    """Traffic moved per step, percent (default 10)."""
    interval_seconds: int
    """Time between steps (default 30)."""
    max_surge_percent: int
    """Capacity the new cluster may add over the old one, percent (default 100)."""


class RayServiceArgs(TypedDict, total=False):
    """Arguments of RayService."""

    namespace: Required[str]
    """namespace of the service; a KubeRay operator must watch it (required, plain string)."""
    service_name: str
    """metadata.name (default: the component's name; plain string; at most 47 characters)."""
    serve_config: Required[pulumi.Input[Mapping[str, Any]]]
    """The Ray Serve config as Ray's ServeDeploySchema takes it (snake_case: applications with name, import_path, route_prefix, runtime_env, deployments), rendered as KubeRay's serveConfigV2 (required)."""
    working_dir: pulumi.Input[Optional[str]]
    """A remote URI (s3://..., https://...) set as every application's runtime_env working_dir (default none: the applications' own)."""
    ray_version: Required[pulumi.Input[str]]
    """Ray version of the cluster's image (required)."""
    image: Required[pulumi.Input[str]]
    """Ray image for head and workers (required)."""
    head: pulumi.Input[HeadGroupArgs]
    """Head group, as for RayCluster (default {})."""
    worker_groups: pulumi.Input[Sequence[WorkerGroupArgs]]
    """Worker groups, ray or fixed, as for RayCluster (default [])."""
    autoscaler: pulumi.Input[AutoscalerArgs]
    """Autoscaler options, as for RayCluster (default {}); Ray's autoscaler is on when a group has autoscaling "ray"."""
    injection: pulumi.Input[SecretInjection]
    """Secrets for the Ray containers, as for RayCluster (default none)."""
    service_account_name: pulumi.Input[Optional[str]]
    """Service account of the Ray pods (default the namespace's default)."""
    auth_mode: pulumi.Input[str]
    """token or disabled, as for RayCluster (default "token")."""
    read_only_root_filesystem: pulumi.Input[bool]
    """Ray containers cannot write their image, as for RayCluster (default True)."""
    head_metrics_ports: pulumi.Input[bool]
    """The head declares its autoscaler and dashboard metrics ports, as for RayCluster (default False)."""
    upgrade_strategy: str
    """NewCluster (a changed cluster spec brings up a new RayCluster; traffic moves once it is healthy), None (never a new cluster), or NewClusterWithIncrementalUpgrade (default "NewCluster")."""
    cluster_upgrade_options: Optional[ClusterUpgradeOptionsArgs]
    """ClusterUpgradeOptionsArgs: required with NewClusterWithIncrementalUpgrade, refused otherwise (default none)."""
    ray_cluster_deletion_delay_seconds: Optional[int]
    """How long an old RayCluster stays after traffic left it (default KubeRay's, 60)."""
    ready_timeout_seconds: int
    """how long `pulumi up` waits for the service to be Ready with no upgrade in progress (default 900)."""
    serve_ingress: DashboardIngressArgs
    """An Ingress to the <name>-serve-svc Service's port 8000, as the dashboard's (default disabled; plain values)."""


def serve_service_name(service_name: str) -> str:
    """The Service KubeRay points at the cluster that serves (port 8000)."""
    return f"{service_name}-serve-svc"


def serve_ingress_name(service_name: str) -> str:
    """The Ingress to the serve Service (serve_ingress enabled)."""
    return f"{service_name}-serve"


def serve_config_v2(serve_config: Mapping[str, Any], working_dir: Optional[str] = None) -> str:
    """KubeRay's `serveConfigV2`: the Serve config as YAML text, `working_dir` in every application's runtime_env."""
    config = dict(serve_config)
    applications = []
    for application in config.get("applications") or ():
        application = dict(application)
        if working_dir:
            application["runtime_env"] = {**dict(application.get("runtime_env") or {}), "working_dir": working_dir}
        applications.append(application)
    config["applications"] = applications
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def _serving_pod(template: dict[str, Any]) -> dict[str, Any]:
    """The Ray container declares port 8000 as "serve" (KubeRay's serve Service takes the head's ports named so),
    and the pod is labelled for the NetworkPolicy that opens that port."""
    template.update(deep_merge({"metadata": {"labels": {RAY_SERVE_LABEL[0]: RAY_SERVE_LABEL[1]}}}, template))
    container = template["spec"]["containers"][0]
    ports = list(container.get("ports") or ())
    if not any(port.get("name") == SERVE_PORT_NAME for port in ports):
        ports.append({"containerPort": SERVE_PORT, "name": SERVE_PORT_NAME})
    container["ports"] = ports
    return template


def check_upgrade(component: str, args: Mapping[str, Any]) -> None:
    """The upgrade strategy KubeRay's validation takes (utils/validation.go ValidateRayServiceSpec)."""
    strategy = args.get("upgrade_strategy") or defaults.SERVICE_UPGRADE_STRATEGY
    if strategy not in UPGRADE_TYPES:
        raise ComponentArgsError(component, "upgrade_strategy", f"KubeRay takes {', '.join(UPGRADE_TYPES)}, not {strategy!r}")
    options = args.get("cluster_upgrade_options")
    if isinstance(strategy, pulumi.Output) or isinstance(options, pulumi.Output):
        return  # checked once known (ray_service_spec)
    if strategy != INCREMENTAL_UPGRADE:
        if options:
            raise ComponentArgsError(component, "cluster_upgrade_options", f"only upgrade_strategy {INCREMENTAL_UPGRADE} takes them")
        return
    if not options or not options.get("gateway_class_name"):
        raise ComponentArgsError(component, "cluster_upgrade_options.gateway_class_name", f"{INCREMENTAL_UPGRADE} routes traffic through a Gateway: name its GatewayClass")
    step = options.get("step_size_percent", defaults.INCREMENTAL_STEP_SIZE_PERCENT)
    surge = options.get("max_surge_percent", defaults.INCREMENTAL_MAX_SURGE_PERCENT)
    interval = options.get("interval_seconds", defaults.INCREMENTAL_INTERVAL_SECONDS)
    for key, value in (("step_size_percent", step), ("max_surge_percent", surge)):
        if not 0 <= value <= 100:
            raise ComponentArgsError(component, f"cluster_upgrade_options.{key}", f"must be between 0 and 100, got {value}")
    if step > surge:
        raise ComponentArgsError(component, "cluster_upgrade_options.step_size_percent", f"must be <= max_surge_percent ({surge}), got {step}")
    if interval <= 0:
        raise ComponentArgsError(component, "cluster_upgrade_options.interval_seconds", f"must be > 0, got {interval}")
    groups = args.get("worker_groups")
    if isinstance(groups, (list, tuple)) and not any(isinstance(group, Mapping) and group.get("autoscaling", "ray") == "ray" for group in groups):
        raise ComponentArgsError(component, "worker_groups", f"{INCREMENTAL_UPGRADE} needs Ray's autoscaler: give a worker group autoscaling \"ray\"")


_CLUSTER_KEYS = ("ray_version", "image", "head", "worker_groups", "autoscaler", "injection", "service_account_name", "auth_mode",
                 "read_only_root_filesystem", "head_metrics_ports")


def ray_service_spec(args: Mapping[str, Any], component: str = "RayService") -> dict[str, Any]:
    """The RayService `spec` for resolved (plain) arguments."""
    check_upgrade(component, args)
    cluster = ray_cluster_spec({key: args[key] for key in _CLUSTER_KEYS if key in args}, component)
    # The RayService owns upgrades (spec.upgradeStrategy): its cluster is replaced, never upgraded in place.
    cluster.pop("upgradeStrategy", None)
    _serving_pod(cluster["headGroupSpec"]["template"])
    for group in cluster["workerGroupSpecs"]:
        _serving_pod(group["template"])
    strategy = args.get("upgrade_strategy") or defaults.SERVICE_UPGRADE_STRATEGY
    upgrade: dict[str, Any] = {"type": strategy}
    if strategy == INCREMENTAL_UPGRADE:
        options = args["cluster_upgrade_options"]
        upgrade["clusterUpgradeOptions"] = {
            "gatewayClassName": options["gateway_class_name"],
            "stepSizePercent": options.get("step_size_percent", defaults.INCREMENTAL_STEP_SIZE_PERCENT),
            "intervalSeconds": options.get("interval_seconds", defaults.INCREMENTAL_INTERVAL_SECONDS),
            "maxSurgePercent": options.get("max_surge_percent", defaults.INCREMENTAL_MAX_SURGE_PERCENT),
        }
    spec: dict[str, Any] = {
        "serveConfigV2": serve_config_v2(args["serve_config"], args.get("working_dir")),
        "rayClusterConfig": cluster,
        "upgradeStrategy": upgrade,
    }
    if args.get("ray_cluster_deletion_delay_seconds") is not None:
        spec["rayClusterDeletionDelaySeconds"] = args["ray_cluster_deletion_delay_seconds"]
    return spec


class _ObservedCustomResource(pulumi.CustomResource):
    """A custom resource whose `status` Pulumi reads back once it is created (after the waitFor)."""

    status: pulumi.Output[Any]
    """The object's status as the API server returned it."""

    def __init__(self, name: str, api_version: str, kind: str, metadata: Any, spec: Any, opts: pulumi.ResourceOptions):
        # The same registration as pulumi_kubernetes' CustomResource, plus a `status` output to resolve.
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(version=_kubernetes_utilities.get_version()))
        props = {"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec, "status": None}
        super().__init__(f"kubernetes:{api_version}:{kind}", name, props, opts)


class RayService(pulumi.ComponentResource):
    """A KubeRay RayService: Ray Serve applications on a RayCluster KubeRay manages and upgrades without dropping traffic."""

    service_name: pulumi.Output[str]
    """Name of the RayService."""
    namespace: pulumi.Output[str]
    """Namespace of the RayService."""
    serve_service_name: pulumi.Output[str]
    """KubeRay's Service in front of the serving cluster (<name>-serve-svc, port 8000)."""
    serve_address: pulumi.Output[str]
    """In-cluster URL of Ray Serve (http://<name>-serve-svc.<namespace>.svc:8000); resolves once the service is Ready."""
    dashboard_address: pulumi.Output[str]
    """In-cluster URL of the serving cluster's dashboard (http://<name>-head-svc.<namespace>.svc:8265)."""
    active_cluster_name: pulumi.Output[str]
    """The RayCluster that serves (status.activeServiceStatus.rayClusterName), as read after `pulumi up`; unknown in a preview."""
    status_command: pulumi.Output[str]
    """kubectl command that prints the service's Ready condition and its active and pending clusters."""

    def __init__(self, name: str, args: RayServiceArgs, opts: Optional[pulumi.ResourceOptions] = None):
        label = component_label("RayService", name)
        check_args(label, RayServiceArgs, args)
        check_worker_groups(label, args.get("worker_groups"), args.get("head"))
        check_upgrade(label, args)
        namespace = args["namespace"]
        service_name = args.get("service_name") or name
        if len(service_name) > RAY_SERVICE_NAME_MAX:
            raise ComponentArgsError(label, "service_name", f"{service_name!r} is longer than KubeRay takes ({RAY_SERVICE_NAME_MAX} characters)")
        super().__init__("raykube:index:RayService", name, None, opts)
        timeout = int(args.get("ready_timeout_seconds", defaults.READY_TIMEOUT_SECONDS))
        spec = pulumi.Output.from_input({key: value for key, value in args.items() if key != "serve_ingress"}).apply(
            lambda resolved: ray_service_spec(resolved, label)
        )
        self.resource = _ObservedCustomResource(
            f"{name}-rayservice",
            "ray.io/v1",
            "RayService",
            metadata={
                "name": service_name,
                "namespace": namespace,
                "labels": {"app.kubernetes.io/managed-by": "raykube"},
                "annotations": {
                    # Several expressions are a JSON list: every one must hold.
                    "pulumi.com/waitFor": json.dumps(WAIT_FOR),
                    # No patchForce, unlike RayCluster: Ray's autoscaler patches the RayCluster KubeRay
                    # made, never this object, and the operator writes only its finalizer and status here.
                    "pulumi.com/timeoutSeconds": str(timeout),
                },
            },
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self),
        )
        serve_service = serve_service_name(service_name)
        ingress = dict(args.get("serve_ingress") or {})
        self.ingress: Optional[k8s.networking.v1.Ingress] = None
        if ingress.get("enabled"):
            manifest = dashboard_ingress(ingress, serve_service, serve_ingress_name(service_name), namespace, port=SERVE_PORT)
            self.ingress = k8s.networking.v1.Ingress(
                f"{name}-serve",
                metadata=manifest["metadata"],
                spec=manifest["spec"],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.resource]),
            )
        ready = self.resource.id.apply(lambda _: None)  # outputs resolve once the service is Ready
        self.service_name = pulumi.Output.from_input(service_name)
        self.namespace = pulumi.Output.from_input(namespace)
        self.serve_service_name = pulumi.Output.from_input(serve_service)
        self.serve_address = ready.apply(lambda _: f"http://{serve_service}.{namespace}.svc:{SERVE_PORT}")
        # KubeRay's RayService head Service (<name>-head-svc) follows the active cluster.
        self.dashboard_address = ready.apply(lambda _: f"http://{head_service_name(service_name)}.{namespace}.svc:{DASHBOARD_PORT}")
        self.active_cluster_name = self.resource.status.apply(
            lambda status: ((status or {}).get("activeServiceStatus") or {}).get("rayClusterName") or ""
        )
        self.status_command = pulumi.Output.from_input(
            f"kubectl -n {namespace} get rayservice {service_name} -o jsonpath="
            "'{.status.conditions[?(@.type==\"Ready\")].status} active={.status.activeServiceStatus.rayClusterName} "
            "pending={.status.pendingServiceStatus.rayClusterName}{\"\\n\"}'"
        )
        self.register_outputs(
            {
                "service_name": self.service_name,
                "namespace": self.namespace,
                "serve_service_name": self.serve_service_name,
                "serve_address": self.serve_address,
                "dashboard_address": self.dashboard_address,
                "active_cluster_name": self.active_cluster_name,
                "status_command": self.status_command,
            }
        )
