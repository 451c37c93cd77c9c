"""The raykube program: the target's components, wired in dependency order.

CRDs (once) -> one operator per Ray namespace -> RayClusters; the target
profile decides which cluster add-ons exist. `__main__.py` only loads the
settings and calls `build`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.flannel import Flannel
from components.kubeadm_config import KubeadmConfig
from components.kuberay_crds import KubeRayCrds
from components.kuberay_operator import EMBEDDED_GCS_STORAGE_GATE, KubeRayOperator
from components.metrics_server import MetricsServer
from components.ray_cluster import RayCluster
from components.ray_job import RayJob
from components.ray_service import RayService
from components.ray_worker_pool import RayWorkerPool
from raykube.aws_access import RayAwsAccess, aws_access
from raykube.job_code import upload_job_code
from raykube.network_access import network_policies
from raykube.observability import HeadObservability, head_observability, observability
from raykube.settings import RayClusterSettings, Settings
from raykube.settings.namespaces import namespace_dependency
from raykube.settings.sources import chart_sources, project_path
from raykube.settings.names import cluster_resource_name, code_resource_name, job_resource_name, pool_resource_name, service_resource_name

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
    Never upsert: an object that exists already (a namespace, a Secret of the same
    name) is the API server's AlreadyExists error, not silently taken over and
    deleted by the next destroy, whatever PULUMI_K8S_UPSERT_EXISTING_OBJECTS says.
    """
    return k8s.Provider(
        "kubernetes",
        kubeconfig=settings.kubeconfig,
        context=settings.kube_context,
        enable_server_side_apply=True,
        upsert_existing_objects=False,
    )


# WorkerGroup settings the program consumes itself instead of handing them on
# (tests/test_settings_boundary.py holds every other field to a component's Args):
# `autoscaling` picks the component (a RayCluster group, or a RayWorkerPool),
# `hpa` becomes the pool's HPA arguments, `image` is resolved by image_for, and
# an HPA-scaled group has no `replicas` or idle timeout (the settings refuse them).
CONSUMED_BY_THE_PROGRAM = {"hpa"}
POOL_GROUP_CONSUMED = CONSUMED_BY_THE_PROGRAM | {"autoscaling", "replicas", "idle_timeout_seconds", "image"}


def _group_args(group: Any) -> dict[str, Any]:
    return group.model_dump(exclude=CONSUMED_BY_THE_PROGRAM)


def _pool_group_args(group: Any) -> dict[str, Any]:
    return group.model_dump(exclude=POOL_GROUP_CONSUMED)


def _worker_group_args(settings: Settings, cluster: RayClusterSettings, group: Any) -> dict[str, Any]:
    return {**_group_args(group), "image": settings.ray_image(cluster, group)}


def _head_args(group: Any, head: HeadObservability) -> dict[str, Any]:
    """A head group, with what the Ray dashboard needs to show graphs (the user's env wins)."""
    args = _group_args(group)
    if head.env:
        args["env"] = {**head.env, **(args.get("env") or {})}
    return args


def _cluster_args(settings: Settings, cluster: RayClusterSettings, injection: dict[str, Any], service_account: str | None,
                  head: HeadObservability) -> dict[str, Any]:
    return {
        "namespace": cluster.namespace,
        "cluster_name": cluster.name,
        "ray_version": cluster.effective_ray_version,
        "image": settings.ray_image(cluster),
        "head": _head_args(cluster.head, head),
        "worker_groups": [_worker_group_args(settings, cluster, group) for group in cluster.worker_groups if group.autoscaling != "hpa"],
        "autoscaler": cluster.autoscaler.model_dump(),
        "injection": injection,
        "service_account_name": service_account,
        "ready_timeout_seconds": cluster.ready_timeout_seconds,
        "dashboard_ingress": cluster.dashboard_ingress.model_dump(),
        "upgrade_strategy": cluster.upgrade_strategy,
        "auth_mode": cluster.auth.mode,
        "gcs_fault_tolerance": cluster.gcs_fault_tolerance.model_dump() if cluster.gcs_fault_tolerance else None,
        "read_only_root_filesystem": cluster.read_only_root_filesystem,
        "head_metrics_ports": head.metrics_ports,
    }


@dataclass
class StackResult:
    """What `build` made: stack outputs, and files `pulumi up` writes ({path: text})."""

    outputs: dict[str, Any]
    files: dict[str, Any] = field(default_factory=dict)

    def as_tuple(self) -> tuple[dict[str, Any], dict[str, Any]]:
        return self.outputs, self.files


