"""The stack's observability, from `observability` settings: kube-prometheus-stack (mode install),
RayMonitors per Ray namespace, the Grafana dashboards, and what the Ray heads need to show graphs."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import pulumi

from components.grafana_dashboards import GrafanaDashboards
from components.kube_prometheus_stack import KubePrometheusStack, grafana_admin_secret_name, service_names
from components.ray_monitors import RayMonitors
from raykube.operator_dashboard import operator_dashboard
from raykube.ray_dashboards import ray_dashboards
from raykube.settings import Settings
from raykube.settings.sources import chart_sources
from raykube.settings.namespaces import namespace_dependency
from raykube.settings.observability import KUBE_PROMETHEUS_STACK_RELEASE


@dataclass
class HeadObservability:
    """What each RayCluster's head gets: its metrics ports declared, and the dashboard's env."""

    metrics_ports: bool = False
    env: dict[str, str] = field(default_factory=dict)


def head_observability(settings: Settings) -> HeadObservability:
    observability = settings.observability
    if not observability.enabled:
        return HeadObservability()
    env: dict[str, str] = {}
    if observability.effective_prometheus_url:
        env["RAY_PROMETHEUS_HOST"] = observability.effective_prometheus_url
    if observability.effective_grafana_url:
        env["RAY_GRAFANA_HOST"] = observability.effective_grafana_url
        env["RAY_GRAFANA_IFRAME_HOST"] = observability.grafana_browser_url
    return HeadObservability(metrics_ports=True, env=env)


def dashboards(settings: Settings) -> dict[str, str]:
    """{name: JSON} of every dashboard the stack installs."""
    observability = settings.observability
    found = ray_dashboards(observability.dashboards)
    if observability.operator_dashboard:
        found["kuberay-operator"] = operator_dashboard()
    return found


def _warn_about_versions(settings: Settings) -> None:
    from raykube.settings import installed_ray_version

    installed = installed_ray_version()
    others = sorted({cluster.effective_ray_version for cluster in settings.ray_clusters} - {installed})
    if others and settings.observability.dashboards:
        pulumi.log.warn(
            f"observability.dashboards: Ray's dashboards come from the installed ray {installed}; clusters run Ray {', '.join(others)}, "
            "whose metrics may differ: pin ray in requirements.txt to the clusters' version"
        )


def observability(settings: Settings, namespaces: dict[str, Any], opts: pulumi.ResourceOptions, outputs: dict[str, Any]) -> None:
    """Create the stack's observability (the Ray clusters need none of it to start)."""
    observability = settings.observability
    if not observability.enabled:
        return
    _warn_about_versions(settings)
    installed: Optional[KubePrometheusStack] = None
    if observability.mode == "install":
        installed = KubePrometheusStack(
            "kube-prometheus-stack",
            {
                "namespace": observability.namespace,
                "release": KUBE_PROMETHEUS_STACK_RELEASE,
                "scrape_interval_seconds": observability.scrape_interval_seconds,
                "values": observability.kube_prometheus_stack.values,
                **chart_sources(settings, "kube_prometheus_stack"),
            },
            opts=opts,
        )
    # The monitors' CRDs come with the chart (install) or exist already (podMonitors).
    after = [installed] if installed else []
    for namespace in settings.namespaces:
        RayMonitors(
            f"monitors-{namespace}",
            {
                "namespace": namespace,
                "labels": observability.effective_monitor_labels,
                "scrape_interval_seconds": observability.scrape_interval_seconds,
                "alerts": observability.alerts,
            },
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[*namespace_dependency(namespaces, namespace), *after])),
        )
    found = dashboards(settings)
    if found:
        GrafanaDashboards(
            "grafana-dashboards",
            {"namespace": observability.namespace, "dashboards": found, "labels": observability.dashboard_label},
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=after)),
        )
    summary: dict[str, Any] = {"mode": observability.mode, "dashboards": sorted(found)}
    if installed:
        services = service_names(KUBE_PROMETHEUS_STACK_RELEASE)
        namespace = observability.namespace
        summary.update(
            grafanaPortForward=f"kubectl -n {namespace} port-forward svc/{services['grafana']} 3000:80",
            prometheusPortForward=f"kubectl -n {namespace} port-forward svc/{services['prometheus']} 9090:9090",
            grafanaAdminPasswordCommand=(
                f"kubectl -n {namespace} get secret {grafana_admin_secret_name(KUBE_PROMETHEUS_STACK_RELEASE)} -o jsonpath='{{.data.admin-password}}' | base64 -d"
            ),
        )
    outputs["observability"] = summary
