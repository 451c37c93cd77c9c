"""HorizontalPodAutoscaler: an autoscaling/v2 HPA on CPU utilization with explicit behaviour."""

from typing import Any, Mapping, Optional, Required, TypedDict

import pulumi
import pulumi_kubernetes as k8s
from components.args import check_args, component_label
from components import defaults


class ScaleUpArgs(TypedDict, total=False):
    """stabilization_window_seconds (default 0), pods (default 4) or percent (default 100) per period_seconds (default 15)."""

    stabilization_window_seconds: int
    """Scale-up stabilization window (default 0)."""
    pods: int
    """At most this many pods added per period (default 4)."""
    percent: int
    """Or at most this percent of the current pods per period (default 100)."""
    period_seconds: int
    """The policies' period (default 15)."""


class HorizontalPodAutoscalerArgs(TypedDict, total=False):
    """Arguments of HorizontalPodAutoscaler."""

    namespace: Required[pulumi.Input[str]]
    """Namespace of the HPA and its target (required)."""
    name: Required[pulumi.Input[str]]
    """Name of the HPA (required)."""
    scale_target: Required[pulumi.Input[Mapping[str, str]]]
    """{apiVersion, kind, name} of a workload with a /scale subresource (required)."""
    min_replicas: pulumi.Input[int]
    """Fewest replicas (default 1)."""
    max_replicas: pulumi.Input[int]
    """Most replicas (default 4)."""
    target_cpu_utilization_percent: pulumi.Input[int]
    """average CPU relative to requests (default 50)."""
    scale_down_stabilization_seconds: pulumi.Input[int]
    """the HPA's own window (default 15). It overrides the controller-manager flag, so the same window holds on clouds whose flags cannot be changed."""
    scale_up: pulumi.Input[ScaleUpArgs]
    """ScaleUpArgs (default: 4 pods or 100% per 15 s, no stabilization)."""


def hpa_spec(args: Mapping[str, Any]) -> dict[str, Any]:
    scale_up = dict(args.get("scale_up") or {})
    period = scale_up.get("period_seconds", 15)
    return {
        "scaleTargetRef": dict(args["scale_target"]),
        "minReplicas": args.get("min_replicas", defaults.POOL_MIN_WORKERS),
        "maxReplicas": args.get("max_replicas", defaults.MAX_WORKERS),
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": args.get("target_cpu_utilization_percent", defaults.HPA_TARGET_CPU_PERCENT)},
                },
            }
        ],
        "behavior": {
            "scaleDown": {
                "stabilizationWindowSeconds": args.get("scale_down_stabilization_seconds", defaults.HPA_SCALE_DOWN_STABILIZATION_SECONDS),
                "selectPolicy": "Max",
                "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
            },
            "scaleUp": {
                "stabilizationWindowSeconds": scale_up.get("stabilization_window_seconds", 0),
                "selectPolicy": "Max",
                "policies": [
                    {"type": "Pods", "value": scale_up.get("pods", 4), "periodSeconds": period},
                    {"type": "Percent", "value": scale_up.get("percent", 100), "periodSeconds": period},
                ],
            },
        },
    }


class HorizontalPodAutoscaler(pulumi.ComponentResource):
    """An autoscaling/v2 HPA on CPU utilization whose scale-down window is its own (not the controller-manager's)."""

    hpa_name: pulumi.Output[str]
    """Name of the HorizontalPodAutoscaler."""

    def __init__(self, name: str, args: HorizontalPodAutoscalerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        check_args(component_label("HorizontalPodAutoscaler", name), HorizontalPodAutoscalerArgs, args)
        super().__init__("raykube:index:HorizontalPodAutoscaler", name, None, opts)
        self.hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata={"name": args["name"], "namespace": args["namespace"]},
            spec=pulumi.Output.from_input(dict(args)).apply(hpa_spec),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.hpa_name = pulumi.Output.from_input(args["name"])
        self.register_outputs({"hpa_name": self.hpa_name})
