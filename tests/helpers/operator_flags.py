"""The KubeRay operator's command line and environment as the kuberay-operator
chart (v1.7.0, templates/deployment.yaml) makes them from its values.

The program hands the chart values; `pulumi up` has Helm render them into the
operator Deployment's args. Here the values are merged over the chart's own
values.yaml (from ../shared/upstream) the way Helm merges them, then turned
into the flags the chart's template writes, so the test operator runs exactly
as the real one would.
"""
from __future__ import annotations

import copy
from typing import Any, Mapping

from tests.helpers.upstream import KUBERAY_OPERATOR_VALUES, load_upstream


def helm_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of user values over chart values: maps merge, lists and scalars replace, null deletes."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def chart_values(program_values: Mapping[str, Any]) -> dict[str, Any]:
    return helm_merge(load_upstream(KUBERAY_OPERATOR_VALUES), program_values)


def _go_bool(value: Any) -> str:
    return "true" if value else "false"


def operator_command_line(program_values: Mapping[str, Any], release_namespace: str) -> tuple[list[str], dict[str, str]]:
    """(flags, environment) of the operator container for these chart values."""
    values = chart_values(program_values)
    if (values.get("configuration") or {}).get("enabled"):
        raise AssertionError("configuration.enabled moves the flags into a ConfigMap; the harness does not model it")
    flags: list[str] = []
    scheduler = values.get("batchScheduler") or {}
    if scheduler.get("enabled"):
        flags.append("--enable-batch-scheduler")
    if scheduler.get("name"):
        flags.append(f"--batch-scheduler={scheduler['name']}")
    watch = values.get("watchNamespace")
    if values.get("singleNamespaceInstall") and not watch:
        flags.append(f"--watch-namespace={release_namespace}")
    elif watch:
        flags.append(f"--watch-namespace={','.join(watch)}")
    # logging.baseDir/fileName name a path inside the operator's container: out of
    # cluster the harness logs to DIR/kuberay-operator-<ns>.log instead.
    logging = values.get("logging") or {}
    for key, flag in (("stdoutEncoder", "--log-stdout-encoder"), ("fileEncoder", "--log-file-encoder")):
        if logging.get(key):
            flags.append(f"{flag}={logging[key]}")
    if "useKubernetesProxy" in values:
        flags.append(f"--use-kubernetes-proxy={_go_bool(values['useKubernetesProxy'])}")
    # leaderElectionEnabled: the harness runs the operator out of cluster, where
    # controller-runtime has no namespace for the lease; it passes
    # --enable-leader-election=false itself, and one operator per namespace
    # needs no election.
    metrics = values.get("metrics") or {}
    if "enabled" in metrics:
        flags.append(f"--enable-metrics={_go_bool(metrics['enabled'])}")
    if "reconcileConcurrency" in values:
        flags.append(f"--reconcile-concurrency={values['reconcileConcurrency']}")
    client = values.get("kubeClient") or {}
    if "qps" in client:
        flags.append(f"--qps={client['qps']}")
    if "burst" in client:
        flags.append(f"--burst={client['burst']}")
    gates = values.get("featureGates") or []
    if gates:
        flags.append("--feature-gates=" + ",".join(f"{gate['name']}={_go_bool(gate['enabled'])}" for gate in gates))
    environment = {item["name"]: str(item["value"]) for item in values.get("env") or [] if "value" in item}
    return flags, environment


def chart_workload(program_values: Mapping[str, Any], release_namespace: str) -> list[dict[str, Any]]:
    """The Deployment and Service the chart makes (templates/deployment.yaml, service.yaml: release
    "kuberay-operator", its fullname), as objects for the API server. The operator itself runs out
    of cluster; kwok runs this Deployment's Pod, so what reads the Deployment and the Service
    (raykube status, the ServiceMonitor) sees what it would see on a real cluster."""
    values = chart_values(program_values)
    labels = {"app.kubernetes.io/name": "kuberay-operator", "app.kubernetes.io/instance": "kuberay-operator"}
    image = values.get("image") or {}
    container = {
        "name": "kuberay-operator",
        "image": f"{image.get('repository')}:{image.get('tag')}",
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "resources": values.get("resources") or {},
    }
    pod = {"containers": [container], "nodeSelector": values.get("nodeSelector") or {}, "tolerations": values.get("tolerations") or []}
    metadata = {"name": "kuberay-operator", "namespace": release_namespace, "labels": dict(labels)}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata,
         "spec": {"replicas": 1, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": dict(labels)},
                  "template": {"metadata": {"labels": dict(labels)}, "spec": pod}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": metadata,
         "spec": {"type": "ClusterIP", "selector": dict(labels), "ports": [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]}},
    ]
