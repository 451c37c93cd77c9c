"""Every raykube setting: pydantic models, one file per section, loaded once from the stack's config.

Keys are the camelCase names users write under `config:` in
stacks/Pulumi.<stack>.yaml, prefixed `raykube:`. Validation is strict:
unknown keys are errors, and rules that span several settings (min <= max,
CIDR overlap, settings that exist on one target only) are checked here, so
a bad stack file stops with one message naming the key and the file before
any resource is registered.
"""
from raykube.settings.aws import AwsAccessSettings
from raykube.settings.cluster import AutoscalingSettings, KubeadmSettings, MetricsSettings, NetworkSettings
from raykube.settings.loading import config_values, load_settings, parse_settings, stack_file
from raykube.settings.model import INT32_MAX, PROJECT, SettingsError
from raykube.settings.network_policies import NetworkPeer, NetworkPolicySettings
from raykube.settings.operator import OperatorImage, OperatorSettings
from raykube.settings.dashboard import NGINX_INGRESS_CLASSES, DashboardIngress, IngressTls
from raykube.settings.head_fault_tolerance import GcsFaultTolerance, GcsStorage, RedisSettings, SecretKey
from raykube.settings.ray_cluster import (
    RAY_CLUSTER_NAME_MAX,
    AuthSettings,
    AutoscalerOptions,
    RayClusterSettings,
    gpu_variant,
    installed_ray_version,
    version_tuple,
)
from raykube.settings.ray_jobs import RayJobSettings
from raykube.settings.ray_groups import ContainerResources, HeadGroup, HpaSettings, RayGroup, ScaleUpPolicy, WorkerGroup
from raykube.settings.sources import ChartSource, CrdSource, ManifestSource, SecretText, SourcesSettings
from raykube.settings.stack import KUBERNETES_MINOR_RANGE, Settings

__all__ = [
    "NGINX_INGRESS_CLASSES", "AuthSettings", "GcsFaultTolerance", "GcsStorage", "IngressTls", "RedisSettings",
    "SecretKey", "gpu_variant", "version_tuple", "RayJobSettings",
    "INT32_MAX", "KUBERNETES_MINOR_RANGE", "PROJECT", "RAY_CLUSTER_NAME_MAX", "AutoscalerOptions", "AutoscalingSettings",
    "AwsAccessSettings", "ContainerResources", "DashboardIngress", "HeadGroup", "HpaSettings", "KubeadmSettings",
    "MetricsSettings", "NetworkPeer", "NetworkPolicySettings", "NetworkSettings", "OperatorImage", "OperatorSettings", "RayClusterSettings", "RayGroup",
    "ScaleUpPolicy", "Settings", "ChartSource", "CrdSource", "ManifestSource", "SecretText", "SourcesSettings", "SettingsError", "WorkerGroup", "config_values", "installed_ray_version",
    "load_settings", "parse_settings", "stack_file",
]
