"""HorizontalPodAutoscaler: an autoscaling/v2 HPA on CPU utilization with explicit behaviour."""
from __future__ import annotations

from typing import Any, Mapping, Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s


class ScaleUpArgs(TypedDict, total=False):
    """stabilization_window_seconds (default 0), pods (default 4) or percent (default 100) per period_seconds (default 15)."""

    stabilization_window_seconds: int
    pods: int
    percent: int
    period_seconds: int


class HorizontalPodAutoscalerArgs(TypedDict, total=False):
    """Arguments of HorizontalPodAutoscaler.

    namespace, name: of the HPA (required).
    scale_target: {apiVersion, kind, name} of a workload with a /scale subresource (required).
    min_replicas / max_replicas: bounds (default 1 / 4).
    target_cpu_utilization_percent: average CPU relative to requests (default 50).
    scale_down_stabilization_seconds: the HPA's own window (default 15). It overrides the
        controller-manager flag, so the same window holds on clouds whose flags cannot be changed.
    scale_up: ScaleUpArgs (default: 4 pods or 100% per 15 s, no stabilization).
    """

    namespace: pulumi.Input[str]
    name: pulumi.Input[str]
    scale_target: pulumi.Input[Mapping[str, str]]
    min_replicas: pulumi.Input[int]
    max_replicas: pulumi.Input[int]
    target_cpu_utilization_percent: pulumi.Input[int]
    scale_down_stabilization_seconds: pulumi.Input[int]
    scale_up: pulumi.Input[ScaleUpArgs]


def hpa_spec(args: Mapping[str, Any]) -> dict[str, Any]:
    scale_up = dict(args.get("scale_up") or {})
    period = scale_up.get("period_seconds", 15)
    return {
        "scaleTargetRef": dict(args["scale_target"]),
        "minReplicas": args.get("min_replicas", 1),
        "maxReplicas": args.get("max_replicas", 4),
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": args.get("target_cpu_utilization_percent", 50)},
                },
            }
        ],
        "behavior": {
            "scaleDown": {
                "stabilizationWindowSeconds": args.get("scale_down_stabilization_seconds", 15),
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
    hpa_name: pulumi.Output[str]

    def __init__(self, name: str, args: HorizontalPodAutoscalerArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("raykube:index:HorizontalPodAutoscaler", name, None, opts)
        self.hpa = k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata={"name": args["name"], "namespace": args["namespace"]},
            spec=pulumi.Output.from_input(dict(args)).apply(hpa_spec),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.hpa_name = pulumi.Output.from_input(args["name"])
        self.register_outputs({"hpa_name": self.hpa_name})
