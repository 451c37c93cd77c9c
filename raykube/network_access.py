"""Who may talk to the Ray pods: the stack's NetworkPolicy settings, per Ray namespace.

The settings say what users decide (sources, egress); this module fills in
what the stack already knows: the namespace's Ingress controller when a
dashboard Ingress is on, the API server's address on the local target, and
HTTPS egress when jobs use AWS or install packages.
"""
from __future__ import annotations

import ipaddress
from typing import Any

import pulumi

from components.kube_network_policies import KubeNetworkPolicies
from components.kube_prometheus_stack import GRAFANA_POD_LABELS, GRAFANA_PORT, PROMETHEUS_POD_LABELS, PROMETHEUS_PORT
from components.ray_network_policies import NAMESPACE_NAME_LABEL, OPERATOR_POD_LABELS, RayNetworkPolicies, own_pods
from raykube.settings import Settings
from raykube.settings.namespaces import ingress_controller_namespace, namespace_dependency
# runtime_env fields that download at job start (package indexes, remote URIs).
DOWNLOADING_RUNTIME_ENV = ("pip", "uv", "conda", "working_dir", "py_modules", "py_executable")
FLANNEL_ENFORCES_NOTHING = (
    "networkPolicies: Flannel does not enforce NetworkPolicies, so the Ray namespaces' policies are not in force on this "
    "cluster; set networkPolicies.enforcer: kube-network-policies to enforce them (docs/security.md)"
)

NOBODY_MAY_SCRAPE = (
    "observability.mode podMonitors: the Ray namespaces' NetworkPolicies let no Prometheus in; set "
    "networkPolicies.metricsFrom to your Prometheus (e.g. {namespace: monitoring, podLabels: {app.kubernetes.io/name: prometheus}})"
)


def kube_network_policies_args(settings: Settings) -> dict[str, Any]:
    """sources.manifests.kubeNetworkPolicies and sources.imageRegistry, as KubeNetworkPolicies takes them (only those set)."""
    from raykube.settings.sources import project_path

    args: dict[str, Any] = {}
    manifest = settings.sources.manifests.kube_network_policies
    if manifest is not None:
        args = manifest.model_dump(exclude_defaults=True)
        if args.get("path"):
            args["path"] = project_path(args["path"])
    if settings.sources.image_registry:
        args["image_registry"] = settings.sources.image_registry
    return args


def kubernetes_service_ip(service_cidr: str) -> str:
    """The `kubernetes` Service's ClusterIP: the first address of the Service network."""
    return str(next(ipaddress.ip_network(service_cidr).hosts()))


def api_server_cidrs(settings: Settings) -> list[str]:
    chosen = settings.network_policies.api_server_cidrs
    if chosen is not None:
        return list(chosen)
    if not settings.profile.kubeadm_config:
        return ["0.0.0.0/0"]  # a managed control plane's addresses are the cloud's (docs/security.md: narrow them)
    # Policies match after the Service's DNAT on most plugins, before it on a few: both addresses.
    advertised = settings.effective_kubeadm.advertise_address
    service = f"{kubernetes_service_ip(settings.effective_network.service_cidr)}/32"
    return [f"{advertised}/32", service] if advertised else ["0.0.0.0/0"]


def https_egress(settings: Settings, namespace: str) -> bool:
    chosen = settings.network_policies.https_egress
    if chosen is not None:
        return chosen
    downloads = any(job.namespace == namespace and set(job.runtime_env) & set(DOWNLOADING_RUNTIME_ENV) for job in settings.ray_jobs) or any(
        service.namespace == namespace and set(application.runtime_env) & set(DOWNLOADING_RUNTIME_ENV)
        for service in settings.ray_services for application in service.serve_config.applications
    )
    return settings.aws_access.mode != "none" or downloads


def head_access_from(settings: Settings, namespace: str) -> list[dict[str, Any]]:
    chosen = settings.network_policies.head_access_from
    if chosen is not None:
        return [peer.as_args() for peer in chosen]
    sources = own_pods(namespace not in settings.adopt_namespaces)  # the namespace's own pods (raykube's alone in an adopted one)
    chosen_controller = settings.network_policies.ingress_controller_namespace
    for cluster in settings.ray_clusters:
        if cluster.namespace == namespace and cluster.dashboard_ingress.enabled:
            controller = ingress_controller_namespace(cluster.dashboard_ingress.class_name, chosen_controller)
            if {"namespace": controller} not in sources:
                sources.append({"namespace": controller})
    return sources


