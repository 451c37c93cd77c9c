"""Flannel: the pod network of the local kubeadm cluster (official chart)."""
from __future__ import annotations

from typing import Any, Mapping, Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.merge import deep_merge
from components.pinned_chart import pinned_chart
from components.versions import FLANNEL_CHART, FLANNEL_HELM_REPOSITORY, FLANNEL_VERSION

NAMESPACE = "kube-flannel"


class FlannelArgs(TypedDict, total=False):
    """Arguments of Flannel.

    pod_cidr: the cluster's pod network, the same value as kubeadm's podSubnet (required).
    backend: vxlan | host-gw | wireguard | udp (default vxlan).
    version: chart version (default components.versions.FLANNEL_VERSION).
    values: any other chart value, merged last (default {}).
    """

    pod_cidr: pulumi.Input[str]
    backend: pulumi.Input[str]
    version: str
    values: Mapping[str, Any]


class Flannel(pulumi.ComponentResource):
    """Namespace kube-flannel (Pod Security "privileged": flannel runs on the host network) and the chart."""

    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: FlannelArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("raykube:index:Flannel", name, None, opts)
        self.namespace_resource = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "privileged"}},
            opts=pulumi.ResourceOptions(parent=self),
        )
        values = deep_merge(
            {"podCidr": args["pod_cidr"], "flannel": {"backend": args.get("backend") or "vxlan"}},
            args.get("values") or {},
        )
        self.chart = pinned_chart(
            f"{name}-chart",
            chart=FLANNEL_CHART,
            version=args.get("version") or FLANNEL_VERSION,
            repository=FLANNEL_HELM_REPOSITORY,
            namespace=NAMESPACE,
            release="flannel",
            values=values,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace_resource]),
        )
        self.namespace = pulumi.Output.from_input(NAMESPACE)
        self.register_outputs({"namespace": self.namespace})