def _kubeadm_file(settings: Settings, result: StackResult) -> None:
    """Local target: the `kubeadm init --config` file, exported and written."""
    network, autoscaling, kubeadm = settings.effective_network, settings.autoscaling, settings.effective_kubeadm
    config = KubeadmConfig(
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
            # webIdentity: the cluster signs its tokens as the issuer raykube publishes (awsAccess.issuerBucket).
            **({"service_account_issuer": f"https://{settings.aws_access.effective_oidc_issuer}"} if settings.aws_access.issuer_bucket else {}),
        },
    )
    result.outputs["kubeadmConfigPath"] = kubeadm.config_path
    result.outputs["kubeadmConfig"] = config.config_yaml
    result.files[kubeadm.config_path] = config.config_yaml


def _metrics_server(settings: Settings, opts: pulumi.ResourceOptions) -> MetricsServer:
    metrics = settings.effective_metrics
    return MetricsServer(
        "metrics-server",
        {
            "resolution_seconds": metrics.resolution_seconds,
            "kubelet_request_timeout_seconds": metrics.effective_kubelet_request_timeout_seconds,
            "kubelet_insecure_tls": settings.kubelet_insecure_tls,
            **chart_sources(settings, "metrics_server"),
        },
        opts=opts,
    )


def _feature_gates(settings: Settings, namespace: str) -> dict[str, bool]:
    """The stack's feature gates, plus those the namespace's clusters need to be accepted."""
    gates = dict(settings.operator.feature_gates)
    if any(
        cluster.namespace == namespace and cluster.gcs_fault_tolerance is not None and cluster.gcs_fault_tolerance.backend == "rocksdb"
        for cluster in settings.ray_clusters
    ):
        gates[EMBEDDED_GCS_STORAGE_GATE] = True
    return gates


def _operators(settings: Settings, namespaces: dict[str, Any], waits_for: list[pulumi.Resource], opts: pulumi.ResourceOptions) -> dict[str, KubeRayOperator]:
    """The CRDs once (unless another stack on this Kubernetes cluster installed
    them), then one namespace-scoped operator per Ray namespace."""
    operator = settings.operator
    crd_source = settings.sources.crds.model_dump(exclude_defaults=True) if settings.sources.crds else {}
    if crd_source.get("path"):
        crd_source["path"] = project_path(crd_source["path"])
    crds = [KubeRayCrds("kuberay", {"version": operator.version, **crd_source}, opts=opts)] if operator.install_crds else []
    image = operator.image.model_dump()
    if settings.sources.image_registry and "repository" not in operator.image.model_fields_set:
        del image["repository"]  # the operator's default image, from the registry prefix (one set in the stack wins)
    return {
        namespace: KubeRayOperator(
            f"kuberay-operator-{namespace}",
            {
                "namespace": namespace,
                "watch_namespaces": [namespace],
                "version": operator.version,
                "image": image,
                "resources": operator.resources,
                "leader_election": operator.leader_election,
                "node_selector": operator.node_selector,
                "tolerations": operator.tolerations,
                "feature_gates": _feature_gates(settings, namespace),
                "values": operator.values,
                **chart_sources(settings, "kuberay_operator"),
            },
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[*crds, *namespace_dependency(namespaces, namespace), *waits_for])),
        )
        for namespace in settings.namespaces
    }


def _worker_pools(settings: Settings, cluster: RayClusterSettings, ray_aws: RayAwsAccess, waits_for: list[pulumi.Resource], opts: pulumi.ResourceOptions) -> dict[str, Any]:
    """One HPA-scaled RayWorkerPool per worker group in `hpa` mode."""
    pools = {}
    for group in cluster.worker_groups:
        if group.autoscaling != "hpa":
            continue
        pool = RayWorkerPool(
            pool_resource_name(cluster.namespace, cluster.name, group.name),
            {
                "namespace": cluster.namespace,
                "cluster_name": cluster.name,
                "group": _pool_group_args(group),
                # The head's image and Ray version: pool pods roll with the head.
                "image": settings.ray_image(cluster, group),
                "ray_version": cluster.effective_ray_version,
                "auth_mode": cluster.auth.mode,
                "gcs_fault_tolerance": cluster.gcs_fault_tolerance is not None,
                "injection": ray_aws.injection,
                "service_account_name": ray_aws.service_account,
                "target_cpu_utilization_percent": group.hpa.target_cpu_utilization_percent,
                "scale_down_stabilization_seconds": settings.autoscaling.scale_down_stabilization_seconds,
                "scale_up": group.hpa.scale_up.model_dump(),
                "read_only_root_filesystem": cluster.read_only_root_filesystem,
            },
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=waits_for)),
        )
        pools[group.name] = pool.deployment_name
    return pools


