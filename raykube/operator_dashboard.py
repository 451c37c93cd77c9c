"""The KubeRay operator's Grafana dashboard: reconciles, RayClusters and RayJobs.

Built here from the metrics the KubeRay operator (v1.7, `--enable-metrics`)
and controller-runtime export, the same ones KubeRay's own dashboard
(config/grafana/KubeRay-Operator.json) charts, filtered by the Ray namespace.
KubeRay's uid, so links to its dashboard land here. tests/test_observability.py
checks every expression against a real Prometheus scraping the real operator.
"""
from __future__ import annotations

import json

UID = "kuberay_operator"
NAMESPACE = '{namespace=~"$namespace"}'
RATE = "$__rate_interval"

# (title, unit, [(expression, legend)]); two panels to a row.
PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("RayClusters", "short", [(f"count by (namespace) (kuberay_cluster_info{NAMESPACE})", "{{namespace}}")]),
    ("RayClusters not provisioned", "short", [(
        'sum by (namespace, name) (kuberay_cluster_condition_provisioned{namespace=~"$namespace", condition="false"})', "{{namespace}}/{{name}}"
    )]),
    ("Time to provision a RayCluster", "s", [(f"kuberay_cluster_provisioned_duration_seconds{NAMESPACE}", "{{namespace}}/{{name}}")]),
    ("RayJobs", "short", [(f"count by (namespace) (kuberay_job_info{NAMESPACE})", "{{namespace}}")]),
    ("RayJob deployment status", "short", [(
        f"sum by (deployment_status) (kuberay_job_deployment_status{NAMESPACE})", "{{deployment_status}}"
    )]),
    ("RayJob run time", "s", [(f"kuberay_job_execution_duration_seconds{NAMESPACE}", "{{namespace}}/{{name}}")]),
    ("Reconciles per second", "ops", [(
        f"sum by (controller, result) (rate(controller_runtime_reconcile_total{NAMESPACE}[{RATE}]))", "{{controller}} {{result}}"
    )]),
    ("Reconcile errors per second", "ops", [(
        f"sum by (controller) (rate(controller_runtime_reconcile_errors_total{NAMESPACE}[{RATE}]))", "{{controller}}"
    )]),
    ("Reconcile latency", "s", [
        (f"histogram_quantile({q}, sum by (le, controller) (rate(controller_runtime_reconcile_time_seconds_bucket{NAMESPACE}[5m])))",
         f"p{int(q * 100)} {{{{controller}}}}")
        for q in (0.5, 0.95, 0.99)
    ]),
    ("Work queue depth", "short", [(f"sum by (name) (workqueue_depth{NAMESPACE})", "{{name}}")]),
]


def _panel(index: int, title: str, unit: str, targets: list[tuple[str, str]]) -> dict:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + number), "expr": expr, "legendFormat": legend, "datasource": {"type": "prometheus", "uid": "${datasource}"}}
            for number, (expr, legend) in enumerate(targets)
        ],
    }


def operator_dashboard() -> str:
    """The dashboard's JSON."""
    dashboard = {
        "uid": UID,
        "title": "KubeRay Operator",
        "tags": ["kuberay", "raykube"],
        "schemaVersion": 39,
        "editable": True,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "current": {}, "hide": 0},
            {
                "name": "namespace", "label": "Ray namespace", "type": "query",
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "query": {"query": "label_values(kuberay_cluster_info, namespace)", "refId": "namespace"},
                "definition": "label_values(kuberay_cluster_info, namespace)",
                "includeAll": True, "multi": True, "allValue": ".*", "current": {}, "refresh": 2,
            },
        ]},
        "panels": [_panel(index, *panel) for index, panel in enumerate(PANELS)],
    }
    return json.dumps(dashboard, indent=2)
