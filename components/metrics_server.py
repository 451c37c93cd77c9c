"""MetricsServer: the official metrics-server chart, the source of HPA CPU metrics."""

from typing import Any, Mapping, Optional, TypedDict

import pulumi

from components.merge import deep_merge
from components.pinned_chart import check_chart_source, check_image_registry, pinned_chart
from components.sources import ChartSourceArgs, mirrored_image
from components.versions import (
    METRICS_SERVER_ADDON_RESIZER_IMAGE, METRICS_SERVER_CHART, METRICS_SERVER_CHART_VERSION, METRICS_SERVER_HELM_REPOSITORY, METRICS_SERVER_IMAGE,
)
from components.args import ComponentArgsError, check_args, component_label


class MetricsServerArgs(TypedDict, total=False):
    """Arguments of MetricsServer."""

    resolution_seconds: int
    """--metric-resolution (default 15; metrics-server needs >= 10)."""
    kubelet_request_timeout_seconds: int
    """--kubelet-request-timeout (default 10; at most 0.9 x resolution)."""
    kubelet_insecure_tls: bool
    """--kubelet-insecure-tls, for kubelets with self-signed serving certificates (default False)."""
    namespace: str
    """(default kube-system)."""
    version: str
    """chart version (default components.versions.METRICS_SERVER_CHART_VERSION)."""
    source: ChartSourceArgs
    """where the chart comes from: a folder, .tgz, oci:// reference or mirror repository (default the upstream repository)."""
    image_registry: str
    """registry prefix the metrics-server image is pulled from, e.g. registry.example.com/mirror (default unset: upstream registries)."""
    values: Mapping[str, Any]
    """any other chart value, merged last (default {})."""


def metrics_server_args(args: MetricsServerArgs, component: str = "MetricsServer") -> list[str]:
    """The container's flags. They replace the chart's `defaultArgs`, whose
    --metric-resolution would otherwise come twice."""
    resolution = args.get("resolution_seconds", 15)
    timeout = args.get("kubelet_request_timeout_seconds", 10)
    if resolution < 10:
        raise ComponentArgsError(component, "resolution_seconds", f"{resolution}s is below metrics-server's minimum of 10s")
    if 0.9 * resolution < timeout:
        # metrics-server refuses to start otherwise.
        raise ComponentArgsError(component, "kubelet_request_timeout_seconds", f"{timeout}s exceeds 0.9 x resolution_seconds ({resolution}s)")
    flags = [
        "--cert-dir=/tmp",
        "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
        "--kubelet-use-node-status-port",
        f"--metric-resolution={resolution}s",
        f"--kubelet-request-timeout={timeout}s",
    ]
    if args.get("kubelet_insecure_tls"):
        flags.append("--kubelet-insecure-tls")
    return flags


class MetricsServer(pulumi.ComponentResource):
    """metrics-server from its official chart, scraping kubelets every `resolution_seconds` (seed 000: 15 s) for HPAs."""

    namespace: pulumi.Output[str]
    """Namespace metrics-server runs in."""

    def __init__(self, name: str, args: MetricsServerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        label = component_label("MetricsServer", name)
        check_args(label, MetricsServerArgs, args)
        args = args or {}
        flags = metrics_server_args(args, label)  # before anything is registered
        version = args.get("version") or METRICS_SERVER_CHART_VERSION
        check_chart_source(label, args.get("source"), METRICS_SERVER_CHART, version)
        check_image_registry(label, args.get("image_registry"))
        values: dict[str, Any] = {"defaultArgs": flags}
        if args.get("image_registry"):
            values["image"] = {"repository": mirrored_image(METRICS_SERVER_IMAGE, args["image_registry"])}
            values["addonResizer"] = {"image": {"repository": mirrored_image(METRICS_SERVER_ADDON_RESIZER_IMAGE, args["image_registry"])}}
        super().__init__("raykube:index:MetricsServer", name, None, opts)
        namespace = args.get("namespace") or "kube-system"
        self.chart = pinned_chart(
            f"{name}-chart",
            chart=METRICS_SERVER_CHART,
            version=version,
            repository=METRICS_SERVER_HELM_REPOSITORY,
            namespace=namespace,
            release="metrics-server",
            values=deep_merge(values, args.get("values") or {}),
            source=args.get("source"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.namespace = pulumi.Output.from_input(namespace)
        self.register_outputs({"namespace": self.namespace})
