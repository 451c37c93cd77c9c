"""A Ray namespace after `pulumi up` on the simulated cluster (the local stack, with a RayJob on
its cluster): what Prometheus scrapes from its real KubeRay operator through raykube's
ServiceMonitor, and what `raykube status` says of it, also when its operator and credentials
are broken. (The HPA pool's figures: tests/test_simulated_scaling.py; unreachable servers:
tests/test_cli_failures.py.)"""
from __future__ import annotations

import base64
import json
import time

import pytest

from tests.helpers.envtest import wait_for
from tests.helpers.program import fresh, run_program
from tests.helpers.status_command import status


@pytest.fixture(scope="module")
def namespace_up(simulated_cluster):
    from kubernetes import client

    from tests.helpers.pulumi_up import discard, pulumi_up

    sim = simulated_cluster
    config = fresh("local")
    cluster = config["raykube:rayClusters"][0]
    namespace = cluster["namespace"]
    config["raykube:rayJobs"] = [{"name": "smoke", "namespace": namespace, "cluster": cluster["name"], "entrypoint": "python -c 'print(1)'"}]
    run = run_program(config, "local")
    deployed = pulumi_up(sim, run)
    try:
        rayjobs = sim.dynamic.resources.get(api_version="ray.io/v1", kind="RayJob")
        wait_for(lambda: (rayjobs.get(name="smoke", namespace=namespace).to_dict().get("status") or {}).get("jobDeploymentStatus"), 60,
                 "the operator to take the RayJob")
        apps = client.AppsV1Api(sim.api_client)
        wait_for(lambda: (apps.read_namespaced_deployment("kuberay-operator", namespace).status.ready_replicas or 0) == 1, 60,
                 "the operator's Deployment (as its chart makes it) to be ready")
        yield {"sim": sim, "config": config, "namespace": namespace, "deployed": deployed}
    finally:
        discard(sim, run)


def test_the_operator_dashboard_charts_what_the_real_operator_exports(namespace_up, tmp_path):
    """Prometheus scrapes the namespace's real operator with the ServiceMonitor's endpoint (the
    operator runs out of cluster here: its address stands in for the Service's endpoint)."""
    from raykube.operator_dashboard import PANELS
    from tests.helpers.prometheus import HostPrometheus, grafana_expression, metric_names, service_monitor_job
    from tests.helpers.upstream import upstream_path

    sim, namespace = namespace_up["sim"], namespace_up["namespace"]
    (monitor,) = [obj for obj in namespace_up["deployed"].of_kind("ServiceMonitor") if obj["metadata"]["namespace"] == namespace]
    service = sim.core.read_namespaced_service("kuberay-operator", namespace).to_dict()
    service = {"metadata": {"namespace": namespace, "name": service["metadata"]["name"], "labels": service["metadata"]["labels"]},
               "spec": {"ports": service["spec"]["ports"]}}
    job = service_monitor_job(monitor, sim.operator_metrics_address(namespace), service, scrape_interval="1s")
    prometheus = HostPrometheus(tmp_path, [job])
    try:
        expressions = [grafana_expression(expr) for _, _, targets in PANELS for expr, _ in targets]
        wait_for(lambda: prometheus.get("/api/v1/query", query="kuberay_job_info").get("data", {}).get("result"), 30,
                 "Prometheus to scrape the operator")
        time.sleep(3)  # rates need two scrapes
        (target,) = prometheus.get("/api/v1/targets")["data"]["activeTargets"]
        assert target["health"] == "up", target["lastError"]
        answers = {expr: prometheus.get("/api/v1/query", query=expr) for expr in expressions}
        exported = set(prometheus.get("/api/v1/label/__name__/values")["data"])
    finally:
        prometheus.close()
    assert {expr: answer.get("error") for expr, answer in answers.items() if answer["status"] != "success"} == {}
    charted = set().union(*(metric_names(expr) for expr in expressions))
    # Only at a RayJob's end (this one stays running: its head is a simulated pod).
    assert charted - exported == {"kuberay_job_execution_duration_seconds"}
    empty = [expr for expr, answer in answers.items() if not answer["data"]["result"] and "execution_duration" not in expr
             and "errors_total" not in expr and 'condition="false"' not in expr]
    assert empty == [], f"panels without data for a ready cluster and a running RayJob: {empty}"
    # Everything KubeRay's own operator dashboard charts from the operator, this one does too
    # (kube_pod_* come from kube-state-metrics, not the operator).
    upstream = json.loads(upstream_path("kuberay/config/grafana/KubeRay-Operator.json").read_text())
    theirs = {name for panel in upstream["panels"] for target in panel.get("targets") or ()
              for name in metric_names(grafana_expression(target.get("expr", "")))}
    assert {name for name in theirs if not name.startswith("kube_")} - charted == set()


def test_status_shows_each_namespaces_operator_credentials_and_jobs_and_fails_on_what_is_broken(namespace_up, tmp_path):
    from kubernetes import client

    from components.credentials_secret import CREDENTIALS_KEY, EXPIRES_ANNOTATION

    sim, config, namespace = namespace_up["sim"], namespace_up["config"], namespace_up["namespace"]
    code, out, err = status(sim, config, tmp_path)
    print("\n" + out)
    assert code == 0, out + err
    assert f"namespace {namespace}" in out
    assert "operator     1/1 ready  (quay.io/kuberay/operator:v1.7.0)" in out
    assert "AWS access   secret: expires 2099-01-01T00:00:00+00:00" in out  # the Secret `pulumi up` wrote
    assert "RayJob smoke" in out
    code, out, _ = status(sim, config, tmp_path, "--output", "json")
    (entry,) = json.loads(out)["namespaces"]
    assert entry["operator"]["ready"] and entry["credentials"]["mode"] == "secret"
    assert [job["name"] for job in entry["jobs"]] == ["smoke"] and entry["jobs"][0]["deploymentStatus"] != "New"

    # Day 2: the credentials ran out (nobody renewed them) and the operator's Deployment is scaled away.
    core, apps = client.CoreV1Api(sim.api_client), client.AppsV1Api(sim.api_client)
    secret = core.read_namespaced_secret("aws-credentials", namespace)
    credentials = json.loads(base64.b64decode(secret.data[CREDENTIALS_KEY]))
    credentials["Expiration"] = "2026-01-01T00:00:00+00:00"
    core.patch_namespaced_secret("aws-credentials", namespace, {
        "metadata": {"annotations": {EXPIRES_ANNOTATION: credentials["Expiration"]}},
        "data": {CREDENTIALS_KEY: base64.b64encode(json.dumps(credentials).encode()).decode()}})
    apps.patch_namespaced_deployment_scale("kuberay-operator", namespace, {"spec": {"replicas": 0}})
    wait_for(lambda: not sim.pods(namespace, "app.kubernetes.io/name=kuberay-operator"), 60, "the operator's pod to go")
    code, out, err = status(sim, config, tmp_path)
    print("\n" + out)
    assert code == 1, out + err
    assert "AWS access   secret: EXPIRED at 2026-01-01T00:00:00+00:00" in out
    assert "! AWS credentials in Secret aws-credentials expired: Ray jobs cannot reach S3; run `raykube credentials renew`" in out
    assert "operator     0/0 ready" in out and "! KubeRay operator 0/0 ready" in out
