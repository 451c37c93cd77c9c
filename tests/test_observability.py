"""Observability: what Prometheus scrapes, what Grafana shows, and what the Ray dashboard embeds.

The real-Ray test runs Debian's Prometheus inside the session's Ray sandbox with
scrape jobs made from the local stack's own PodMonitors (tests/helpers/prometheus.py),
runs a small job, and asks that Prometheus every query of every dashboard the
stack installs: each must parse, and the metrics they chart must be ones Ray
really exports, but for those only other workloads make (listed below, with why).
"""
from __future__ import annotations

import copy
import json
import re
import time

import pytest
import yaml

from tests.helpers.program import DEPLOYMENT, RAYCLUSTER, run_program, stack_file_config
from tests.helpers.prometheus import grafana_expression, metric_names
from tests.helpers.scraped_ray import named_ports as _ports, objects
from tests.helpers.upstream import KUBE_PROMETHEUS_STACK_VALUES, load_upstream, unknown_chart_values, upstream_path

SCRAPE = "2s"  # the monitors say 15 s; the test need not wait for that

# Metrics a dashboard charts that this test's cluster cannot make, by pattern, with why.
# Anything else a dashboard names and Ray does not export fails the test.
MADE_ONLY_ELSEWHERE = {
    r"gpu|GPU|gram|tpu|TPU": "accelerators (gram: GPU memory): the test nodes have none",
    r"^(autoscaler_recently_failed_nodes|ray_memory_manager_worker_eviction_total|ray_node_manager_unexpected_worker_failure_total)$":
        "counters Ray creates at their first event (a failed node, an OOM kill, a crashed worker): the job causes none",
    r"^ray_serve_|^serve_": "Ray Serve: the job runs no Serve application",
    r"^ray_train_": "Ray Train: the job trains nothing",
    r"^ray_data_": "Ray Data: needs pyarrow, which the test environment does not install",
    r"vllm|sglang|^ray_llm": "LLM engines",
    r"^ray_node_mem_shared_bytes$|^ray_component_": "per-component process metrics: Ray samples them off Linux containers' cgroups",
}


def _elsewhere(name: str) -> bool:
    return any(re.search(pattern, name) for pattern in MADE_ONLY_ELSEWHERE)


# --- the settings and what the program makes of them -------------------------------------------


def test_kube_prometheus_stack_values_exist_in_the_pinned_chart(stack_runs):
    (chart,) = [r for r in stack_runs["local"].of_type("kubernetes:helm.sh/v4:Chart") if r.inputs["chart"] == "kube-prometheus-stack"]
    from components.versions import KUBE_PROMETHEUS_STACK_VERSION

    upstream = load_upstream("kube-prometheus-stack/Chart.yaml")
    assert chart.inputs["version"] == upstream["version"] == KUBE_PROMETHEUS_STACK_VERSION
    values = copy.deepcopy(chart.inputs["values"])
    # grafana.ini belongs to the Grafana subchart (kube-prometheus-stack passes grafana.* to it);
    # KubeRay's own Prometheus install sets these same keys there for embedding.
    grafana_ini = values["grafana"].pop("grafana.ini")
    assert unknown_chart_values(values, KUBE_PROMETHEUS_STACK_VALUES) == []
    kuberay_overrides = yaml.safe_load(upstream_path("kuberay/install/prometheus/overrides.yaml").read_text())
    assert grafana_ini["security"]["allow_embedding"] is kuberay_overrides["grafana"]["grafana.ini"]["security"]["allow_embedding"] is True
    assert set(grafana_ini["auth.anonymous"]) <= set(kuberay_overrides["grafana"]["grafana.ini"]["auth.anonymous"])
    # The Prometheus it runs selects raykube's monitors: their `release` label is the chart's release.
    sidecar = load_upstream(KUBE_PROMETHEUS_STACK_VALUES)["prometheus"]["prometheusSpec"]
    assert sidecar["podMonitorSelectorNilUsesHelmValues"] is True and sidecar["ruleSelectorNilUsesHelmValues"] is True
    for monitor in objects(stack_runs["local"], "PodMonitor") + objects(stack_runs["local"], "PrometheusRule"):
        assert monitor["metadata"]["labels"]["release"] == chart.inputs["name"]
    # Grafana finds the dashboards' ConfigMaps by its sidecar's label.
    sidecar_values = values["grafana"]["sidecar"]["dashboards"]
    for config_map in objects(stack_runs["local"], "ConfigMap"):
        assert config_map["metadata"]["labels"][sidecar_values["label"]] == sidecar_values["labelValue"]


