"""Observability: who scrapes Ray's metrics, the Grafana dashboards, and what the Ray dashboard embeds."""
from __future__ import annotations

from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from components.kube_prometheus_stack import DASHBOARD_LABEL, DEFAULT_RELEASE, in_cluster_urls
from raykube.ray_dashboards import FACTORY_FUNCTIONS
from raykube.settings.model import Model
from raykube.settings.network_policies import namespace_name
from raykube.settings.pods import check_labels

# The dashboards Ray's own factory generates, by the names the settings use.
RAY_DASHBOARDS = tuple(FACTORY_FUNCTIONS)
# What Ray's dashboard links to out of the box: its Metrics tab embeds default,
# and data, serve and train pages embed theirs. The LLM ones need vLLM/SGLang.
DEFAULT_RAY_DASHBOARDS = ("default", "data", "serve", "serveDeployment", "train")
# kube-prometheus-stack's release name: its Prometheus selects monitors and
# rules labelled `release: <release>`, and its Services are named after it.
KUBE_PROMETHEUS_STACK_RELEASE = DEFAULT_RELEASE


class KubePrometheusStackSettings(Model):
    """mode install: the chart raykube installs (pinned in components/versions.py)."""

    values: dict[str, Any] = Field(
        default_factory=dict, description="more chart values, merged over raykube's (e.g. alertmanager.enabled: false)"
    )


class ObservabilitySettings(Model):
    """Metrics (PodMonitors, ServiceMonitor, PrometheusRule), Grafana dashboards, the Ray dashboard's graphs."""

    mode: Literal["none", "podMonitors", "install"] = Field(
        default="none",
        description="none | podMonitors (for a Prometheus operator you run) | install (also kube-prometheus-stack)",
    )
    namespace: str = Field(
        default="monitoring",
        description="install: kube-prometheus-stack's namespace (created); podMonitors: your Grafana's (it must exist); the dashboards' ConfigMaps go here",
    )
    monitor_labels: Optional[dict[str, str]] = Field(
        default=None,
        description="labels on every PodMonitor, ServiceMonitor and PrometheusRule: what your Prometheus selects "
        f"(default {{release: {KUBE_PROMETHEUS_STACK_RELEASE}}})",
    )
    scrape_interval_seconds: int = Field(default=15, ge=5, le=300, description="how often Prometheus scrapes Ray and the operators")
    alerts: bool = Field(default=True, description="KubeRay's GCS recording rule and alert, as a PrometheusRule per Ray namespace")
    dashboards: list[str] = Field(
        default_factory=lambda: list(DEFAULT_RAY_DASHBOARDS),
        description=f"Ray's Grafana dashboards to install ({', '.join(RAY_DASHBOARDS)}); [] for none",
    )
    operator_dashboard: bool = Field(default=True, description="the KubeRay operator's Grafana dashboard")
    dashboard_label: dict[str, str] = Field(
        default_factory=lambda: dict([DASHBOARD_LABEL]),
        description="label of the dashboards' ConfigMaps: what Grafana's dashboard sidecar looks for",
    )
    prometheus_url: Optional[str] = Field(
        default=None,
        description="where the Ray head queries Prometheus (RAY_PROMETHEUS_HOST); install: the chart's Service",
    )
    grafana_url: Optional[str] = Field(
        default=None, description="where the Ray head checks Grafana (RAY_GRAFANA_HOST); install: the chart's Service"
    )
    grafana_browser_url: str = Field(
        default="http://127.0.0.1:3000",
        description="where your browser reaches Grafana (RAY_GRAFANA_IFRAME_HOST): the stack's grafanaPortForward by default",
    )
    kube_prometheus_stack: KubePrometheusStackSettings = Field(
        default_factory=KubePrometheusStackSettings, description="mode install: chart values"
    )

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, namespace: str) -> str:
        return namespace_name(namespace)

    @field_validator("monitor_labels", "dashboard_label")
    @classmethod
    def _labels(cls, labels: Optional[dict[str, str]]) -> Optional[dict[str, str]]:
        return None if labels is None else check_labels(labels)

    @field_validator("dashboards")
    @classmethod
    def _known_dashboards(cls, names: list[str]) -> list[str]:
        unknown = [name for name in names if name not in RAY_DASHBOARDS]
        if unknown:
            raise ValueError(f"unknown dashboard(s) {', '.join(map(repr, unknown))}: Ray's factory makes {', '.join(RAY_DASHBOARDS)}")
        if len(set(names)) != len(names):
            raise ValueError("a dashboard is named twice")
        return names

    @field_validator("prometheus_url", "grafana_url", "grafana_browser_url")
    @classmethod
    def _url(cls, url: Optional[str]) -> Optional[str]:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} needs a scheme, e.g. http://prometheus.monitoring.svc:9090")
        return url.rstrip("/") if url else url

    @model_validator(mode="after")
    def _install_owns_the_addresses(self) -> "ObservabilitySettings":
        if self.mode == "install":
            for key, value in (("prometheusUrl", self.prometheus_url), ("grafanaUrl", self.grafana_url)):
                if value is not None:
                    raise ValueError(f"__{key}__ mode install points the Ray heads at the Prometheus and Grafana it installs; remove {key}")
            labels = self.effective_monitor_labels
            if labels.get("release") != KUBE_PROMETHEUS_STACK_RELEASE:
                raise ValueError(
                    f"__monitorLabels__ the Prometheus that mode install runs selects release: {KUBE_PROMETHEUS_STACK_RELEASE}; keep that label"
                )
        elif self.kube_prometheus_stack.values:
            raise ValueError("__kubePrometheusStack.values__ only mode install installs kube-prometheus-stack")
        return self

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    @property
    def effective_monitor_labels(self) -> dict[str, str]:
        return dict(self.monitor_labels) if self.monitor_labels is not None else {"release": KUBE_PROMETHEUS_STACK_RELEASE}

    @property
    def effective_prometheus_url(self) -> Optional[str]:
        if self.mode == "install":
            return in_cluster_urls(KUBE_PROMETHEUS_STACK_RELEASE, self.namespace)["prometheus"]
        return self.prometheus_url

    @property
    def effective_grafana_url(self) -> Optional[str]:
        if self.mode == "install":
            return in_cluster_urls(KUBE_PROMETHEUS_STACK_RELEASE, self.namespace)["grafana"]
        return self.grafana_url
