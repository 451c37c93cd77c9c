"""What each target (local kubeadm, EKS, AKS, GKE) creates, in one place.

The composition asks the profile, never the target's name, whether to create
a component, so adding a target means adding a profile here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TargetName = Literal["local", "eks", "aks", "gke"]


@dataclass(frozen=True)
class TargetProfile:
    name: str
    title: str
    # Write a `kubeadm init --config` file (we build the control plane).
    kubeadm_config: bool
    # Install Flannel as the pod network (managed clouds bring their own CNI).
    flannel: bool
    # Install metrics-server (AKS and GKE already run one).
    metrics_server: bool
    # kubeadm's kubelets serve self-signed certificates unless serverTLSBootstrap
    # is set up; managed clouds' kubelets have signed ones.
    kubelet_insecure_tls: bool
    # How Ray pods can get AWS credentials on this target.
    aws_access_modes: tuple[str, ...]


TARGETS: dict[str, TargetProfile] = {
    # local: webIdentity through the issuer raykube publishes (awsAccess.issuerBucket).
    "local": TargetProfile("local", "local kubeadm", True, True, True, True, ("none", "secret", "webIdentity")),
    "eks": TargetProfile("eks", "EKS", False, False, True, False, ("none", "secret", "irsa", "webIdentity", "podIdentity")),
    "aks": TargetProfile("aks", "AKS", False, False, False, False, ("none", "secret", "webIdentity")),
    "gke": TargetProfile("gke", "GKE", False, False, False, False, ("none", "secret", "webIdentity")),
}