def _ray_jobs(settings: Settings, operators: dict[str, Any], clusters: dict[tuple[str, str], RayCluster], ray_aws: RayAwsAccess,
              head: HeadObservability, opts: pulumi.ResourceOptions) -> dict[str, Any]:
    """One RayJob per rayJobs[] entry: on its own cluster (with the stack's AWS
    access and token auth), or on a RayCluster of the stack."""
    outputs = {}
    for job in settings.ray_jobs:
        defaults = RayClusterSettings(namespace=job.namespace, worker_groups=job.worker_groups)
        runtime_env, uploads, code_uri = job.runtime_env, [], None
        if job.code is not None and ray_aws.aws_opts is not None and settings.aws_access.bucket:
            code, code_uri = upload_job_code(code_resource_name(job_resource_name(job.namespace, job.name)), settings.aws_access.bucket, job.namespace, job.name, Path(job.code), ray_aws.aws_opts)
            runtime_env, uploads = {**job.runtime_env, "working_dir": code_uri}, [code]
        args: dict[str, Any] = {
            "namespace": job.namespace,
            "job_name": job.name,
            "entrypoint": job.entrypoint,
            "runtime_env": runtime_env,
            "submission_mode": job.submission_mode,
            "backoff_limit": job.backoff_limit,
            "active_deadline_seconds": job.active_deadline_seconds,
            "shutdown_after_job_finishes": job.effective_shutdown,
            "ttl_seconds_after_finished": job.ttl_seconds_after_finished,
        }
        waits_for: list[pulumi.Resource] = [operators[job.namespace], *ray_aws.depends_on, *uploads]
        if job.cluster:
            args["cluster_selector"] = job.cluster
            waits_for.append(clusters[(job.namespace, job.cluster)])
        else:
            args.update(
                ray_version=defaults.effective_ray_version,
                image=settings.ray_image(defaults),
                head=_head_args(job.head, head),
                worker_groups=[_worker_group_args(settings, defaults, group) for group in job.worker_groups],
                autoscaler=job.autoscaler.model_dump(),
                injection=ray_aws.injection,
                service_account_name=ray_aws.service_account,
                auth_mode=defaults.auth.mode,
                read_only_root_filesystem=job.read_only_root_filesystem,
                head_metrics_ports=head.metrics_ports,
            )
        ray_job = RayJob(job_resource_name(job.namespace, job.name), args, opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=waits_for)))
        outputs[f"{job.namespace}/{job.name}"] = {"statusCommand": ray_job.status_command, **({"code": code_uri} if code_uri else {})}
    return outputs


def _ray_services(settings: Settings, operators: dict[str, Any], ray_aws: RayAwsAccess, head: HeadObservability,
                  opts: pulumi.ResourceOptions) -> dict[str, Any]:
    """One RayService per rayServices[] entry, its cluster as a rayClusters[] entry's (the stack's AWS
    access, token auth), its code uploaded by the same `pulumi up` as a RayJob's."""
    outputs = {}
    for service in settings.ray_services:
        resource_name = service_resource_name(service.namespace, service.name)
        defaults = RayClusterSettings(namespace=service.namespace, worker_groups=service.worker_groups)
        uploads, code_uri = [], None
        if service.code is not None and ray_aws.aws_opts is not None and settings.aws_access.bucket:
            code, code_uri = upload_job_code(
                code_resource_name(resource_name), settings.aws_access.bucket, service.namespace, service.name, Path(service.code), ray_aws.aws_opts,
                kind="services",
            )
            uploads = [code]
        args: dict[str, Any] = {
            "namespace": service.namespace,
            "service_name": service.name,
            "serve_config": service.serve_config.serve_config(),
            "working_dir": code_uri,
            "ray_version": defaults.effective_ray_version,
            "image": settings.ray_image(defaults),
            "head": _head_args(service.head, head),
            "worker_groups": [_worker_group_args(settings, defaults, group) for group in service.worker_groups],
            "autoscaler": service.autoscaler.model_dump(),
            "injection": ray_aws.injection,
            "service_account_name": ray_aws.service_account,
            "auth_mode": defaults.auth.mode,
            "read_only_root_filesystem": service.read_only_root_filesystem,
            "head_metrics_ports": head.metrics_ports,
            "upgrade_strategy": service.upgrade_strategy,
            "cluster_upgrade_options": service.cluster_upgrade_options.model_dump() if service.cluster_upgrade_options else None,
            "ray_cluster_deletion_delay_seconds": service.ray_cluster_deletion_delay_seconds,
            "ready_timeout_seconds": service.ready_timeout_seconds,
            "serve_ingress": service.serve_ingress.model_dump(),
        }
        waits_for: list[pulumi.Resource] = [operators[service.namespace], *ray_aws.depends_on, *uploads]
        ray_service = RayService(resource_name, args, opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=waits_for)))
        outputs[f"{service.namespace}/{service.name}"] = {
            "serveAddress": ray_service.serve_address,
            "dashboardAddress": ray_service.dashboard_address,
            "activeClusterName": ray_service.active_cluster_name,
            "statusCommand": ray_service.status_command,
            **({"code": code_uri} if code_uri else {}),
        }
    return outputs


