"""RayMonitors: what a Prometheus operator needs to scrape one Ray namespace, and KubeRay's GCS alert.

- PodMonitor `<prefix>-ray-heads`: KubeRay's heads (label ray.io/node-type=head)
  on their `metrics` port (Ray's node metrics; KubeRay adds the port, 8080),
  `as-metrics` (the autoscaler's, 44217) and `dash-metrics` (the dashboard's,
  44227), which RayCluster declares when `head_metrics_ports` is set;
- PodMonitor `<prefix>-ray-workers`: KubeRay's workers on `metrics`;
- PodMonitor `<prefix>-ray-pool-workers`: the HPA pools' workers (a
  Deployment, not KubeRay's) on `metrics` (RayWorkerPool declares it);
- ServiceMonitor `<prefix>-kuberay-operator`: the namespace's operator, through
  the Service its chart makes (port `http`, /metrics);
- PrometheusRule `<prefix>-ray-gcs` (when `alerts`): KubeRay's GCS rules: the
  30-day share of the GCS's storage operations done within 100 ms, and an
  alert when the GCS stops exporting them.

Every series carries `ray_io_cluster` (the cluster's name), the label Ray's
Grafana dashboards filter by, for KubeRay's pods and the pool's alike.
The monitors live in the Ray namespace, so a stack's destroy takes its own and
no other's; they carry `labels` so the user's Prometheus selects them.
"""

from typing import Any, Mapping, Optional, Required, Sequence, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.args import ComponentArgsError, check_args, component_label
from components.kube_prometheus_stack import DEFAULT_RELEASE
from components.ray_network_policies import OPERATOR_POD_LABELS

# Port names Prometheus finds by (a containerPort name is at most 15 characters).
METRICS_PORT_NAME = "metrics"
AUTOSCALER_METRICS_PORT_NAME = "as-metrics"
DASHBOARD_METRICS_PORT_NAME = "dash-metrics"
HEAD_METRICS_PORT_NAMES = (METRICS_PORT_NAME, AUTOSCALER_METRICS_PORT_NAME, DASHBOARD_METRICS_PORT_NAME)
# The kuberay-operator chart's Service: port `http`, labelled as the operator's pods.
OPERATOR_SERVICE_PORT_NAME = "http"
# The pool's pods (RayWorkerPool's labels) and the label that names their cluster.
POOL_POD_LABELS = {"app.kubernetes.io/name": "ray-worker", "app.kubernetes.io/managed-by": "raykube"}
CLUSTER_LABEL = "ray_io_cluster"
MONITORING_API = "monitoring.coreos.com/v1"
# The GCS's storage operations (its key-value and table reads and writes, several a
# second on a live cluster: the dashboard and the autoscaler poll it): a latency
# histogram and a counter the GCS exports through the head's metrics port.
# KubeRay's own rules chart `ray_gcs_update_resource_usage_time`, which Ray 2.60's
# GCS no longer exports: their alert would fire on every healthy cluster.
GCS_STORAGE_LATENCY = "ray_gcs_storage_operation_latency_ms"
GCS_STORAGE_COUNT = "ray_gcs_storage_operation_count_total"
GCS_AVAILABILITY_RECORD = "ray_gcs_availability_30d"
GCS_MISSING_ALERT = "MissingMetricRayGlobalControlStore"


class RayMonitorsArgs(TypedDict, total=False):
    """Arguments of RayMonitors."""

    namespace: Required[str]
    """The Ray namespace (required; plain string)."""
    labels: Mapping[str, str]
    """Labels of every monitor and rule: what the Prometheus selects (default {release: kube-prometheus-stack})."""
    scrape_interval_seconds: int
    """Scrape interval (default 15)."""
    alerts: bool
    """Also KubeRay's GCS PrometheusRule (default True)."""
    name_prefix: str
    """Prefix of the objects' names (default "raykube")."""


def _cluster_from(pod_label: str) -> list[dict[str, Any]]:
    """Relabel a pod label into `ray_io_cluster`."""
    meta = "__meta_kubernetes_pod_label_" + "".join(c if c.isalnum() else "_" for c in pod_label)
    return [{"action": "replace", "sourceLabels": [meta], "targetLabel": CLUSTER_LABEL}]


def _pod_monitor(name: str, namespace: str, labels: Mapping[str, str], selector: Mapping[str, str],
                 ports: Sequence[str], cluster_label: str, interval: str) -> dict[str, Any]:
    return {
        "apiVersion": MONITORING_API,
        "kind": "PodMonitor",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "namespaceSelector": {"matchNames": [namespace]},
            "selector": {"matchLabels": dict(selector)},
            "podMetricsEndpoints": [
                {"port": port, "path": "/metrics", "interval": interval, "relabelings": _cluster_from(cluster_label)} for port in ports
            ],
        },
    }


