"""RayWorkerPool: Ray workers as a Deployment scaled by an HPA on CPU.

The RayCluster CRD has no /scale subresource, so an HPA cannot scale a
KubeRay worker group. A worker group in `hpa` mode becomes this pool instead:
plain `ray start --block` pods that join the KubeRay head through its
Service, with CPU requests (HPA utilization is relative to them), `--num-cpus`
derived from those requests, and a preStop hook that drains the Ray node
with Ray's own drain facility, so a scale-down never kills running tasks.

The pods get what KubeRay gives its own workers: the cluster's image and Ray
version (they roll with the head), a memory-backed /dev/shm for the object
store, an init container that waits for the head's GCS, readiness and
liveness probes on the Ray node's health endpoint, and the cluster's auth
token.
"""

from pathlib import Path
from typing import Any, Mapping, Optional, Required, Sequence, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.horizontal_pod_autoscaler import HorizontalPodAutoscaler, ScaleUpArgs
from components.quantity import parse_quantity
from components.ray_cluster import AUTH_TOKEN_KEY, GCS_PORT, auth_token_secret, check_group_resources, head_service_name
from components.ray_node import ray_resources, ray_start_args, ray_start_params
from components.ray_monitors import METRICS_PORT_NAME
from components.ray_network_policies import METRICS_EXPORT_PORT
from components.ray_pod import RAY_NODE_LABEL, SECRET_FILE_MODE, TMP_MOUNT, SecretInjection, container_security_context, ray_pod_template
from components.versions import version_tuple
from components.args import ComponentArgsError, check_args, component_label
from components import defaults

DRAIN_SCRIPT = (Path(__file__).with_name("ray_worker_drain.py")).read_text(encoding="utf-8")
# Kubernetes gives a pod terminationGracePeriodSeconds in all, preStop hook
# included, then SIGKILLs it. The budget: the hook drains for at most
# (grace - SIGTERM drain - margin), then SIGTERM makes `ray start --block`
# drain again for at most RAY_SIGTERM_DRAIN_SECONDS (the node is usually gone
# by then), and the margin covers the hook's start-up and Ray's exit.
RAY_SIGTERM_DRAIN_SECONDS = 10
DRAIN_MARGIN_SECONDS = 10
# The Ray node's health endpoint on the dashboard agent (Ray >= 2.53; older Ray:
# the raylet endpoint through wget, as KubeRay does).
DASHBOARD_AGENT_PORT = 52365
UNIFIED_HEALTH_MIN_RAY = (2, 53)
SHARED_MEMORY_VOLUME = "shared-mem"
# The cluster's auth token, as a file (RAY_AUTH_TOKEN_PATH) rather than an
# environment value: env is visible to every process's /proc/<pid>/environ
# reader and in `kubectl describe`-style dumps; a file is 0440 for the ray user.
AUTH_TOKEN_VOLUME = "ray-auth-token"
AUTH_TOKEN_DIR = "/etc/ray/auth"


class WorkerPoolGroupArgs(TypedDict, total=False):
    """The worker group of an HPA-scaled pool."""

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
    """Group name (required)."""
    min_replicas: int
    """Fewest workers the HPA keeps (default 1)."""
    max_replicas: int
    """Most workers the HPA adds (default 4)."""
    termination_grace_period_seconds: int
    """Time a draining worker gets to finish its tasks (default 300)."""


