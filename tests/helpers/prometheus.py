"""A real Prometheus (Debian's package, unpacked by tests/tools/install-prometheus) for tests,
with scrape jobs made from PodMonitors the way the Prometheus operator makes them.

The operator turns each PodMonitor endpoint into a job `podMonitor/<ns>/<name>/<i>`
whose targets are the selected pods' container ports of that name, with the
pod's labels as `__meta_kubernetes_pod_label_<name>`, its standard target labels
(namespace, container, pod, endpoint) and then the endpoint's own relabelings.
Here the pods are given (their addresses in the test's network), the rest is
Prometheus itself: its relabeling engine applies the PodMonitors' rules.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

from tests.helpers.upstream import require_shared

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "prometheus" / "usr" / "bin"


def prometheus_binary(name: str = "prometheus") -> str:
    """The unpacked binary; missing: skipped locally, a failure in CI (run tests/tools/install-prometheus)."""
    return str(require_shared(TOOLS / name, "Debian's prometheus (tests/tools/install-prometheus)"))


def _label_name(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _relabeling(rule: Mapping[str, Any]) -> dict[str, Any]:
    """A PodMonitor RelabelConfig (camelCase) as Prometheus configuration."""
    names = {"sourceLabels": "source_labels", "targetLabel": "target_label"}
    return {names.get(key, key): value for key, value in rule.items()}


def selects(monitor: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    spec = monitor["spec"]
    namespaces = (spec.get("namespaceSelector") or {}).get("matchNames") or [monitor["metadata"]["namespace"]]
    wanted = (spec.get("selector") or {}).get("matchLabels") or {}
    return pod["namespace"] in namespaces and wanted.items() <= pod["labels"].items()


def pod_monitor_jobs(monitors: Iterable[Mapping[str, Any]], pods: Sequence[Mapping[str, Any]],
                     scrape_interval: Optional[str] = None) -> list[dict[str, Any]]:
    """Scrape configs for PodMonitors. A pod: {name, namespace, ip, labels, containers: {name: {port name: number}}}.
    `scrape_interval` replaces the endpoints' own (a test need not wait 15 s a scrape)."""
    jobs = []
    for monitor in monitors:
        namespace, name = monitor["metadata"]["namespace"], monitor["metadata"]["name"]
        for index, endpoint in enumerate(monitor["spec"]["podMetricsEndpoints"]):
            targets = []
            for pod in pods:
                if not selects(monitor, pod):
                    continue
                for container, ports in pod["containers"].items():
                    if endpoint["port"] in ports:
                        labels = {f"__meta_kubernetes_pod_label_{_label_name(key)}": value for key, value in pod["labels"].items()}
                        labels.update(__meta_kubernetes_namespace=pod["namespace"], __meta_kubernetes_pod_name=pod["name"],
                                      __meta_kubernetes_pod_container_name=container)
                        targets.append({"targets": [f"{pod['ip']}:{ports[endpoint['port']]}"], "labels": labels})
            standard = [
                {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
                {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
                {"target_label": "endpoint", "replacement": endpoint["port"]},
            ]
            jobs.append({
                "job_name": f"podMonitor/{namespace}/{name}/{index}",
                "metrics_path": endpoint.get("path", "/metrics"),
                "scheme": endpoint.get("scheme", "http"),
                "scrape_interval": scrape_interval or endpoint.get("interval", "30s"),
                "static_configs": targets,
                "relabel_configs": standard + [_relabeling(rule) for rule in endpoint.get("relabelings") or ()],
            })
    return jobs


def prometheus_config(jobs: list[dict[str, Any]], rule_files: Sequence[str] = (), evaluation_interval: str = "2s") -> dict[str, Any]:
    return {"global": {"evaluation_interval": evaluation_interval}, "rule_files": list(rule_files), "scrape_configs": jobs}


def rule_file(rules: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """PrometheusRule objects as one Prometheus rule file (what the operator mounts)."""
    return {"groups": [group for rule in rules for group in rule["spec"]["groups"]]}


def metric_names(expr: str) -> set[str]:
    """Series names an expression selects (label matchers, grouping labels and functions left out)."""
    text = re.sub(r'"[^"]*"', '""', expr)
    text = re.sub(r"\w+\s*(=~|!~|!=|=)\s*\"\"", "", text)  # label matchers
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    text = re.sub(r"\b[a-zA-Z_]+\s*\(", "(", text)  # functions and aggregations
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b", text))
    return {name for name in names if not re.fullmatch(r"\d.*|[a-z]+|le|bool|offset|inf|nan", name, flags=re.I)}


def grafana_expression(expr: str, rate_interval: str = "30s") -> str:
    """A dashboard's PromQL as Grafana sends it: template variables filled with "all"."""
    expr = expr.replace("$__rate_interval", rate_interval).replace("$__range", "5m").replace("$__interval", rate_interval)
    expr = re.sub(r"\$\{?(interval|window)\}?", rate_interval, expr)  # interval-type variables
    return re.sub(r"\$\{?\w+\}?", ".*", expr)  # every query variable: All (.*)


def service_monitor_job(monitor: Mapping[str, Any], address: str, service: Mapping[str, Any],
                        scrape_interval: Optional[str] = None) -> dict[str, Any]:
    """The scrape job of a ServiceMonitor's first endpoint for one endpoint address of the Service
    it selects (`service`: the Service object; the selection is checked)."""
    spec = monitor["spec"]
    wanted = (spec.get("selector") or {}).get("matchLabels") or {}
    assert wanted.items() <= (service["metadata"].get("labels") or {}).items(), "the ServiceMonitor does not select the Service"
    endpoint = spec["endpoints"][0]
    assert endpoint["port"] in {port.get("name") for port in service["spec"]["ports"]}, f"the Service has no port {endpoint['port']}"
    return {
        "job_name": f"serviceMonitor/{monitor['metadata']['namespace']}/{monitor['metadata']['name']}/0",
        "metrics_path": endpoint.get("path", "/metrics"),
        "honor_labels": bool(endpoint.get("honorLabels")),
        "scrape_interval": scrape_interval or endpoint.get("interval", "30s"),
        "static_configs": [{"targets": [address], "labels": {"namespace": service["metadata"]["namespace"],
                                                             "service": service["metadata"]["name"], "endpoint": endpoint["port"]}}],
    }


class HostPrometheus:
    """Prometheus on a free loopback port of this host, for targets the host reaches."""

    def __init__(self, directory: Path, jobs: list[dict[str, Any]]):
        import socket
        import subprocess

        import yaml

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        config = directory / "prometheus.yaml"
        config.write_text(yaml.safe_dump(prometheus_config(jobs)))
        self.log = open(directory / "prometheus.log", "w")
        self.process = subprocess.Popen(
            [prometheus_binary(), f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"], stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        import time
        import urllib.request

        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2):
                    return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"Prometheus did not start: {(self.log.name and open(self.log.name).read())[-2000:]}") from None
                time.sleep(0.2)

    def get(self, path: str, **query: str) -> dict[str, Any]:
        import json
        import urllib.error
        import urllib.parse
        import urllib.request

        url = f"http://127.0.0.1:{self.port}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=20) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            return json.load(error)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()
