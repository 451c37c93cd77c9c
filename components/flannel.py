"""Flannel: the pod network of the local kubeadm cluster (official chart)."""

from typing import Any, Mapping, Optional, Required, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.merge import deep_merge
from components.pinned_chart import check_chart_source, check_image_registry, pinned_chart
from components.sources import ChartSourceArgs, mirrored_image
from components.versions import FLANNEL_CHART, FLANNEL_CNI_IMAGE, FLANNEL_HELM_REPOSITORY, FLANNEL_IMAGE, FLANNEL_NETPOL_IMAGE, FLANNEL_VERSION
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
    source: ChartSourceArgs
    """where the chart comes from: a folder, .tgz, oci:// reference or mirror repository (default the upstream repository)."""
    image_registry: str
    """registry prefix every image of the chart is pulled from, e.g. registry.example.com/mirror (default unset: upstream registries)."""
    values: Mapping[str, Any]
    """any other chart value, merged last (default {})."""


def flannel_image_values(registry: Optional[str]) -> dict[str, Any]:
    """The chart's image repositories from `registry` ({} without one: the chart's own)."""
    if not registry:
        return {}
    return {
        "flannel": {
            "image": {"repository": mirrored_image(FLANNEL_IMAGE, registry)},
            "flannel_cni": {"image": {"repository": mirrored_image(FLANNEL_CNI_IMAGE, registry)}},
        },
        "netpol": {"image": {"repository": mirrored_image(FLANNEL_NETPOL_IMAGE, registry)}},
    }


class Flannel(pulumi.ComponentResource):
    """Namespace kube-flannel (Pod Security "privileged": flannel runs on the host network) and the chart."""

    namespace: pulumi.Output[str]
    """Namespace Flannel runs in."""

    def __init__(self, name: str, args: FlannelArgs, opts: Optional[pulumi.ResourceOptions] = None):
        label = component_label("Flannel", name)
        check_args(label, FlannelArgs, args)
        registry = args.get("image_registry")
        check_image_registry(label, registry)
        version = args.get("version") or FLANNEL_VERSION
        check_chart_source(label, args.get("source"), FLANNEL_CHART, version)
        super().__init__("raykube:index:Flannel", name, None, opts)
        self.namespace_resource = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "privileged"}},
            opts=pulumi.ResourceOptions(parent=self),
        )
        values = deep_merge(
            deep_merge({"podCidr": args["pod_cidr"], "flannel": {"backend": args.get("backend") or "vxlan"}}, flannel_image_values(registry)),
            args.get("values") or {},
        )
        self.chart = pinned_chart(
            f"{name}-chart",
            chart=FLANNEL_CHART,
            version=version,
            repository=FLANNEL_HELM_REPOSITORY,
            namespace=NAMESPACE,
            release="flannel",
            values=values,
            source=args.get("source"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.namespace_resource]),
        )
        self.namespace = pulumi.Output.from_input(NAMESPACE)
        self.register_outputs({"namespace": self.namespace})
