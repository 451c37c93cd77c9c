"""Every name the stack derives from its settings, checked before anything is registered.

raykube and KubeRay name objects by joining settings (`<cluster>-<group>-workers`,
`<cluster>-head-svc`, Pulumi's `<namespace>-<cluster>`), so two different
settings can make one name: cluster `x` with group `y-workers` and cluster
`x-y` with group `workers` both make the Deployment `x-y-workers-workers`, and
`pulumi up` would fight over one object. The names come from the builders the
components and the program use themselves (one home per fact); two of one kind
in one namespace, or one longer than Kubernetes takes, is one error naming
both settings.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from components.ray_cluster import auth_token_secret, dashboard_ingress_name, head_service_name
from components.ray_service import serve_ingress_name, serve_service_name
from components.ray_worker_pool import pool_name

if TYPE_CHECKING:
    from raykube.settings.stack import Settings

# Kubernetes' limits: a DNS-1035 label (Services) or DNS-1123 label (namespaces)
# is at most 63 characters, a DNS-1123 subdomain (most other objects) 253.
LABEL_MAX = 63
SUBDOMAIN_MAX = 253
# The random suffix KubeRay gives a RayJob's own RayCluster.
KUBERAY_RANDOM_SUFFIX = 5


def cluster_resource_name(namespace: str, cluster: str) -> str:
    """The Pulumi name of a RayCluster component (the program's; its URN must be unique)."""
    return f"{namespace}-{cluster}"


def pool_resource_name(namespace: str, cluster: str, group: str) -> str:
    """The Pulumi name of an HPA-scaled group's RayWorkerPool."""
    return f"{namespace}-{cluster}-{group}"


def job_resource_name(namespace: str, job: str) -> str:
    """The Pulumi name of a RayJob component (its code upload is `<this>-code`)."""
    return f"{namespace}-{job}"


def service_resource_name(namespace: str, service: str) -> str:
    """The Pulumi name of a RayService component (its code upload is `<this>-code`)."""
    return f"{namespace}-{service}"


def code_resource_name(component_resource_name: str) -> str:
    """The Pulumi name of the S3 object holding a RayJob's or RayService's code."""
    return f"{component_resource_name}-code"


@dataclass(frozen=True)
class DerivedName:
    """One object's name: its kind and namespace, the setting it comes from and what made it."""

    kind: str
    namespace: Optional[str]
    name: str
    key: str  # dotted, as the error names it: rayClusters.0.workerGroups.1.name
    made_by: str  # "cluster x, group y-workers"
    limit: int = SUBDOMAIN_MAX


def shown(key: str) -> str:
    """rayClusters.0.workerGroups.1.name -> rayClusters[0].workerGroups[1].name, as the stack file's keys read."""
    return ".".join(f"[{part}]" if part.isdigit() else part for part in key.split(".")).replace(".[", "[")


def derived_names(settings: "Settings") -> list[DerivedName]:
    """What the stack names, from raykube's builders and KubeRay's naming rules."""
    names: list[DerivedName] = []
    for index, cluster in enumerate(settings.ray_clusters):
        key, ns, made_by = f"rayClusters.{index}.name", cluster.namespace, f"cluster {cluster.name}"
        names += [
            DerivedName("RayCluster", ns, cluster.name, key, made_by, LABEL_MAX),
            # KubeRay's head Service is a DNS-1035 label.
            DerivedName("Service", ns, head_service_name(cluster.name), key, made_by, LABEL_MAX),
            DerivedName("Pulumi raykube:index:RayCluster", None, cluster_resource_name(ns, cluster.name), key, f"namespace {ns}, {made_by}"),
        ]
        if cluster.auth.mode == "token":
            names.append(DerivedName("Secret", ns, auth_token_secret(cluster.name), key, f"{made_by}'s auth token (KubeRay)"))
        if any(group.autoscaling == "ray" for group in cluster.worker_groups):
            # KubeRay's autoscaler sidecar gets a Role and RoleBinding named after the cluster.
            names += [DerivedName(kind, ns, cluster.name, key, f"{made_by}'s autoscaler (KubeRay)") for kind in ("Role", "RoleBinding")]
        if cluster.dashboard_ingress.enabled:
            names.append(DerivedName("Ingress", ns, dashboard_ingress_name(cluster.name), key, f"{made_by}'s dashboardIngress"))
        for group_index, group in enumerate(cluster.worker_groups):
            if group.autoscaling != "hpa":
                continue
            group_key, pool_by = f"rayClusters.{index}.workerGroups.{group_index}.name", f"{made_by}, group {group.name}"
            pool = pool_name(cluster.name, group.name)
            names += [
                DerivedName("Deployment", ns, pool, group_key, pool_by),
                DerivedName("HorizontalPodAutoscaler", ns, pool, group_key, pool_by),
                DerivedName("Pulumi raykube:index:RayWorkerPool", None, pool_resource_name(ns, cluster.name, group.name), group_key, f"namespace {ns}, {pool_by}"),
            ]
    for index, job in enumerate(settings.ray_jobs):
        key, made_by = f"rayJobs.{index}.name", f"RayJob {job.name}"
        if job.cluster is None:
            # KubeRay names the job's own cluster <job>-<5 random characters>, its head Service after that.
            own_cluster = f"{job.name}-{'x' * KUBERAY_RANDOM_SUFFIX}"
            names.append(DerivedName("Service", job.namespace, head_service_name(own_cluster), key, f"{made_by}'s own cluster (KubeRay)", LABEL_MAX))
        names += [
            DerivedName("RayJob", job.namespace, job.name, key, made_by, LABEL_MAX),
            DerivedName("Pulumi raykube:index:RayJob", None, job_resource_name(job.namespace, job.name), key, f"namespace {job.namespace}, {made_by}"),
        ]
        if job.code is not None:
            code = code_resource_name(job_resource_name(job.namespace, job.name))
            names.append(DerivedName("Pulumi aws:s3:BucketObjectv2", None, code, key, f"namespace {job.namespace}, {made_by}'s code"))
    for index, service in enumerate(settings.ray_services):
        key, ns, made_by = f"rayServices.{index}.name", service.namespace, f"RayService {service.name}"
        # KubeRay: the service's RayCluster is <service>-<5 random characters>, its head Service
        # after that; the RayService's own head and serve Services follow the active cluster.
        # (Its own placeholder suffix: two random names never meet, so a job's cluster is no collision.)
        own_cluster = f"{service.name}-{'y' * KUBERAY_RANDOM_SUFFIX}"
        names += [
            DerivedName("RayService", ns, service.name, key, made_by, LABEL_MAX),
            DerivedName("Service", ns, head_service_name(own_cluster), key, f"{made_by}'s cluster (KubeRay)", LABEL_MAX),
            DerivedName("Service", ns, head_service_name(service.name), key, f"{made_by}'s head Service (KubeRay)", LABEL_MAX),
            DerivedName("Service", ns, serve_service_name(service.name), key, f"{made_by}'s serve Service (KubeRay)", LABEL_MAX),
            DerivedName("Pulumi raykube:index:RayService", None, service_resource_name(ns, service.name), key, f"namespace {ns}, {made_by}"),
        ]
        if service.serve_ingress.enabled:
            names.append(DerivedName("Ingress", ns, serve_ingress_name(service.name), key, f"{made_by}'s serveIngress"))
        if service.code is not None:
            code = code_resource_name(service_resource_name(ns, service.name))
            names.append(DerivedName("Pulumi aws:s3:BucketObjectv2", None, code, key, f"namespace {ns}, {made_by}'s code"))
    access = settings.aws_access
    for namespace in settings.namespaces:
        if access.mode == "secret":
            names.append(DerivedName("Secret", namespace, access.secret_name, "awsAccess.secretName", "the AWS credentials Secret"))
        elif access.mode != "none":
            names.append(DerivedName("ServiceAccount", namespace, access.service_account_name, "awsAccess.serviceAccountName", "the Ray pods' ServiceAccount"))
    return names


def check_derived_names(settings: "Settings") -> None:
    """ValueError (`__key__ message`, naming both settings) for a name made twice or one too long."""
    seen: dict[tuple[str, Optional[str], str], DerivedName] = {}
    for derived in derived_names(settings):
        where = f" in namespace {derived.namespace}" if derived.namespace else ""
        if len(derived.name) > derived.limit:
            raise ValueError(
                f"__{derived.key}__ makes the {derived.kind} {derived.name!r}{where}, {len(derived.name)} characters: "
                f"Kubernetes takes at most {derived.limit}; shorten it"
            )
        identity = (derived.kind, derived.namespace, derived.name)
        first = seen.get(identity)
        if first is not None and first.key != derived.key:
            raise ValueError(
                f"__{derived.key}__ makes the {derived.kind} {derived.name!r}{where} ({derived.made_by}), and so does "
                f"{shown(first.key)} ({first.made_by}): one object cannot be both; rename one"
            )
        seen.setdefault(identity, derived)