def test_grafanas_admin_password_is_a_pulumi_secret_the_chart_does_not_redraw(stack_runs):
    run = stack_runs["local"]
    (secret,) = [r for r in run.of_type("kubernetes:core/v1:Secret") if r.inputs["metadata"]["name"].endswith("grafana-admin")]
    assert "stringData" in secret.secret_paths  # never plaintext in state or render
    (chart,) = [r for r in run.of_type("kubernetes:helm.sh/v4:Chart") if r.inputs["chart"] == "kube-prometheus-stack"]
    admin = chart.inputs["values"]["grafana"]["admin"]
    assert admin["existingSecret"] == secret.inputs["metadata"]["name"]
    assert {admin["userKey"], admin["passwordKey"]} == set(secret.revealed_inputs["stringData"])
    assert "adminPassword" not in chart.inputs["values"]["grafana"]
    # A second run (a teammate's `pulumi up`) sends the chart the same values: no new password, no Grafana restart.
    again = run_program(stack_file_config("local"), "local")
    (chart_again,) = [r for r in again.of_type("kubernetes:helm.sh/v4:Chart") if r.inputs["chart"] == "kube-prometheus-stack"]
    assert chart_again.revealed_inputs == chart.revealed_inputs


def test_dashboards_do_not_follow_the_deployers_environment(monkeypatch):
    from raykube.ray_dashboards import ray_dashboards

    clean = ray_dashboards(["default"])
    monkeypatch.setenv("RAY_GRAFANA_DEFAULT_DASHBOARD_UID", "someone-elses")
    monkeypatch.setenv("RAY_GRAFANA_DEFAULT_DASHBOARD_GLOBAL_FILTERS", 'team="a"')
    assert ray_dashboards(["default"]) == clean
    assert json.loads(clean["ray-default"])["uid"] == "rayDefaultDashboard"  # what the Ray dashboard embeds
    # Made by the installed Ray (the clusters' version): a Ray bump makes them anew.
    import ray

    assert f"rayVersion:{ray.__version__}" in json.loads(clean["ray-default"])["tags"]


def test_the_heads_point_the_ray_dashboard_at_the_installed_grafana_and_prometheus(stack_runs):
    run = stack_runs["local"]
    (cluster,) = [r.revealed_inputs for r in run.of_type(RAYCLUSTER)]
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in head["env"]}
    assert env["RAY_PROMETHEUS_HOST"] == "http://kube-prometheus-stack-prometheus.monitoring.svc:9090"
    assert env["RAY_GRAFANA_HOST"] == "http://kube-prometheus-stack-grafana.monitoring.svc:80"
    assert env["RAY_GRAFANA_IFRAME_HOST"] == "http://127.0.0.1:3000"
    assert run.outputs["observability"]["grafanaPortForward"].endswith("svc/kube-prometheus-stack-grafana 3000:80")
    assert {"as-metrics", "dash-metrics"} <= set(_ports(head))


def test_the_pools_metrics_port_is_where_its_ray_exports_them(stack_runs):
    (pool,) = [r.revealed_inputs for r in stack_runs["local"].of_type(DEPLOYMENT)]
    worker = pool["spec"]["template"]["spec"]["containers"][0]
    assert f"--metrics-export-port={_ports(worker)['metrics']}" in worker["args"]


def test_no_observability_leaves_every_ray_pod_as_it_was():
    config = stack_file_config("local")
    config.pop("raykube:observability")
    run = run_program(config, "local")
    assert not [r for r in run.kubernetes_objects() if r.inputs["apiVersion"].startswith("monitoring.coreos.com")]
    assert not run.of_type("kubernetes:core/v1:ConfigMap") and "observability" not in run.outputs
    (cluster,) = [r.revealed_inputs for r in run.of_type(RAYCLUSTER)]
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert not {item["name"] for item in head["env"]} & {"RAY_PROMETHEUS_HOST", "RAY_GRAFANA_HOST"}
    assert set(_ports(head)) == {"gcs", "dashboard", "client"}


