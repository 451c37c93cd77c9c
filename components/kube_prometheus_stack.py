"""KubePrometheusStack: Prometheus (through the Prometheus operator) and Grafana, from the
pinned kube-prometheus-stack chart, set up so the Ray dashboard can embed Grafana.

- its own namespace (created here, so a destroy takes it with the chart);
- Prometheus selects monitors and rules labelled `release: <release>` in every
  namespace (the chart's defaults), so RayMonitors in the Ray namespaces are found;
- Grafana: embeddable (`allow_embedding`), anonymous users may view (the Ray
  dashboard's iframes carry no Grafana login), and its dashboard sidecar loads
  every ConfigMap labelled `grafana_dashboard: "1"` in any namespace;
- Grafana's admin password: a Pulumi-generated secret in a Secret of its own
  (`<release>-grafana-admin`). Left to the chart, Helm's template would draw a
  new random password on every `pulumi up` (Pulumi renders the chart without
  Helm's `lookup` of the existing Secret) and restart Grafana each time.
"""

from typing import Any, Mapping, Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.args import check_args, component_label
from components.merge import deep_merge
from components.pinned_chart import check_chart_source, check_image_registry, pinned_chart
from components.sources import ChartSourceArgs
from components.versions import KUBE_PROMETHEUS_STACK_CHART, KUBE_PROMETHEUS_STACK_HELM_REPOSITORY, KUBE_PROMETHEUS_STACK_VERSION

DEFAULT_RELEASE = "kube-prometheus-stack"
# The pods behind the chart's Services, for NetworkPolicies: the Prometheus
# operator labels its Prometheus pods so; the Grafana chart labels its pods so
# and serves on 3000 (its Service's port 80 targets it).
PROMETHEUS_POD_LABELS = {"app.kubernetes.io/name": "prometheus"}
PROMETHEUS_PORT = 9090
GRAFANA_POD_LABELS = {"app.kubernetes.io/name": "grafana"}
GRAFANA_PORT = 3000
DASHBOARD_LABEL = ("grafana_dashboard", "1")
GRAFANA_ADMIN_USER = "admin"


class KubePrometheusStackArgs(TypedDict, total=False):
    """Arguments of KubePrometheusStack."""

    namespace: str
    """Namespace, created here (default "monitoring")."""
    release: str
    """Helm release name; names the Services and the `release` label monitors need (default "kube-prometheus-stack")."""
    scrape_interval_seconds: int
    """Prometheus's scrape and rule-evaluation interval (default 15)."""
    version: str
    """Chart version (default components.versions.KUBE_PROMETHEUS_STACK_VERSION)."""
    source: ChartSourceArgs
    """where the chart comes from: a folder, .tgz, oci:// reference or mirror repository (default the upstream repository)."""
    image_registry: str
    """registry prefix every image of the chart and its subcharts is pulled from (the chart's global.imageRegistry; default unset: upstream registries)."""
    values: Mapping[str, Any]
    """Any other chart value, merged last (default {})."""


def kube_prometheus_stack_values(args: Mapping[str, Any], admin_secret: str) -> dict[str, Any]:
    """raykube's chart values (before the caller's `values`)."""
    interval = f"{args.get('scrape_interval_seconds', 15)}s"
    mirror = {"global": {"imageRegistry": args["image_registry"]}} if args.get("image_registry") else {}
    return {
        **mirror,
        "prometheus": {"prometheusSpec": {"scrapeInterval": interval, "evaluationInterval": interval}},
        "grafana": {
            "admin": {"existingSecret": admin_secret, "userKey": "admin-user", "passwordKey": "admin-password"},
            "grafana.ini": {
                "security": {"allow_embedding": True},
                "auth.anonymous": {"enabled": True, "org_role": "Viewer"},
            },
            "sidecar": {"dashboards": {"enabled": True, "label": DASHBOARD_LABEL[0], "labelValue": DASHBOARD_LABEL[1], "searchNamespace": "ALL"}},
        },
    }


def grafana_admin_secret_name(release: str) -> str:
    return f"{release}-grafana-admin"


def service_names(release: str) -> dict[str, str]:
    """The chart's Prometheus and Grafana Services (release names without "grafana" in them)."""
    return {"prometheus": f"{release}-prometheus", "grafana": f"{release}-grafana"}


def in_cluster_urls(release: str, namespace: str) -> dict[str, str]:
    """Where pods reach the chart's Prometheus and Grafana (their Services' ports)."""
    services = service_names(release)
    return {"prometheus": f"http://{services['prometheus']}.{namespace}.svc:9090", "grafana": f"http://{services['grafana']}.{namespace}.svc:80"}


class KubePrometheusStack(pulumi.ComponentResource):
    """kube-prometheus-stack (pinned), with Grafana ready for the Ray dashboard to embed."""

    namespace: pulumi.Output[str]
    """The namespace."""
    prometheus_url: pulumi.Output[str]
    """Prometheus inside the cluster (the Ray heads' RAY_PROMETHEUS_HOST)."""
    grafana_url: pulumi.Output[str]
    """Grafana inside the cluster (the Ray heads' RAY_GRAFANA_HOST)."""
    grafana_admin_secret: pulumi.Output[str]
    """The Secret with Grafana's admin-user and admin-password."""

    def __init__(self, name: str, args: KubePrometheusStackArgs, opts: Optional[pulumi.ResourceOptions] = None):
        label = component_label("KubePrometheusStack", name)
        check_args(label, KubePrometheusStackArgs, args)
        args = args or {}
        version = args.get("version") or KUBE_PROMETHEUS_STACK_VERSION
        check_chart_source(label, args.get("source"), KUBE_PROMETHEUS_STACK_CHART, version)
        check_image_registry(label, args.get("image_registry"))
        super().__init__("raykube:index:KubePrometheusStack", name, None, opts)
        namespace = args.get("namespace") or "monitoring"
        release = args.get("release") or DEFAULT_RELEASE
        admin_secret = grafana_admin_secret_name(release)
        child = pulumi.ResourceOptions(parent=self)
        self.namespace_resource = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": namespace, "labels": {"app.kubernetes.io/managed-by": "raykube"}},
            opts=child,
        )
        in_namespace = pulumi.ResourceOptions(parent=self, depends_on=[self.namespace_resource])
        password = random.RandomPassword(f"{name}-grafana-password", length=32, special=False, opts=child)
        self.admin = k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata={"name": admin_secret, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "raykube"}},
            string_data={"admin-user": GRAFANA_ADMIN_USER, "admin-password": password.result},
            opts=in_namespace,
        )
        self.chart = pinned_chart(
            f"{name}-chart",
            chart=KUBE_PROMETHEUS_STACK_CHART,
            version=version,
            repository=KUBE_PROMETHEUS_STACK_HELM_REPOSITORY,
            namespace=namespace,
            release=release,
            values=deep_merge(kube_prometheus_stack_values(args, admin_secret), args.get("values") or {}),
            source=args.get("source"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace_resource, self.admin]),
        )
        urls = in_cluster_urls(release, namespace)
        self.namespace = pulumi.Output.from_input(namespace)
        self.prometheus_url = pulumi.Output.from_input(urls["prometheus"])
        self.grafana_url = pulumi.Output.from_input(urls["grafana"])
        self.grafana_admin_secret = pulumi.Output.from_input(admin_secret)
        self.register_outputs({
            "namespace": self.namespace, "prometheus_url": self.prometheus_url,
            "grafana_url": self.grafana_url, "grafana_admin_secret": self.grafana_admin_secret,
        })