class RayWorkerPoolArgs(TypedDict, total=False):
    """Arguments of RayWorkerPool (plain values; names are derived from them)."""

    namespace: Required[str]
    """Namespace of the RayCluster whose head the workers join (required)."""
    cluster_name: Required[str]
    """Name of that RayCluster (required)."""
    group: Required[WorkerPoolGroupArgs]
    """WorkerPoolGroupArgs; needs a cpu request (required)."""
    image: Required[str]
    """Ray image, the cluster's (required)."""
    ray_version: Required[str]
    """Ray version of the image, the cluster's (required)."""
    auth_mode: str
    """the cluster's: "token" (workers read KubeRay's token Secret) or "disabled" (default "token")."""
    gcs_fault_tolerance: bool
    """the cluster's head keeps its state across restarts, so workers wait for it longer instead of exiting (default False)."""
    injection: SecretInjection
    """SecretInjection, as for the cluster's workers (default none)."""
    service_account_name: Optional[str]
    """(default the namespace's default)."""
    target_cpu_utilization_percent: int
    """HPA target (default 50)."""
    scale_down_stabilization_seconds: int
    """HPA scale-down window (default 15)."""
    scale_up: ScaleUpArgs
    """ScaleUpArgs (default 4 pods or 100% per 15 s)."""
    cluster_domain: str
    """(default cluster.local)."""
    read_only_root_filesystem: bool
    """the cluster's: Ray containers cannot write their image; /tmp and /dev/shm are emptyDirs (default True)."""


def check_pool_group(component: str, group: Mapping[str, Any]) -> None:
    """An HPA keeps 1..max pods and measures CPU against the request."""
    minimum, maximum = group.get("min_replicas", defaults.POOL_MIN_WORKERS), group.get("max_replicas", defaults.MAX_WORKERS)
    if minimum < 1:
        raise ComponentArgsError(component, "group.min_replicas", f"an HPA keeps at least 1 replica, got {minimum}")
    if minimum > maximum:
        raise ComponentArgsError(component, "group.max_replicas", f"must be >= min_replicas ({minimum}), got {maximum}")
    check_group_resources(component, "group", group)
    if "cpu" not in ((group.get("resources") or {}).get("requests") or {}):
        raise ComponentArgsError(component, "group.resources.requests", "needs a cpu request: the HPA's utilization is relative to it")


def pool_name(cluster_name: str, group_name: str) -> str:
    return f"{cluster_name}-{group_name}-workers"


