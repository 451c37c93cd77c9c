"""One default per setting: components/defaults.py. The settings declare it, components fall
back to it, and the documentation other languages see (the component package schema's
descriptions, from the Args docstrings) states the same value."""
from __future__ import annotations

import pytest

from components import defaults
from raykube.component_docs import package_schema
from raykube.settings import AutoscalerOptions, HeadGroup, HpaSettings, RayClusterSettings, ScaleUpPolicy, WorkerGroup
from raykube.settings.cluster import AutoscalingSettings
from raykube.settings.ray_services import ClusterUpgradeOptions, RayServiceSettings

# (settings model, field, component type token, property, the default)
SHARED = [
    (WorkerGroup, "min_replicas", "WorkerGroupArgs", "minReplicas", defaults.MIN_WORKERS),
    (WorkerGroup, "max_replicas", "WorkerGroupArgs", "maxReplicas", defaults.MAX_WORKERS),
    (WorkerGroup, "termination_grace_period_seconds", "WorkerPoolGroupArgs", "terminationGracePeriodSeconds", defaults.TERMINATION_GRACE_SECONDS),
    (AutoscalerOptions, "version", "AutoscalerArgs", "version", defaults.AUTOSCALER_VERSION),
    (AutoscalerOptions, "upscaling_mode", "AutoscalerArgs", "upscalingMode", defaults.AUTOSCALER_UPSCALING_MODE),
    (AutoscalerOptions, "idle_timeout_seconds", "AutoscalerArgs", "idleTimeoutSeconds", defaults.AUTOSCALER_IDLE_TIMEOUT_SECONDS),
    (RayClusterSettings, "ready_timeout_seconds", "RayCluster", "readyTimeoutSeconds", defaults.READY_TIMEOUT_SECONDS),
    (RayClusterSettings, "upgrade_strategy", "RayCluster", "upgradeStrategy", defaults.UPGRADE_STRATEGY),
    (HeadGroup, "service_type", "HeadGroupArgs", "serviceType", defaults.HEAD_SERVICE_TYPE),
    (HpaSettings, "target_cpu_utilization_percent", "RayWorkerPool", "targetCpuUtilizationPercent", defaults.HPA_TARGET_CPU_PERCENT),
    (AutoscalingSettings, "scale_down_stabilization_seconds", "RayWorkerPool", "scaleDownStabilizationSeconds", defaults.HPA_SCALE_DOWN_STABILIZATION_SECONDS),
    (ScaleUpPolicy, "pods", "ScaleUpArgs", "pods", defaults.HPA_SCALE_UP_PODS),
    (RayServiceSettings, "upgrade_strategy", "RayService", "upgradeStrategy", defaults.SERVICE_UPGRADE_STRATEGY),
    (RayServiceSettings, "ready_timeout_seconds", "RayService", "readyTimeoutSeconds", defaults.READY_TIMEOUT_SECONDS),
    (ClusterUpgradeOptions, "step_size_percent", "ClusterUpgradeOptionsArgs", "stepSizePercent", defaults.INCREMENTAL_STEP_SIZE_PERCENT),
    (ClusterUpgradeOptions, "interval_seconds", "ClusterUpgradeOptionsArgs", "intervalSeconds", defaults.INCREMENTAL_INTERVAL_SECONDS),
    (ClusterUpgradeOptions, "max_surge_percent", "ClusterUpgradeOptionsArgs", "maxSurgePercent", defaults.INCREMENTAL_MAX_SURGE_PERCENT),
]


def described(token: str, prop: str) -> str:
    schema = package_schema()
    owners = {**{key.rsplit(":", 1)[-1]: value.get("inputProperties", {}) for key, value in schema["resources"].items()},
              **{key.rsplit(":", 1)[-1]: value.get("properties", {}) for key, value in schema["types"].items()}}
    return owners[token][prop].get("description", "")


@pytest.mark.parametrize("model, field, token, prop, value", SHARED, ids=[f"{t}.{p}" for _, _, t, p, _ in SHARED])
def test_settings_components_and_docs_agree_on_each_default(model, field, token, prop, value):
    assert model.model_fields[field].default == value
    text = described(token, prop)
    assert f"default {value}" in text or f'default "{value}"' in text, f"{token}.{prop}: {text!r}"