# --- a real Prometheus scraping the real Ray cluster ---------------------------------------------


WORKLOAD = (
    "@ray.remote\ndef square(x):\n    time.sleep(0.2)\n    return x * x\n"
    "@ray.remote\nclass Counter:\n    def __init__(self):\n        self.n = 0\n    def add(self):\n        self.n += 1\n        return self.n\n"
    "counter = Counter.remote()\n"
    "group = ray.util.placement_group([{'CPU': 0.1}])\n"
    "ray.get(group.ready())\n"
    "ray.util.remove_placement_group(group)\n"  # the tasks need the worker's whole CPU
    "big = ray.put(b'x' * 5_000_000)\n"
    "for _ in range(3):\n"
    "    assert sum(ray.get([square.remote(i) for i in range(20)])) == 2470\n"
    "    ray.get([counter.add.remote() for _ in range(10)])\n"
    "    time.sleep(4)\n"  # Ray reports metrics every few seconds: let them reach Prometheus
    "del big\n"
)


@pytest.fixture(scope="module")
def scraped(ray_head, stack_runs, tmp_path_factory):
    """The session's head and one HPA-pool worker, scraped by a real Prometheus through the
    local stack's PodMonitors while a small job runs (tests/helpers/scraped_ray.py)."""
    from tests.helpers.scraped_ray import ScrapedRay

    cluster = ScrapedRay(ray_head, stack_runs["local"], tmp_path_factory.mktemp("prometheus"), scrape_interval=SCRAPE)
    try:
        cluster.drive(WORKLOAD)
        time.sleep(8)
        yield cluster
    finally:
        cluster.close()


def test_prometheus_scrapes_every_ray_endpoint_the_pod_monitors_name(scraped):
    answers = scraped.ask([])
    targets = {(t["labels"]["job"], t["scrapeUrl"]): t for t in answers["targets"]}
    endpoints = {(t["labels"].get("endpoint"), t["labels"].get("pod")): t for t in targets.values()}
    # The head's node, autoscaler and dashboard metrics, and the pool worker's node metrics.
    assert {endpoint for endpoint, _ in endpoints} == {"metrics", "as-metrics", "dash-metrics"}
    for target in targets.values():
        assert target["health"] == "up", f"{target['scrapeUrl']}: {target['lastError']}"
        assert target["labels"]["ray_io_cluster"] == "raycluster"  # Ray's dashboards filter by it, for KubeRay's pods and the pool's
    assert len([t for t in targets.values() if t["labels"]["job"].endswith("pool-workers/0")]) == 1


def test_every_dashboard_query_parses_and_charts_what_ray_exports(scraped):
    dashboards = {cm["metadata"]["name"]: json.loads(next(iter(cm["data"].values())))
                  for cm in objects(scraped.run, "ConfigMap") if cm["metadata"]["name"].startswith("raykube-ray-")}
    assert {"raykube-ray-default", "raykube-ray-data", "raykube-ray-serve", "raykube-ray-train"} <= set(dashboards)
    queries = {}
    for dashboard_name, dashboard in dashboards.items():
        for panel in dashboard["panels"]:
            for target in panel.get("targets") or ():
                if target.get("expr"):
                    queries.setdefault(grafana_expression(target["expr"]), []).append(f"{dashboard_name}: {panel.get('title')}")
        for variable in dashboard.get("templating", {}).get("list", []):
            query = (variable.get("query") or {}).get("query", "") if isinstance(variable.get("query"), dict) else ""
            match = re.match(r"label_values\((.*),\s*\w+\)$", query)
            if match and match.group(1).strip():
                queries.setdefault(grafana_expression(match.group(1)), []).append(f"{dashboard_name}: variable {variable['name']}")
    answers = scraped.ask(sorted(queries))
    exported = set(answers["names"])
    refused = {expr: answer.get("error") for expr, answer in answers["queries"].items() if answer["status"] != "success"}
    assert refused == {}, f"queries Prometheus refuses: {refused}"
    missing = {}
    for expr, where in queries.items():
        for name in metric_names(expr):
            if name not in exported and not _elsewhere(name):
                missing.setdefault(name, where[0])
    assert missing == {}, f"dashboards chart metrics Ray does not export: {missing}"
    # The metrics the job made are charted: the core panels have data.
    charted = {name for expr in queries for name in metric_names(expr)}
    assert {"ray_tasks", "ray_actors", "ray_node_cpu_utilization", "ray_object_store_memory", "autoscaler_active_nodes"} <= charted & exported
    empty_core = [where[0] for expr, where in queries.items()
                  if metric_names(expr) & {"ray_tasks", "ray_actors", "ray_node_cpu_utilization"} and not answers["queries"][expr]["data"]["result"]
                  and not re.search(r"State\s*(=|!)", expr)]  # a state the finished job is no longer in
    assert empty_core == [], f"core panels without data after a job: {empty_core}"


