"""GrafanaDashboards: Grafana dashboards as ConfigMaps that Grafana's dashboard sidecar loads.

One ConfigMap per dashboard (`<prefix>-<name>`, the JSON under `<name>.json`),
labelled so the sidecar (kube-prometheus-stack's: `grafana_dashboard: "1"`,
searching every namespace) finds it. One ConfigMap each keeps every one far
below the 1 MiB object limit and makes a changed dashboard a one-object diff.
"""

import json
import re
from typing import Any, Mapping, Optional, Required, Sequence, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.args import ComponentArgsError, check_args, component_label
from components.kube_prometheus_stack import DASHBOARD_LABEL

# A ConfigMap holds at most 1 MiB in all.
CONFIGMAP_LIMIT_BYTES = 1024 * 1024
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class GrafanaDashboardsArgs(TypedDict, total=False):
    """Arguments of GrafanaDashboards."""

    namespace: Required[str]
    """Namespace of the ConfigMaps (required; with kube-prometheus-stack, any: its sidecar searches all)."""
    dashboards: Required[Mapping[str, str]]
    """{name: dashboard JSON}; names are DNS labels, e.g. ray-default (required)."""
    labels: Mapping[str, str]
    """Labels the Grafana sidecar selects (default {grafana_dashboard: "1"})."""
    name_prefix: str
    """Prefix of the ConfigMaps' names (default "raykube")."""


def dashboard_config_maps(args: Mapping[str, Any], component: str = "GrafanaDashboards") -> list[dict[str, Any]]:
    """The ConfigMaps (API field names), in name order."""
    labels = dict(args.get("labels") or dict([DASHBOARD_LABEL]))
    prefix = args.get("name_prefix") or "raykube"
    maps = []
    for name, content in sorted(dict(args["dashboards"]).items()):
        if not NAME.match(name):
            raise ComponentArgsError(component, f"dashboards.{name}", "a dashboard's name must be a DNS label (lowercase letters, digits, '-')")
        try:
            json.loads(content)
        except (TypeError, ValueError) as error:
            raise ComponentArgsError(component, f"dashboards.{name}", f"is not dashboard JSON ({error})") from None
        if len(content.encode()) > CONFIGMAP_LIMIT_BYTES - 4096:
            raise ComponentArgsError(component, f"dashboards.{name}", "is larger than a ConfigMap can hold (1 MiB)")
        maps.append({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{prefix}-{name}", "namespace": args["namespace"], "labels": {**labels, "app.kubernetes.io/managed-by": "raykube"}},
            "data": {f"{name}.json": content},
        })
    return maps


class GrafanaDashboards(pulumi.ComponentResource):
    """Grafana dashboards, one labelled ConfigMap each, for Grafana's dashboard sidecar."""

    config_map_names: pulumi.Output[Sequence[str]]
    """Names of the ConfigMaps."""

    def __init__(self, name: str, args: GrafanaDashboardsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        label = component_label("GrafanaDashboards", name)
        check_args(label, GrafanaDashboardsArgs, args)
        manifests = dashboard_config_maps(args, label)
        super().__init__("raykube:index:GrafanaDashboards", name, None, opts)
        self.config_maps = [
            k8s.core.v1.ConfigMap(
                f"{name}-{manifest['metadata']['name']}",
                metadata=manifest["metadata"],
                data=manifest["data"],
                opts=pulumi.ResourceOptions(parent=self),
            )
            for manifest in manifests
        ]
        self.config_map_names = pulumi.Output.from_input([manifest["metadata"]["name"] for manifest in manifests])
        self.register_outputs({"config_map_names": self.config_map_names})