def serve_access_from(settings: Settings, namespace: str) -> list[dict[str, Any]]:
    """Who reaches Ray Serve's port in `namespace`: nobody without a RayService there; else as set,
    or the namespace's own pods plus the Ingress controllers of the serve Ingresses."""
    services = [service for service in settings.ray_services if service.namespace == namespace]
    if not services:
        return []
    chosen = settings.network_policies.serve_access_from
    if chosen is not None:
        # Never nobody: the operator's health checks call the port (RayNetworkPolicies adds it to any list).
        return [peer.as_args() for peer in chosen] or [{"pod_labels": dict(OPERATOR_POD_LABELS)}]
    sources = own_pods(namespace not in settings.adopt_namespaces)
    for service in services:
        if service.serve_ingress.enabled:
            controller = ingress_controller_namespace(service.serve_ingress.class_name, settings.network_policies.ingress_controller_namespace)
            if {"namespace": controller} not in sources:
                sources.append({"namespace": controller})
    return sources


def metrics_from(settings: Settings) -> list[dict[str, Any]]:
    """Who scrapes the metrics ports: as set, else the Prometheus that mode install runs."""
    chosen = settings.network_policies.metrics_from
    observability = settings.observability
    if chosen or observability.mode != "install":
        return [peer.as_args() for peer in chosen]
    return [{"namespace": observability.namespace, "pod_labels": dict(PROMETHEUS_POD_LABELS)}]


def head_egress(settings: Settings) -> list[dict[str, Any]]:
    """The heads' own egress: as set, plus (mode install) the Prometheus and Grafana pods the dashboard embeds."""
    observability = settings.observability
    chosen = [dict(rule) for rule in settings.network_policies.head_egress]
    if observability.mode != "install":
        return chosen
    namespace = {"matchLabels": {NAMESPACE_NAME_LABEL: observability.namespace}}
    return chosen + [
        {"to": [{"namespaceSelector": namespace, "podSelector": {"matchLabels": dict(labels)}}], "ports": [{"protocol": "TCP", "port": port}]}
        for labels, port in ((PROMETHEUS_POD_LABELS, PROMETHEUS_PORT), (GRAFANA_POD_LABELS, GRAFANA_PORT))
    ]


# awsAccess.mode podIdentity: the AWS SDKs fetch credentials from the EKS Pod Identity Agent, a
# host-network DaemonSet on every node, at these link-local addresses (IPv4 and IPv6), over HTTP.
POD_IDENTITY_AGENT_EGRESS: dict[str, Any] = {
    "to": [{"ipBlock": {"cidr": "169.254.170.23/32"}}, {"ipBlock": {"cidr": "fd00:ec2::23/128"}}],
    "ports": [{"protocol": "TCP", "port": 80}],
}


def network_policy_args(settings: Settings, namespace: str) -> dict[str, Any]:
    """RayNetworkPoliciesArgs of one Ray namespace."""
    policies = settings.network_policies
    args: dict[str, Any] = {
        "namespace": namespace,
        "head_access_from": head_access_from(settings, namespace),
        "metrics_from": metrics_from(settings),
        "serve_access_from": serve_access_from(settings, namespace),
        "api_server_cidrs": api_server_cidrs(settings),
        "api_server_ports": list(policies.api_server_ports),
        "https_egress": https_egress(settings, namespace),
        "https_egress_cidrs": list(policies.https_egress_cidrs),
        "extra_egress": [*([POD_IDENTITY_AGENT_EGRESS] if settings.aws_access.mode == "podIdentity" else []),
                         *(dict(rule) for rule in policies.extra_egress)],
        "head_egress": head_egress(settings),
        # An adopted namespace holds other workloads: the policies select raykube's pods alone.
        "owns_namespace": namespace not in settings.adopt_namespaces,
    }
    if policies.dns is not None:
        args["dns"] = [peer.as_args() for peer in policies.dns]
    return args


def network_policies(settings: Settings, namespaces: dict[str, Any], opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """One RayNetworkPolicies per Ray namespace, and the local enforcer if asked for."""
    policies = settings.network_policies
    if not policies.enabled:
        return []
    created: list[pulumi.Resource] = []
    if settings.profile.flannel:
        if policies.enforcer == "kube-network-policies":
            created.append(KubeNetworkPolicies("kube-network-policies", kube_network_policies_args(settings), opts=opts))
        else:
            pulumi.log.warn(FLANNEL_ENFORCES_NOTHING)
    if settings.observability.mode == "podMonitors" and not policies.metrics_from:
        pulumi.log.warn(NOBODY_MAY_SCRAPE)
    for namespace in settings.namespaces:
        created.append(
            RayNetworkPolicies(
                f"network-policies-{namespace}",
                network_policy_args(settings, namespace),
                opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=namespace_dependency(namespaces, namespace))),
            )
        )
    return created