def test_kuberays_gcs_rules_evaluate_on_the_gcs_metrics_ray_exports(scraped):
    from components.ray_monitors import GCS_AVAILABILITY_RECORD, GCS_MISSING_ALERT, GCS_STORAGE_COUNT, GCS_STORAGE_LATENCY

    upstream = load_upstream("kuberay/config/prometheus/rules/prometheusRules.yaml")
    upstream_rules = [rule for group in upstream["spec"]["groups"] for rule in group["rules"]]
    upstream_metrics = {name for rule in upstream_rules for name in metric_names(rule["expr"])}
    answers = scraped.ask([GCS_STORAGE_COUNT, f"{GCS_STORAGE_LATENCY}_bucket", GCS_AVAILABILITY_RECORD])
    rules = {rule["name"]: rule for group in answers["rules"] for rule in group["rules"]}
    # The same recording rule and alert as KubeRay's own...
    assert {rule.get("record") or rule.get("alert") for rule in upstream_rules} == {GCS_AVAILABILITY_RECORD, GCS_MISSING_ALERT}
    assert rules[GCS_AVAILABILITY_RECORD]["health"] == "ok" and rules[GCS_MISSING_ALERT]["health"] == "ok"
    # ...on metrics this Ray exports: the alert stays quiet on a healthy cluster, the record has a value.
    assert rules[GCS_MISSING_ALERT]["state"] == "inactive"
    assert answers["queries"][GCS_STORAGE_COUNT]["data"]["result"] and answers["queries"][f"{GCS_STORAGE_LATENCY}_bucket"]["data"]["result"]
    assert answers["queries"][GCS_AVAILABILITY_RECORD]["data"]["result"]
    # KubeRay's metric is gone from Ray's GCS: its rules, copied, would page on every cluster.
    # When a Ray exports it again, this fails, and raykube can follow KubeRay's rules once more.
    assert not upstream_metrics & set(answers["names"]), f"Ray exports {upstream_metrics} again"


# --- bad settings ------------------------------------------------------------------------------


@pytest.mark.parametrize("observability,key", [
    ({"mode": "everything"}, "observability.mode"),
    ({"mode": "install", "dashboards": ["defualt"]}, "observability.dashboards"),
    ({"mode": "install", "prometheusUrl": "http://prometheus:9090"}, "observability.prometheusUrl"),
    ({"mode": "install", "monitorLabels": {"team": "ml"}}, "observability.monitorLabels"),
    ({"mode": "podMonitors", "grafanaUrl": "grafana.monitoring.svc"}, "observability.grafanaUrl"),
    ({"mode": "podMonitors", "kubePrometheusStack": {"values": {"grafana": {}}}}, "observability.kubePrometheusStack.values"),
    ({"mode": "install", "namespace": "ray"}, "observability.namespace"),
    ({"mode": "install", "scrapeIntervalSeconds": 1}, "observability.scrapeIntervalSeconds"),
    ({"mode": "install", "grafanaBrowserURL": "http://127.0.0.1:3000"}, "observability.grafanaBrowserURL"),
])
def test_a_wrong_observability_setting_is_one_error_naming_it(observability, key):
    from raykube.settings import SettingsError, parse_settings

    with pytest.raises(SettingsError) as error:
        parse_settings({"target": "local", "observability": observability}, "stacks/Pulumi.local.yaml")
    assert error.value.keys == [f"raykube:{key}"], error.value.problems
    assert "stacks/Pulumi.local.yaml" in str(error.value)
