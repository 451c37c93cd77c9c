"""The pods of a Ray namespace as the NetworkPolicy model sees them, and the flows they need.

Pods come from a run's objects the way KubeRay and Kubernetes label them
(KubeRay's labelPod: the template's labels, then ray.io/is-ray-node,
ray.io/cluster, ray.io/node-type, ray.io/group, which a template cannot
override), or, under the real operator, from the live Pods themselves.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

from tests.helpers.network_policy_model import Cluster, Endpoint
from tests.helpers.ray_ports import head_service_ports, needed_flows

# The KubeRay chart's operator pod labels (release kuberay-operator); kube-dns's.
OPERATOR_LABELS = {"app.kubernetes.io/name": "kuberay-operator", "app.kubernetes.io/instance": "kuberay-operator",
                   "app.kubernetes.io/component": "kuberay-operator"}
DNS = Endpoint("coredns", "kube-system", {"k8s-app": "kube-dns"}, "10.244.9.9")
OUTSIDER = Endpoint("someone-else", "other-team", {"app": "notebook"}, "10.244.8.8")
INTERNET = Endpoint("s3", None, {}, "52.216.1.1")


def kuberay_labels(template: Mapping[str, Any], cluster: str, node_type: str, group: str) -> dict[str, str]:
    labels = {"ray.io/is-ray-node": "yes", **((template.get("metadata") or {}).get("labels") or {})}
    labels.update({"ray.io/cluster": cluster, "ray.io/node-type": node_type, "ray.io/group": group,
                   "app.kubernetes.io/name": "kuberay", "app.kubernetes.io/created-by": "kuberay-operator"})
    return labels


def pods_of(objects: Iterable[Mapping[str, Any]], namespace: str) -> dict[str, list[Endpoint]]:
    """{role: pods} of one namespace's RayClusters, RayJob and RayService clusters and HPA pools."""
    roles: dict[str, list[Endpoint]] = {"head": [], "worker": [], "autoscaled-head": []}
    for obj in objects:
        if obj["metadata"].get("namespace") != namespace:
            continue
        if obj["kind"] in ("RayCluster", "RayJob", "RayService"):
            spec = {"RayCluster": obj["spec"], "RayJob": obj["spec"].get("rayClusterSpec"), "RayService": obj["spec"].get("rayClusterConfig")}[obj["kind"]]
            if spec is None:
                continue
            # A RayJob's and a RayService's cluster: <name>-<5 random characters>.
            name = obj["metadata"]["name"] if obj["kind"] == "RayCluster" else f"{obj['metadata']['name']}-abc12"
            head = Endpoint(f"{name}-head", namespace, kuberay_labels(spec["headGroupSpec"]["template"], name, "head", "headgroup"))
            roles["head"].append(head)
            if spec.get("enableInTreeAutoscaling"):
                roles["autoscaled-head"].append(head)
            for group in spec.get("workerGroupSpecs") or ():
                roles["worker"].append(Endpoint(f"{name}-{group['groupName']}", namespace,
                                                kuberay_labels(group["template"], name, "worker", group["groupName"])))
        elif obj["kind"] == "Deployment":
            roles["worker"].append(Endpoint(obj["metadata"]["name"], namespace, dict(obj["spec"]["template"]["metadata"]["labels"])))
    return roles


def blocked_flows(model: Cluster, heads: list[Endpoint], workers: list[Endpoint], clients: list[Endpoint]) -> list[str]:
    """Every flow Ray needs (ray_ports) between these pods that the policies refuse."""
    by_role = {"head": heads, "worker": workers, "client": clients}
    refused = []
    for flow in needed_flows():
        for source in by_role[flow.source]:
            for destination in by_role[flow.destination]:
                if source is not destination and not model.connects(source, destination, flow.port):
                    refused.append(f"{source.name} -> {destination.name}:{flow.port} ({flow.why})")
    return refused


def outsider_reaches(model: Cluster, heads: list[Endpoint], outsider: Endpoint = OUTSIDER) -> list[str]:
    """The head ports a pod of another namespace reaches (should be none)."""
    return [f"{outsider.namespace}/{outsider.name} -> {head.name}:{port} ({what})"
            for head in heads for what, port in head_service_ports().items() if model.connects(outsider, head, port)]
