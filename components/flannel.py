"""Flannel: the pod network of the local kubeadm cluster (official chart)."""

from typing import Any, Mapping, Optional, Required, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.merge import deep_merge
from components.pinned_chart import pinned_chart
from components.versions import FLANNEL_CHART, FLANNEL_HELM_REPOSITORY, FLANNEL_VERSION
from components.args import check_args, component_label

NAMESPACE = "kube-flannel"


class FlannelArgs(TypedDict, total=False):
    """Arguments of Flannel."""

    pod_cidr: Required[pulumi.Input[str]]
    """the cluster's pod network, the same value as kubeadm's podSubnet (required)."""
    backend: pulumi.Input[str]
    """vxlan | host-gw | wireguard | udp (default vxlan)."""
    version: str
    """chart version (default components.versions.FLANNEL_VERSION)."""
    values: Mapping[str, Any]
    """any other chart value, merged last (default {})."""


class Flannel(pulumi.ComponentResource):
    """Namespace kube-flannel (Pod Security "privileged": flannel runs on the host network) and the chart."""

    namespace: pulumi.Output[str]
    """Namespace Flannel runs in."""

    def __init__(self, name: str, args: FlannelArgs, opts: Optional[pulumi.ResourceOptions] = None):
        check_args(component_label("Flannel", name), FlannelArgs, args)
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