def build(settings: Settings) -> StackResult:
    """Create every resource of the stack."""
    provider = kubernetes_provider(settings)
    k8s_opts = pulumi.ResourceOptions(provider=provider)
    component_opts = pulumi.ResourceOptions(providers=[provider])
    profile = settings.profile
    result = StackResult(outputs={"target": settings.target, "namespaces": settings.namespaces})

    if profile.kubeadm_config:
        _kubeadm_file(settings, result)
    add_ons: list[pulumi.Resource] = []
    if profile.flannel:
        # podCidr is the same setting as kubeadm's podSubnet: one value, never two.
        network = settings.effective_network
        add_ons.append(Flannel(
            "flannel", {"pod_cidr": network.pod_cidr, "backend": network.flannel_backend, **chart_sources(settings, "flannel")}, opts=component_opts,
        ))
    metrics_server = _metrics_server(settings, component_opts) if profile.metrics_server else None

    # Only the namespaces raykube creates: an adopted one is the user's, and never
    # gets raykube's Pod Security labels or goes with a `pulumi destroy`.
    namespaces = {
        namespace: k8s.core.v1.Namespace(
            f"namespace-{namespace}",
            metadata={"name": namespace, "labels": {**POD_SECURITY_LABELS, "app.kubernetes.io/managed-by": "raykube"}},
            opts=k8s_opts,
        )
        for namespace in settings.created_namespaces
    }
    # Before the operators and Ray pods: a pod never runs unprotected.
    policies = network_policies(settings, namespaces, component_opts)
    operators = _operators(settings, namespaces, [*add_ons, *policies], component_opts)
    ray_aws = aws_access(settings, namespaces, k8s_opts, result.outputs)
    observability(settings, namespaces, component_opts, result.outputs)
    head = head_observability(settings)

    cluster_outputs: dict[str, Any] = {}
    ray_clusters: dict[tuple[str, str], RayCluster] = {}
    for cluster in settings.ray_clusters:
        ray_cluster = RayCluster(
            cluster_resource_name(cluster.namespace, cluster.name),
            _cluster_args(settings, cluster, ray_aws.injection, ray_aws.service_account, head),
            opts=pulumi.ResourceOptions.merge(
                component_opts, pulumi.ResourceOptions(depends_on=[operators[cluster.namespace], *ray_aws.depends_on])
            ),
        )
        ray_clusters[(cluster.namespace, cluster.name)] = ray_cluster
        # Pool workers join a ready head; their HPA needs metrics to act on.
        pools = _worker_pools(settings, cluster, ray_aws, [ray_cluster, *([metrics_server] if metrics_server else [])], component_opts)
        cluster_outputs[f"{cluster.namespace}/{cluster.name}"] = {
            "headService": ray_cluster.head_service_name,
            "headServiceDns": ray_cluster.head_service_dns,
            "jobsApi": ray_cluster.jobs_api_address,
            "client": ray_cluster.client_address,
            "gcs": ray_cluster.gcs_address,
            "dashboardPortForward": ray_cluster.dashboard_port_forward,
            "authTokenCommand": ray_cluster.auth_token_command,
            "hpaWorkerPools": pools,
        }
    result.outputs["rayClusters"] = cluster_outputs
    if settings.ray_jobs:
        result.outputs["rayJobs"] = _ray_jobs(settings, operators, ray_clusters, ray_aws, head, component_opts)
    if settings.ray_services:
        result.outputs["rayServices"] = _ray_services(settings, operators, ray_aws, head, component_opts)
    return result