def drain_budget(grace_seconds: int) -> tuple[int, int]:
    """(preStop drain deadline, Ray's own SIGTERM drain timeout) for a grace period:
    together with the margin they always fit inside it."""
    sigterm = min(RAY_SIGTERM_DRAIN_SECONDS, max(grace_seconds // 4, 1))
    return max(grace_seconds - sigterm - DRAIN_MARGIN_SECONDS, 1), sigterm


def health_probes(ray_version: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(readiness, liveness) of a Ray worker, with KubeRay's worker timings."""
    if version_tuple(ray_version) >= UNIFIED_HEALTH_MIN_RAY:
        handler: dict[str, Any] = {"httpGet": {"path": "/api/healthz", "port": DASHBOARD_AGENT_PORT}}
    else:
        check = f"wget --tries 1 -T 2 -q -O- http://localhost:{DASHBOARD_AGENT_PORT}/api/local_raylet_healthz | grep success"
        handler = {"exec": {"command": ["bash", "-c", check]}}
    readiness = {**handler, "initialDelaySeconds": 10, "timeoutSeconds": 2, "periodSeconds": 5, "successThreshold": 1, "failureThreshold": 10}
    liveness = {**handler, "initialDelaySeconds": 30, "timeoutSeconds": 2, "periodSeconds": 5, "successThreshold": 1, "failureThreshold": 120}
    return readiness, liveness


# Waits until the head's GCS answers (with the auth token, if any), as KubeRay's
# wait-gcs-ready init container does; quiet for two minutes, then loud.
WAIT_FOR_GCS = (
    "SECONDS=0; until ray health-check --address \"$RAY_GCS_ADDRESS\" >/dev/null 2>&1; do "
    "if (( SECONDS > 120 )); then ray health-check --address \"$RAY_GCS_ADDRESS\"; fi; "
    "echo \"$SECONDS s: waiting for the Ray head's GCS at $RAY_GCS_ADDRESS\"; sleep 5; done; echo 'GCS is ready.'"
)


def shared_memory_size(resources: Mapping[str, Mapping[str, str]]) -> Optional[str]:
    """/dev/shm's limit, as KubeRay sizes it: the container's memory (limit, else request)."""
    memory = (resources.get("limits") or {}).get("memory") or (resources.get("requests") or {}).get("memory")
    if memory is None:
        return None
    parse_quantity(memory)
    return str(memory)


def worker_pool_deployment(args: Mapping[str, Any]) -> dict[str, Any]:
    """The Deployment (API field names) of the pool."""
    group = dict(args["group"])
    if "cpu" not in (group.get("resources") or {}).get("requests", {}):
        raise ValueError(f"worker pool {group.get('name')!r} needs a cpu request: HPA utilization is relative to it")
    namespace, cluster = args["namespace"], args["cluster_name"]
    name = pool_name(cluster, group["name"])
    gcs = f"{head_service_name(cluster)}.{namespace}.svc.{args.get('cluster_domain') or 'cluster.local'}:{GCS_PORT}"
    grace = int(group.get("termination_grace_period_seconds", defaults.TERMINATION_GRACE_SECONDS))
    drain_deadline, sigterm_drain = drain_budget(grace)
    selector = {"raykube.io/cluster": cluster, "raykube.io/worker-group": group["name"]}
    params = ray_start_params(ray_resources(group.get("resources") or {}, group.get("ray_resources")))
    ray_env: list[dict[str, Any]] = [{"name": "RAY_GCS_ADDRESS", "value": gcs}]
    token_auth = (args.get("auth_mode") or defaults.AUTH_MODE) == "token"
    if token_auth:
        ray_env += [
            {"name": "RAY_AUTH_MODE", "value": "token"},
            {"name": "RAY_AUTH_TOKEN_PATH", "value": f"{AUTH_TOKEN_DIR}/{AUTH_TOKEN_KEY}"},
        ]
    env = ray_env + [
        {"name": "RAY_NODE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "RAYKUBE_DRAIN_DEADLINE_SECONDS", "value": str(drain_deadline)},
        # Ray's own SIGTERM drain, after the hook: bounded so both fit in the grace period.
        {"name": "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S", "value": str(sigterm_drain)},
    ]
    if args.get("gcs_fault_tolerance"):
        # A fault-tolerant head comes back with the cluster's state: wait for it (KubeRay's value).
        env.append({"name": "RAY_gcs_rpc_server_reconnect_timeout_s", "value": "600"})
    readiness, liveness = health_probes(args["ray_version"])
    read_only = args.get("read_only_root_filesystem", True)
    template = ray_pod_template(
        group=group,
        container_name="ray-worker",
        image=args["image"],
        injection=args.get("injection"),
        service_account_name=args.get("service_account_name"),
        extra_labels={
            **selector,
            RAY_NODE_LABEL[0]: RAY_NODE_LABEL[1],
            "app.kubernetes.io/name": "ray-worker",
            "app.kubernetes.io/managed-by": "raykube",
            # The pods roll with the head: a new Ray version is a new template.
            "raykube.io/ray-version": args["ray_version"],
        },
        extra_env=env,
        command=["ray"],
        args=worker_start_args(params),
        lifecycle={"preStop": {"exec": {"command": ["python", "-c", DRAIN_SCRIPT]}}},
        termination_grace_period_seconds=grace,
        read_only_root_filesystem=read_only,
    )
    container = template["spec"]["containers"][0]
    container.update(readinessProbe=readiness, livenessProbe=liveness)
    container.setdefault("ports", []).extend([
        {"containerPort": DASHBOARD_AGENT_PORT, "name": "dashboard-agent"},
        # Named as on KubeRay's workers, so one PodMonitor endpoint (port `metrics`) fits both.
        {"containerPort": METRICS_EXPORT_PORT, "name": METRICS_PORT_NAME},
    ])
    shm: dict[str, Any] = {"medium": "Memory"}
    size = shared_memory_size(group.get("resources") or {})
    if size:
        shm["sizeLimit"] = size
    template["spec"].setdefault("volumes", []).append({"name": SHARED_MEMORY_VOLUME, "emptyDir": shm})
    container.setdefault("volumeMounts", []).append({"name": SHARED_MEMORY_VOLUME, "mountPath": "/dev/shm"})
    init_mounts = [dict(TMP_MOUNT)]
    if token_auth:
        # Only the token's key, read-only; the kubelet updates the file if KubeRay rotates the Secret.
        template["spec"]["volumes"].append({
            "name": AUTH_TOKEN_VOLUME,
            "secret": {"secretName": auth_token_secret(cluster), "items": [{"key": AUTH_TOKEN_KEY, "path": AUTH_TOKEN_KEY}], "defaultMode": SECRET_FILE_MODE},
        })
        token_mount = {"name": AUTH_TOKEN_VOLUME, "mountPath": AUTH_TOKEN_DIR, "readOnly": True}
        container["volumeMounts"].append(token_mount)
        init_mounts.append(dict(token_mount))
    template["spec"]["initContainers"] = [
        {
            "name": "wait-gcs-ready",
            "image": args["image"],
            "command": ["bash", "-c", WAIT_FOR_GCS],
            "env": ray_env,
            # As KubeRay's: the worker's resources, so the pod's requests do not change.
            "resources": container.get("resources", {}),
            "securityContext": container_security_context(read_only),
            "volumeMounts": init_mounts,
        }
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(selector)},
        # No `replicas`: the HPA owns it, and `pulumi up` must not reset it.
        "spec": {"selector": {"matchLabels": selector}, "template": template},
    }


def worker_start_args(params: Mapping[str, str]) -> list[str]:
    """`ray start` argv after `ray`; $(VAR) is expanded by Kubernetes from the container env.
    Metrics on KubeRay's port, as its own workers: one scrape rule for every Ray pod."""
    return ["start", "--address=$(RAY_GCS_ADDRESS)", "--node-ip-address=$(RAY_NODE_IP)", "--block",
            f"--metrics-export-port={METRICS_EXPORT_PORT}", *ray_start_args(params)]


class RayWorkerPool(pulumi.ComponentResource):
    """A Deployment of Ray workers plus its HPA. Depend it on the RayCluster and metrics-server."""

    deployment_name: pulumi.Output[str]
    """Name of the workers' Deployment."""
    hpa_name: pulumi.Output[str]
    """Name of its HorizontalPodAutoscaler."""

    def __init__(self, name: str, args: RayWorkerPoolArgs, opts: Optional[pulumi.ResourceOptions] = None):
        label = component_label("RayWorkerPool", name)
        check_args(label, RayWorkerPoolArgs, args)
        check_pool_group(label, args["group"])
        manifest = worker_pool_deployment(args)  # before anything is registered
        super().__init__("raykube:index:RayWorkerPool", name, None, opts)
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
                "min_replicas": group.get("min_replicas", defaults.POOL_MIN_WORKERS),
                "max_replicas": group.get("max_replicas", defaults.MAX_WORKERS),
                "target_cpu_utilization_percent": args.get("target_cpu_utilization_percent", defaults.HPA_TARGET_CPU_PERCENT),
                "scale_down_stabilization_seconds": args.get("scale_down_stabilization_seconds", defaults.HPA_SCALE_DOWN_STABILIZATION_SECONDS),
                "scale_up": args.get("scale_up") or {},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.deployment]),
        )
        self.deployment_name = pulumi.Output.from_input(manifest["metadata"]["name"])
        self.hpa_name = self.autoscaler.hpa_name
        self.register_outputs({"deployment_name": self.deployment_name, "hpa_name": self.hpa_name})
