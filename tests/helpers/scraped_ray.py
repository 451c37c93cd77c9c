"""The session's Ray head plus one HPA-pool worker of the local stack, scraped by a real Prometheus
(in the sandbox's network) with scrape jobs made from the stack's own PodMonitors, its rules the
stack's PrometheusRule. Used by tests/test_observability.py and docs/screenshot.py."""
from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tests.helpers.program import DEPLOYMENT, RAYCLUSTER
from tests.helpers.prometheus import pod_monitor_jobs, prometheus_binary, prometheus_config, rule_file
from tests.helpers.ray_ports import SANDBOX_HEAD_METRICS_PORT, SANDBOX_WORKER_METRICS_PORT

PROMETHEUS_IP = "127.0.0.9"
POOL_WORKER_IP = "127.0.0.6"
QUERY_SCRIPT = """
import json, sys, urllib.error, urllib.parse, urllib.request
base, path = sys.argv[1], sys.argv[2]
request = json.load(open(path))
def get(url):
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        return json.load(error)
answers = {"names": get(base + "/api/v1/label/__name__/values")["data"],
           "targets": get(base + "/api/v1/targets")["data"]["activeTargets"],
           "rules": get(base + "/api/v1/rules")["data"]["groups"], "queries": {}}
for expr in request:
    answers["queries"][expr] = get(base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
json.dump(answers, open(path, "w"))
"""


def objects(run, kind: str) -> list[dict[str, Any]]:
    return [copy.deepcopy(r.revealed_inputs) for r in run.kubernetes_objects() if r.inputs["kind"] == kind]


def named_ports(container: dict) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in container.get("ports") or () if port.get("name")}


class ScrapedRay:
    def __init__(self, sandbox, run, work: Path, scrape_interval: str = "2s", prometheus_args: tuple[str, ...] = ()):
        from tests.helpers.kubelet import container_env, expand, mount_secret_volumes, relocate
        from tests.helpers.ray_sandbox import OBJECT_STORE_BYTES, RAY

        self.sandbox, self.run, self.work = sandbox, run, work
        (cluster,) = [r.revealed_inputs for r in run.of_type(RAYCLUSTER)]
        (pool,) = [r.revealed_inputs for r in run.of_type(DEPLOYMENT)]
        head_template = cluster["spec"]["headGroupSpec"]["template"]
        head = head_template["spec"]["containers"][0]
        namespace, name = cluster["metadata"]["namespace"], cluster["metadata"]["name"]
        pool_pod = pool["spec"]["template"]
        worker = pool_pod["spec"]["containers"][0]
        # The pods as their controllers make them: the head with the operator's labels and its
        # `metrics` port; the pool's pod from its template. Port numbers: the sandbox's.
        pods = [
            {"name": f"{name}-head-x", "namespace": namespace, "ip": sandbox.head_ip,
             "labels": {**(head_template.get("metadata") or {}).get("labels", {}), "ray.io/node-type": "head", "ray.io/cluster": name},
             "containers": {head["name"]: {**named_ports(head), "metrics": SANDBOX_HEAD_METRICS_PORT}}},
            {"name": f"{pool['metadata']['name']}-x", "namespace": namespace, "ip": POOL_WORKER_IP,
             "labels": pool_pod["metadata"]["labels"], "containers": {worker["name"]: {**named_ports(worker), "metrics": SANDBOX_WORKER_METRICS_PORT}}},
        ]
        rules = work / "rules.yaml"
        rules.write_text(yaml.safe_dump(rule_file(objects(run, "PrometheusRule"))))
        config = work / "prometheus.yaml"
        config.write_text(yaml.safe_dump(prometheus_config(pod_monitor_jobs(objects(run, "PodMonitor"), pods, scrape_interval), [str(rules)])))
        check = sandbox.run([prometheus_binary("promtool"), "check", "config", str(config)])
        assert check.returncode == 0, check.stdout + check.stderr

        secrets = {(name, "auth_token"): sandbox.auth_token}
        env = relocate(container_env(worker, POOL_WORKER_IP, secrets), mount_secret_volumes(pool_pod["spec"], worker, secrets, work))
        env.update(RAY_AUTH_TOKEN="", RAY_GCS_ADDRESS=sandbox.gcs_address)
        exported = f"--metrics-export-port={named_ports(worker)['metrics']}"
        args = [expand(arg, env).replace(exported, f"--metrics-export-port={SANDBOX_WORKER_METRICS_PORT}") for arg in worker["args"]]
        self.worker = sandbox.spawn([RAY, *args, f"--object-store-memory={OBJECT_STORE_BYTES}"], "metrics-pool-worker", env=env)
        self.prometheus = sandbox.spawn([prometheus_binary(), f"--config.file={config}", f"--storage.tsdb.path={work / 'data'}",
                                         f"--web.listen-address={PROMETHEUS_IP}:9090", "--log.level=warn", *prometheus_args], "prometheus")
        nodes = {node["NodeManagerAddress"] for node in sandbox.wait_for_nodes(2)}
        assert POOL_WORKER_IP in nodes, sandbox.log("metrics-pool-worker")

    @property
    def url(self) -> str:
        return f"http://{PROMETHEUS_IP}:9090"

    def drive(self, code: str, timeout: float = 180) -> str:
        """A Ray driver's code, run against the cluster."""
        head = f"ray.init(address='{self.sandbox.gcs_address}', _node_ip_address='{self.sandbox.head_ip}', logging_level='ERROR')\n"
        return self.sandbox.python("import ray, time\n" + head + code, timeout=timeout)

    def ask(self, expressions: list[str]) -> dict:
        """Prometheus's metric names, targets, rules, and an instant query per expression."""
        path = self.work / f"ask-{time.monotonic_ns()}.json"
        path.write_text(json.dumps(expressions))
        self.sandbox.check([sys.executable, "-c", QUERY_SCRIPT, self.url, str(path)])
        return json.loads(path.read_text())

    def close(self) -> None:
        self.sandbox.signal(self.prometheus, 15)
        self.sandbox.wait(self.prometheus, timeout=30)
        self.sandbox.signal(self.worker, 15)
        self.sandbox.wait(self.worker, timeout=120)
