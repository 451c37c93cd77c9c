"""NetworkPolicies of the Ray namespaces: on by default; who may reach the heads, metrics, egress."""
from __future__ import annotations

import ipaddress
from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from raykube.settings.model import DNS1123, Model
from raykube.settings.pods import check_labels


def namespace_name(namespace: Optional[str]) -> Optional[str]:
    if namespace is not None and not DNS1123.match(namespace):
        raise ValueError(f"{namespace!r} is not a namespace name (a DNS-1123 label)")
    return namespace


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as error:
        raise ValueError(f"{value!r} is not a CIDR block such as 10.0.0.0/8 ({error})") from None


class NetworkPeer(Model):
    """Pods (by namespace and labels) or an IP block. Nothing set: the Ray namespace's own pods."""

    namespace: Optional[str] = Field(default=None, description="a namespace by name; default the Ray namespace")
    pod_labels: dict[str, str] = Field(default_factory=dict, description="only pods with these labels; default every pod")
    cidr: Optional[str] = Field(default=None, description="an IP block instead of pods, e.g. 10.0.0.0/8")
    except_cidrs: list[str] = Field(default_factory=list, description="parts of cidr left out")

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, namespace: Optional[str]) -> Optional[str]:
        return namespace_name(namespace)

    @field_validator("pod_labels")
    @classmethod
    def _pod_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        return check_labels(labels)

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, cidr: Optional[str]) -> Optional[str]:
        return None if cidr is None else _cidr(cidr)

    @field_validator("except_cidrs")
    @classmethod
    def _except(cls, cidrs: list[str]) -> list[str]:
        return [_cidr(cidr) for cidr in cidrs]

    @model_validator(mode="after")
    def _pods_or_block(self) -> "NetworkPeer":
        if self.cidr and (self.namespace or self.pod_labels):
            raise ValueError("a peer is pods (namespace, podLabels) or an IP block (cidr), not both")
        if self.except_cidrs and not self.cidr:
            raise ValueError("__exceptCidrs__ needs a cidr")
        return self

    def as_args(self) -> dict[str, Any]:
        return self.model_dump(exclude_defaults=True)


class NetworkPolicySettings(Model):
    """NetworkPolicies in every Ray namespace (docs/security.md)."""

    enabled: bool = Field(default=True, description="deny by default, allow what Ray needs")
    head_access_from: Optional[list[NetworkPeer]] = Field(
        default=None,
        description="who reaches the heads' dashboard/Jobs API and Ray Client ports; default the Ray namespace's own pods, "
        "plus ingressControllerNamespace where a dashboardIngress is on",
    )
    serve_access_from: Optional[list[NetworkPeer]] = Field(
        default=None,
        description="who reaches the rayServices' Serve port (8000, head and workers); default the Ray namespace's own pods, "
        "plus ingressControllerNamespace where a serveIngress is on; the KubeRay operator always (its health checks)",
    )
    ingress_controller_namespace: Optional[str] = Field(
        default=None,
        description="namespace of the Ingress controller that serves dashboardIngress; default by its class: "
        "app-routing-system for AKS's webapprouting.kubernetes.azure.com, else ingress-nginx",
    )
    metrics_from: list[NetworkPeer] = Field(default_factory=list, description="who scrapes Ray's and the operator's metrics (e.g. Prometheus's namespace)")
    api_server_cidrs: Optional[list[str]] = Field(
        default=None,
        description="the API server as pods reach it; default local: kubeadm.advertiseAddress and the kubernetes Service IP, else 0.0.0.0/0",
    )
    api_server_ports: list[int] = Field(default_factory=lambda: [443, 6443], description="the API server's ports (Service and endpoints)")
    https_egress: Optional[bool] = Field(
        default=None, description="Ray pods may open HTTPS connections; default on with awsAccess or a rayJob runtimeEnv that installs packages"
    )
    https_egress_cidrs: list[str] = Field(default_factory=lambda: ["0.0.0.0/0"], description="where that HTTPS may go")
    extra_egress: list[dict[str, Any]] = Field(default_factory=list, description="more egress rules for Ray pods (NetworkPolicyEgressRule objects)")
    head_egress: list[dict[str, Any]] = Field(
        default_factory=list,
        description="more egress rules for the heads alone, e.g. to the Prometheus and Grafana pods the dashboard embeds "
        "(observability.mode install adds those itself)",
    )
    dns: Optional[list[NetworkPeer]] = Field(default=None, description="the cluster DNS; default kube-system pods labelled k8s-app=kube-dns")
    enforcer: Literal["none", "kube-network-policies"] = Field(
        default="none", description="local only: install kube-network-policies, since Flannel does not enforce NetworkPolicies"
    )

    @field_validator("ingress_controller_namespace")
    @classmethod
    def _controller_namespace(cls, namespace: Optional[str]) -> Optional[str]:
        return namespace_name(namespace)

    @field_validator("api_server_cidrs", "https_egress_cidrs")
    @classmethod
    def _cidrs(cls, cidrs: Optional[list[str]]) -> Optional[list[str]]:
        if cidrs is not None and not cidrs:
            raise ValueError("needs at least one CIDR block (0.0.0.0/0 for anywhere)")
        return None if cidrs is None else [_cidr(cidr) for cidr in cidrs]

    @field_validator("api_server_ports")
    @classmethod
    def _ports(cls, ports: list[int]) -> list[int]:
        if not ports or any(not 1 <= port <= 65535 for port in ports):
            raise ValueError(f"needs TCP ports between 1 and 65535, got {ports}")
        return ports
