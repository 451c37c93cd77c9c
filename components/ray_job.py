"""RayJob: a KubeRay `ray.io/v1` RayJob, on a cluster of its own or on an existing RayCluster."""

from typing import Any, Mapping, Optional, Sequence, Required, TypedDict

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.ray_cluster import AutoscalerArgs, HeadGroupArgs, WorkerGroupArgs, check_worker_groups, ray_cluster_spec
from components.ray_pod import SecretInjection
from components.args import check_args, component_label


class RayJobArgs(TypedDict, total=False):
    """Arguments of RayJob."""

    namespace: Required[str]
    """namespace of the job; a KubeRay operator must watch it (required, plain string)."""
    job_name: str
    """metadata.name (default: the component's name; plain string)."""
    entrypoint: Required[pulumi.Input[str]]
    """the command the job runs (required)."""
    runtime_env: pulumi.Input[Mapping[str, Any]]
    """Ray runtime environment (pip, env_vars, working_dir as a remote URI) (default {})."""
    cluster_selector: Optional[str]
    """name of an existing RayCluster in the namespace to run on (default: a cluster of its own)."""
    ray_version: pulumi.Input[str]
    """Ray version of the job's own cluster (required without cluster_selector)."""
    image: pulumi.Input[str]
    """Ray image of the job's own cluster (required without cluster_selector)."""
    head: pulumi.Input[HeadGroupArgs]
    """Head group of the job's own cluster, as for RayCluster (default {})."""
    worker_groups: pulumi.Input[Sequence[WorkerGroupArgs]]
    """Worker groups of the job's own cluster, ray or fixed (default [])."""
    autoscaler: pulumi.Input[AutoscalerArgs]
    """Autoscaler options of the job's own cluster (default {})."""
    injection: pulumi.Input[SecretInjection]
    """Secrets for the own cluster's Ray containers, as for RayCluster (default none)."""
    service_account_name: pulumi.Input[Optional[str]]
    """Service account of the own cluster's pods (default the namespace's default)."""
    auth_mode: pulumi.Input[str]
    """token or disabled, as for RayCluster (default "token")."""
    read_only_root_filesystem: pulumi.Input[bool]
    """The own cluster's Ray containers cannot write their image, as for RayCluster (default True)."""
    head_metrics_ports: pulumi.Input[bool]
    """The own cluster's head declares its autoscaler and dashboard metrics ports, as for RayCluster (default False)."""
    shutdown_after_job_finishes: pulumi.Input[bool]
    """delete the own cluster when the job ends (default True; False with cluster_selector)."""
    ttl_seconds_after_finished: pulumi.Input[int]
    """how long the finished own cluster stays (default 300)."""
    active_deadline_seconds: pulumi.Input[Optional[int]]
    """fail the job after this long (default none)."""
    backoff_limit: pulumi.Input[int]
    """retries of a failed job (default 0)."""
    submission_mode: pulumi.Input[str]
    """K8sJobMode, HTTPMode or SidecarMode (default K8sJobMode)."""


_CLUSTER_KEYS = ("ray_version", "image", "head", "worker_groups", "autoscaler", "injection", "service_account_name", "auth_mode", "read_only_root_filesystem",
                 "head_metrics_ports")


def ray_job_spec(args: Mapping[str, Any]) -> dict[str, Any]:
    """The RayJob `spec` for resolved (plain) arguments."""
    selector = args.get("cluster_selector")
    spec: dict[str, Any] = {
        "entrypoint": args["entrypoint"],
        "submissionMode": args.get("submission_mode") or "K8sJobMode",
        "backoffLimit": args.get("backoff_limit", 0),
    }
    if args.get("runtime_env"):
        # KubeRay takes the runtime environment as YAML text.
        spec["runtimeEnvYAML"] = yaml.safe_dump(dict(args["runtime_env"]), sort_keys=True)
    if args.get("active_deadline_seconds"):
        spec["activeDeadlineSeconds"] = args["active_deadline_seconds"]
    # shutdownAfterJobFinishes and ttlSecondsAfterFinished are `omitempty` in KubeRay's Go types:
    # the operator's own writes of the RayJob drop a false or a 0, so `pulumi refresh` would see
    # them gone and the next `pulumi up` would replace (re-run) the job. Their zero values are
    # KubeRay's defaults: sent only when they are not zero.
    if selector:
        # An existing cluster is never deleted by the job (false: not sent).
        spec["clusterSelector"] = {"ray.io/cluster": selector}
    else:
        cluster_args = {key: args[key] for key in _CLUSTER_KEYS if key in args}
        spec["rayClusterSpec"] = ray_cluster_spec(cluster_args)
        # A job's cluster is never upgraded in place: KubeRay makes a new one per run.
        spec["rayClusterSpec"].pop("upgradeStrategy", None)
        if args.get("shutdown_after_job_finishes", True):
            spec["shutdownAfterJobFinishes"] = True
            ttl = args.get("ttl_seconds_after_finished", 300)
            if ttl:
                spec["ttlSecondsAfterFinished"] = ttl
    return spec


class RayJob(pulumi.ComponentResource):
    """A KubeRay RayJob. A changed spec replaces it (a new run): KubeRay does not rerun a job in place."""

    job_name: pulumi.Output[str]
    """Name of the RayJob."""
    namespace: pulumi.Output[str]
    """Namespace of the RayJob."""
    status_command: pulumi.Output[str]
    """kubectl command that prints the job's status."""

    def __init__(self, name: str, args: RayJobArgs, opts: Optional[pulumi.ResourceOptions] = None):
        label = component_label("RayJob", name)
        check_args(label, RayJobArgs, args)
        # The job's own cluster, as RayCluster checks it: before anything is registered.
        check_worker_groups(label, args.get("worker_groups"), args.get("head"))
        super().__init__("raykube:index:RayJob", name, None, opts)
        namespace = args["namespace"]
        job_name = args.get("job_name") or name
        spec = pulumi.Output.from_input(dict(args)).apply(ray_job_spec)
        self.resource = k8s.apiextensions.CustomResource(
            f"{name}-rayjob",
            api_version="ray.io/v1",
            kind="RayJob",
            metadata={"name": job_name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "raykube"}},
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, replace_on_changes=["spec"], delete_before_replace=True),
        )
        self.job_name = pulumi.Output.from_input(job_name)
        self.namespace = pulumi.Output.from_input(namespace)
        self.status_command = pulumi.Output.from_input(
            f"kubectl -n {namespace} get rayjob {job_name} -o jsonpath='{{.status.jobStatus}} {{.status.jobDeploymentStatus}}'"
        )
        self.register_outputs({"job_name": self.job_name, "namespace": self.namespace, "status_command": self.status_command})