def gcs_rules(namespace: str) -> list[dict[str, Any]]:
    """KubeRay's GCS rule group (config/prometheus/rules: a 30-day availability record and an
    alert when the GCS goes silent), on the GCS metrics Ray exports, for one namespace's heads."""
    heads = f'container="ray-head",namespace="{namespace}"'
    ratio = (
        f'100 * sum by ({CLUSTER_LABEL}) (rate({GCS_STORAGE_LATENCY}_bucket{{{heads},le="100.0"}}[30d]))'
        f' / sum by ({CLUSTER_LABEL}) (rate({GCS_STORAGE_LATENCY}_count{{{heads}}}[30d]))'
    )
    return [{
        "name": f"ray-gcs.{namespace}.rules",
        "interval": "30s",
        "rules": [
            {"record": GCS_AVAILABILITY_RECORD, "expr": ratio},
            {
                "alert": GCS_MISSING_ALERT,
                "expr": f"absent({GCS_STORAGE_COUNT}{{{heads}}}) == 1",
                "for": "5m",
                "labels": {"severity": "critical"},
                "annotations": {
                    "summary": f"No Ray GCS in namespace {namespace} is exporting metrics",
                    "description": "A live GCS reads and writes its storage several times a second and says so in its metrics; "
                    "none has for 5 minutes (head down, or not scraped).",
                },
            },
        ],
    }]


def ray_monitors(args: Mapping[str, Any], component: str = "RayMonitors") -> list[dict[str, Any]]:
    """The PodMonitors, ServiceMonitor and PrometheusRule (API field names) of one Ray namespace."""
    namespace, prefix = args["namespace"], args.get("name_prefix") or "raykube"
    labels = dict(args.get("labels") or {"release": DEFAULT_RELEASE})
    seconds = args.get("scrape_interval_seconds", 15)
    if not isinstance(seconds, int) or seconds < 1:
        raise ComponentArgsError(component, "scrape_interval_seconds", f"{seconds!r} must be a whole number of seconds, at least 1")
    interval = f"{seconds}s"
    objects = [
        _pod_monitor(f"{prefix}-ray-heads", namespace, labels, {"ray.io/node-type": "head"}, HEAD_METRICS_PORT_NAMES, "ray.io/cluster", interval),
        _pod_monitor(f"{prefix}-ray-workers", namespace, labels, {"ray.io/node-type": "worker"}, [METRICS_PORT_NAME], "ray.io/cluster", interval),
        _pod_monitor(f"{prefix}-ray-pool-workers", namespace, labels, POOL_POD_LABELS, [METRICS_PORT_NAME], "raykube.io/cluster", interval),
        {
            "apiVersion": MONITORING_API,
            "kind": "ServiceMonitor",
            "metadata": {"name": f"{prefix}-kuberay-operator", "namespace": namespace, "labels": dict(labels)},
            "spec": {
                "namespaceSelector": {"matchNames": [namespace]},
                "selector": {"matchLabels": dict(OPERATOR_POD_LABELS)},
                "endpoints": [{"port": OPERATOR_SERVICE_PORT_NAME, "path": "/metrics", "interval": interval, "honorLabels": True}],
            },
        },
    ]
    if args.get("alerts", True):
        objects.append({
            "apiVersion": MONITORING_API,
            "kind": "PrometheusRule",
            "metadata": {"name": f"{prefix}-ray-gcs", "namespace": namespace, "labels": dict(labels)},
            "spec": {"groups": gcs_rules(namespace)},
        })
    return objects


class RayMonitors(pulumi.ComponentResource):
    """PodMonitors for a Ray namespace's heads, workers and HPA-pool workers, a ServiceMonitor
    for its KubeRay operator, and KubeRay's GCS PrometheusRule. Needs the prometheus-operator CRDs."""

    monitor_names: pulumi.Output[Sequence[str]]
    """Names of the monitors and rules, in the namespace."""

    def __init__(self, name: str, args: RayMonitorsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        label = component_label("RayMonitors", name)
        check_args(label, RayMonitorsArgs, args)
        manifests = ray_monitors(args, label)
        super().__init__("raykube:index:RayMonitors", name, None, opts)
        self.monitors = [
            k8s.apiextensions.CustomResource(
                f"{name}-{manifest['metadata']['name']}",
                api_version=manifest["apiVersion"],
                kind=manifest["kind"],
                metadata=manifest["metadata"],
                spec=manifest["spec"],
                opts=pulumi.ResourceOptions(parent=self),
            )
            for manifest in manifests
        ]
        self.monitor_names = pulumi.Output.from_input([manifest["metadata"]["name"] for manifest in manifests])
        self.register_outputs({"monitor_names": self.monitor_names})
