"""Kubernetes NetworkPolicy semantics, as data: may pod A open a connection to pod B on a port?

The rules of the networking.k8s.io/v1 API (what every enforcing plugin
implements): a pod selected by a policy with policyType Ingress (Egress)
accepts (opens) only what some selecting policy's rule allows; a pod no
policy selects is open; a connection needs both the sender's egress and the
receiver's ingress. A rule matches when one of its peers matches (an empty
peer list matches everyone) and one of its ports does (no ports: every port).
podSelector alone means the policy's namespace; namespaceSelector alone,
every pod of the selected namespaces; both, those pods of those namespaces.
ipBlock matches by IP (and, for pods, the pod IP).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional


@dataclass(frozen=True)
class Endpoint:
    """A pod (namespace and labels) or, with no namespace, an address outside the pod network."""

    name: str
    namespace: Optional[str]
    labels: Mapping[str, str] = field(default_factory=dict)
    ip: str = "10.244.0.1"


def selects(selector: Optional[Mapping[str, Any]], labels: Mapping[str, str]) -> bool:
    """A LabelSelector: matchLabels and matchExpressions; {} selects everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or ():
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


class Cluster:
    """Namespaces (with their labels, as the API server sets kubernetes.io/metadata.name) and policies."""

    def __init__(self, policies: Iterable[Mapping[str, Any]], namespaces: Iterable[str]):
        self.policies = [policy for policy in policies if policy.get("kind") == "NetworkPolicy"]
        self.namespace_labels = {name: {"kubernetes.io/metadata.name": name} for name in namespaces}
        for policy in self.policies:
            self.namespace_labels.setdefault(policy["metadata"]["namespace"], {"kubernetes.io/metadata.name": policy["metadata"]["namespace"]})

    def _selecting(self, pod: Endpoint, kind: str) -> list[Mapping[str, Any]]:
        if pod.namespace is None:
            return []
        return [
            policy for policy in self.policies
            if policy["metadata"]["namespace"] == pod.namespace
            and kind in policy["spec"].get("policyTypes", ["Ingress"])
            and selects(policy["spec"].get("podSelector") or {}, pod.labels)
        ]

    def _peer_matches(self, peer: Mapping[str, Any], policy_namespace: str, other: Endpoint) -> bool:
        if "ipBlock" in peer:
            block = peer["ipBlock"]
            address = ipaddress.ip_address(other.ip)
            return address in ipaddress.ip_network(block["cidr"]) and not any(address in ipaddress.ip_network(cidr) for cidr in block.get("except") or ())
        if other.namespace is None:
            return False
        if "namespaceSelector" in peer:
            if not selects(peer["namespaceSelector"], self.namespace_labels.get(other.namespace, {})):
                return False
        elif other.namespace != policy_namespace:
            return False
        return selects(peer.get("podSelector", {}), other.labels)

    @staticmethod
    def _port_matches(ports: Optional[list], port: int, protocol: str) -> bool:
        if not ports:
            return True
        for item in ports:
            if item.get("protocol", "TCP") != protocol:
                continue
            if "port" not in item:
                return True
            low = item["port"]
            if isinstance(low, str):
                continue  # named ports: raykube's policies use numbers
            if low <= port <= item.get("endPort", low):
                return True
        return False

    def _allowed(self, pod: Endpoint, other: Endpoint, port: int, protocol: str, kind: str) -> bool:
        policies = self._selecting(pod, kind)
        if not policies:
            return True
        rules_key, peers_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
        for policy in policies:
            for rule in policy["spec"].get(rules_key) or ():
                peers = rule.get(peers_key)
                if peers and not any(self._peer_matches(peer, policy["metadata"]["namespace"], other) for peer in peers):
                    continue
                if self._port_matches(rule.get("ports"), port, protocol):
                    return True
        return False

    def connects(self, source: Endpoint, destination: Endpoint, port: int, protocol: str = "TCP") -> bool:
        return self._allowed(source, destination, port, protocol, "Egress") and self._allowed(destination, source, port, protocol, "Ingress")
