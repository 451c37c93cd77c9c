"""The Kubernetes cluster around Ray: networks and kubeadm (local), HPA behaviour, metrics-server."""
from __future__ import annotations

import ipaddress
from typing import Literal, Optional

from pydantic import Field, ValidationInfo, field_validator
from components import defaults

from components.kubernetes_names import subdomain_problem
from raykube.settings.model import Model


class NetworkSettings(Model):
    """Pod and Service networks (local target: kubeadm and Flannel read them)."""

    pod_cidr: str = Field(default="10.244.0.0/16", description="pod network: kubeadm podSubnet and Flannel podCidr")
    service_cidr: str = Field(default="10.96.0.0/12", description="Service network: kubeadm serviceSubnet")
    flannel_backend: Literal["vxlan", "host-gw", "wireguard", "udp"] = Field(default="vxlan", description="Flannel backend")

    @field_validator("pod_cidr", "service_cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError as error:
            raise ValueError(f"{value!r} is not a valid CIDR ({error})") from None
        if network.version != 4:
            raise ValueError(f"{value!r}: only IPv4 networks are supported")
        return value

    @field_validator("service_cidr")
    @classmethod
    def _no_overlap(cls, service: str, info: ValidationInfo) -> str:
        pod = info.data.get("pod_cidr")
        if pod and ipaddress.ip_network(pod).overlaps(ipaddress.ip_network(service)):
            raise ValueError(f"{service} overlaps podCidr {pod}")
        return service


class KubeadmSettings(Model):
    """The `kubeadm init --config` file (local target)."""

    config_path: str = Field(default="kubeadm-config.yaml", description="where `pulumi up` writes the file")
    cri_socket: str = Field(default="unix:///var/run/containerd/containerd.sock", description="container runtime socket")
    advertise_address: Optional[str] = Field(default=None, description="API server address; default: kubeadm's choice")
    node_name: Optional[str] = Field(default=None, description="node name; default: the host name")

    @field_validator("node_name")
    @classmethod
    def _node_name(cls, name: Optional[str]) -> Optional[str]:
        problem = subdomain_problem(name) if name is not None else None
        if problem:
            raise ValueError(f"{problem}: a node's name")
        return name

    @field_validator("advertise_address")
    @classmethod
    def _address(cls, value: Optional[str]) -> Optional[str]:
        if value is not None:
            ipaddress.ip_address(value)
        return value


class AutoscalingSettings(Model):
    """How the Kubernetes HPA reacts: one value feeds kubeadm and every HPA."""

    scale_down_stabilization_seconds: int = Field(
        default=defaults.HPA_SCALE_DOWN_STABILIZATION_SECONDS, ge=0, le=3600, description="HPA scale-down window (controller default is 300)"
    )
    sync_period_seconds: int = Field(default=15, ge=1, le=300, description="HPA controller sync period (kubeadm)")


class MetricsSettings(Model):
    """metrics-server (local and EKS targets)."""

    resolution_seconds: int = Field(default=15, ge=10, le=300, description="--metric-resolution")
    kubelet_request_timeout_seconds: Optional[int] = Field(
        default=None, ge=1, le=60,
        description="--kubelet-request-timeout; default 10, or 0.9 x resolutionSeconds rounded down if that is less",
    )
    kubelet_insecure_tls: Optional[bool] = Field(
        default=None, description="--kubelet-insecure-tls; default: on for local kubeadm, off elsewhere"
    )

    @field_validator("kubelet_request_timeout_seconds")
    @classmethod
    def _timeout_fits(cls, timeout: Optional[int], info: ValidationInfo) -> Optional[int]:
        resolution = info.data.get("resolution_seconds")
        # metrics-server refuses to start unless 0.9 * resolution >= timeout.
        if timeout is not None and resolution is not None and 0.9 * resolution < timeout:
            raise ValueError(f"{timeout}s exceeds 0.9 x resolutionSeconds ({0.9 * resolution:g}s)")
        return timeout

    @property
    def effective_kubelet_request_timeout_seconds(self) -> int:
        if self.kubelet_request_timeout_seconds is not None:
            return self.kubelet_request_timeout_seconds
        return min(10, int(0.9 * self.resolution_seconds))
