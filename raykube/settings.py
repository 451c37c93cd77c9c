"""Every raykube setting: one pydantic model, loaded once from the stack's config.

Keys are the camelCase names users write under `config:` in
stacks/Pulumi.<stack>.yaml, prefixed `raykube:`. Validation is strict:
unknown keys are errors, and rules that span several settings (min <= max,
CIDR overlap, settings that exist on one target only) are checked here, so
a bad stack file stops with one message naming the key and the file before
any resource is registered.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import sys
from importlib import metadata
from typing import Any, Literal, Mapping, Optional

import pulumi
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components.quantity import parse_quantity
from components.ray_node import GPU_RESOURCE
from components.versions import RAY_IMAGE_REPOSITORY
from raykube.targets import TARGETS, TargetName

PROJECT = "raykube"
# The Kubernetes minor versions raykube renders for: the range the official
# schemas in kubernetes-validate cover, so every object is checked for it.
KUBERNETES_MINOR_RANGE = (25, 37)
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# KubeRay names the head Service "<cluster>-head-svc" and worker pods
# "<cluster>-<group>-worker-<5 chars>"; 53 keeps every derived name a label.
RAY_CLUSTER_NAME_MAX = 53
# Kubernetes stores replica counts, HPA policy values and KubeRay's timeouts as
# int32: a larger value passes a schema check and is refused by the API server.
INT32_MAX = 2**31 - 1


def installed_ray_version() -> str:
    """The `ray` package this program (and its job clients) runs with."""
    return metadata.version("ray")


def python_tag() -> str:
    """`py311` for Python 3.11: the suffix of rayproject/ray image tags."""
    return f"py{sys.version_info.major}{sys.version_info.minor}"


class SettingsError(pulumi.RunError):
    """Invalid stack settings. A RunError, so Pulumi prints it without a traceback."""

    def __init__(self, source: str, problems: list[tuple[str, str]]):
        self.source = source
        self.problems = problems
        lines = [f"invalid settings in {source}:"]
        lines += [f"  {key}: {message}" for key, message in problems]
        super().__init__("\n".join(lines))

    @property
    def keys(self) -> list[str]:
        return [key for key, _ in self.problems]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        validate_default=False,
    )


def _check_quantities(values: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for resource, quantity in values.items():
        parse_quantity(quantity)
        out[resource] = str(quantity)
    return out


class ContainerResources(_Model):
    """Kubernetes requests and limits of a Ray container."""

    requests: dict[str, str] = Field(default_factory=dict, description="resource requests, e.g. {cpu: '2', memory: 4Gi}")
    limits: dict[str, str] = Field(default_factory=dict, description="resource limits; GPUs go here")

    @field_validator("requests", "limits", mode="before")
    @classmethod
    def _quantities(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return _check_quantities(value)
        return value

    @field_validator("limits")
    @classmethod
    def _limits_cover_requests(cls, limits: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        for resource, request in (info.data.get("requests") or {}).items():
            if resource in limits and parse_quantity(limits[resource]) < parse_quantity(request):
                raise ValueError(f"limit {limits[resource]} for {resource} is below its request {request}")
        return limits


class RayGroup(_Model):
    """What the head group and every worker group share."""

    resources: ContainerResources = Field(
        default_factory=lambda: ContainerResources(requests={"cpu": "1", "memory": "2Gi"}, limits={"cpu": "1", "memory": "2Gi"}),
        description="container requests/limits; Ray's CPU, memory and GPU counts are derived from them",
    )
    ray_resources: dict[str, float] = Field(
        default_factory=dict,
        description="overrides of the derived Ray resources (CPU, GPU, memory in bytes) plus custom resources",
    )
    node_selector: dict[str, str] = Field(default_factory=dict, description="pod nodeSelector")
    tolerations: list[dict[str, Any]] = Field(default_factory=list, description="pod tolerations")
    affinity: Optional[dict[str, Any]] = Field(default=None, description="pod affinity")
    labels: dict[str, str] = Field(default_factory=dict, description="extra pod labels")
    env: dict[str, str] = Field(default_factory=dict, description="extra environment variables for the Ray container")
    pod_template: dict[str, Any] = Field(
        default_factory=dict, description="raw pod template merged last, for anything not covered above"
    )

    @field_validator("ray_resources")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        for name, amount in value.items():
            if amount < 0:
                raise ValueError(f"{name} must be >= 0, got {amount}")
        return value

    @model_validator(mode="after")
    def _gpus_need_limits(self) -> "RayGroup":
        wants_gpu = self.ray_resources.get("GPU", 0) > 0 or GPU_RESOURCE in self.resources.requests
        if wants_gpu and GPU_RESOURCE not in self.resources.limits:
            # Raised from the group; the loader reports it on resources.limits.
            raise ValueError(f"__resources.limits__ a GPU group needs a '{GPU_RESOURCE}' limit")
        return self


class HeadGroup(RayGroup):
    """The Ray head pod."""

    ray_resources: dict[str, float] = Field(
        default_factory=lambda: {"CPU": 0.0},
        description="default CPU 0: tasks never compete with the head's own processes",
    )
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        default="ClusterIP", description="type of the <cluster>-head-svc Service"
    )


class ScaleUpPolicy(_Model):
    """How fast an HPA may add pods."""

    stabilization_window_seconds: int = Field(default=0, ge=0, le=3600, description="scale-up stabilization")
    pods: int = Field(default=4, ge=1, le=INT32_MAX, description="at most this many pods added per period")
    percent: int = Field(default=100, ge=1, le=INT32_MAX, description="or at most this percent of current pods per period")
    period_seconds: int = Field(default=15, ge=1, le=1800, description="policy period")


class HpaSettings(_Model):
    """The HorizontalPodAutoscaler of a worker group in `hpa` mode."""

    target_cpu_utilization_percent: int = Field(default=50, ge=1, le=100, description="average CPU utilization, relative to requests")
    scale_up: ScaleUpPolicy = Field(default_factory=ScaleUpPolicy, description="scale-up behaviour")


class WorkerGroup(RayGroup):
    """One kind of Ray worker (CPU, GPU, ...)."""

    name: str = Field(description="group name (DNS-1123 label)")
    autoscaling: Literal["ray", "hpa", "fixed"] = Field(
        default="ray",
        description="ray: KubeRay's autoscaler; hpa: a Deployment scaled by an HPA on CPU; fixed: `replicas` pods",
    )
    replicas: Optional[int] = Field(default=None, ge=0, le=INT32_MAX, description="initial (ray) or fixed count; default minReplicas")
    min_replicas: int = Field(default=0, ge=0, le=INT32_MAX, description="fewest workers")
    max_replicas: int = Field(default=4, ge=0, le=INT32_MAX, description="most workers")
    hpa: HpaSettings = Field(default_factory=HpaSettings, description="HPA settings (autoscaling: hpa)")
    termination_grace_period_seconds: int = Field(
        default=300, ge=30, le=86400, description="time a draining worker gets to finish its tasks"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if len(name) > 40 or not _DNS1123.match(name):
            raise ValueError(f"{name!r} must be a DNS-1123 label (lowercase letters, digits, '-') of at most 40 characters")
        return name

    @field_validator("max_replicas")
    @classmethod
    def _min_le_max(cls, maximum: int, info: ValidationInfo) -> int:
        minimum = info.data.get("min_replicas")
        if minimum is not None and minimum > maximum:
            raise ValueError(f"must be >= minReplicas ({minimum}), got {maximum}")
        return maximum

    @model_validator(mode="after")
    def _group_rules(self) -> "WorkerGroup":
        if self.replicas is not None and not self.min_replicas <= self.replicas <= self.max_replicas:
            raise ValueError(
                f"__replicas__ must lie within minReplicas..maxReplicas ({self.min_replicas}..{self.max_replicas}), got {self.replicas}"
            )
        if self.autoscaling == "hpa":
            if "cpu" not in self.resources.requests:
                raise ValueError("__resources.requests__ an HPA-scaled group needs a cpu request: utilization is relative to it")
            if self.min_replicas < 1:
                raise ValueError("__minReplicas__ an HPA keeps at least 1 replica; set minReplicas >= 1")
        return self

    @property
    def initial_replicas(self) -> int:
        return self.replicas if self.replicas is not None else self.min_replicas


class AutoscalerOptions(_Model):
    """KubeRay's in-tree Ray autoscaler (worker groups in `ray` mode)."""

    version: Literal["v1", "v2"] = Field(default="v2", description="Ray autoscaler version")
    upscaling_mode: Literal["Default", "Aggressive", "Conservative"] = Field(default="Default", description="upscaling speed")
    idle_timeout_seconds: int = Field(default=60, ge=0, le=INT32_MAX, description="idle time before a worker is removed")


class DashboardIngress(_Model):
    """An Ingress to the Ray dashboard (port 8265)."""

    enabled: bool = Field(default=False, description="create the Ingress")
    class_name: Optional[str] = Field(default=None, description="ingressClassName")
    host: Optional[str] = Field(default=None, description="host name; empty matches any host")
    path: str = Field(default="/", description="path prefix; the dashboard works under a sub-path")

    @field_validator("path")
    @classmethod
    def _path(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"must start with '/', got {path!r}")
        return path


class RayClusterSettings(_Model):
    """One RayCluster and its namespace."""

    name: str = Field(default="raycluster", description="RayCluster name (DNS-1035 label, at most 53 characters)")
    namespace: str = Field(default="ray", description="namespace; gets its own KubeRay operator")
    ray_version: Optional[str] = Field(default=None, description="Ray version; default: the installed `ray` package")
    image: Optional[str] = Field(default=None, description="Ray image; default rayproject/ray:<rayVersion>-py<XY>")
    allow_version_mismatch: bool = Field(
        default=False, description="allow rayVersion/image tag to differ from the installed ray client"
    )
    autoscaler: AutoscalerOptions = Field(default_factory=AutoscalerOptions, description="in-tree autoscaler options")
    head: HeadGroup = Field(default_factory=HeadGroup, description="head group")
    worker_groups: list[WorkerGroup] = Field(
        default_factory=lambda: [WorkerGroup(name="cpu")], description="worker groups"
    )
    ready_timeout_seconds: int = Field(default=900, ge=60, le=7200, description="how long `pulumi up` waits for the cluster")
    dashboard_ingress: DashboardIngress = Field(default_factory=DashboardIngress, description="dashboard Ingress")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if len(name) > RAY_CLUSTER_NAME_MAX or not _DNS1035.match(name):
            raise ValueError(
                f"{name!r} must be a DNS-1035 label (lowercase letter first, then letters, digits, '-') "
                f"of at most {RAY_CLUSTER_NAME_MAX} characters"
            )
        return name

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, namespace: str) -> str:
        if len(namespace) > 63 or not _DNS1123.match(namespace):
            raise ValueError(f"{namespace!r} must be a DNS-1123 label of at most 63 characters")
        if namespace.startswith("kube-"):
            raise ValueError(f"{namespace!r} is reserved for Kubernetes itself")
        return namespace

    @field_validator("worker_groups")
    @classmethod
    def _unique_groups(cls, groups: list[WorkerGroup]) -> list[WorkerGroup]:
        seen: dict[str, int] = {}
        for index, group in enumerate(groups):
            if group.name in seen:
                raise ValueError(f"__{index}.name__ duplicate group name {group.name!r} (also workerGroups[{seen[group.name]}])")
            seen[group.name] = index
        return groups

    @model_validator(mode="after")
    def _versions(self) -> "RayClusterSettings":
        installed = installed_ray_version()
        if self.allow_version_mismatch:
            return self
        if self.ray_version is not None and self.ray_version != installed:
            raise ValueError(
                f"__rayVersion__ {self.ray_version} differs from the installed ray client {installed}; "
                "Ray needs the same version on both sides (set allowVersionMismatch: true to override)"
            )
        version = self.effective_ray_version
        if self.image is not None:
            tag = self.image.rsplit(":", 1)[1] if ":" in self.image.rsplit("/", 1)[-1] else ""
            if not tag.startswith(version):
                raise ValueError(
                    f"__image__ tag {tag or '(none)'!r} does not match rayVersion {version}; "
                    "use a tag that starts with it (set allowVersionMismatch: true to override)"
                )
        return self

    @property
    def effective_ray_version(self) -> str:
        return self.ray_version or installed_ray_version()

    @property
    def effective_image(self) -> str:
        return self.image or f"{RAY_IMAGE_REPOSITORY}:{self.effective_ray_version}-{python_tag()}"


class NetworkSettings(_Model):
    """Pod and Service networks (local target: kubeadm and Flannel read them)."""

    pod_cidr: str = Field(default="10.244.0.0/16", description="pod network: kubeadm podSubnet and Flannel podCidr")
    service_cidr: str = Field(default="10.96.0.0/12", description="Service network: kubeadm serviceSubnet")
    flannel_backend: Literal["vxlan", "host-gw", "wireguard", "udp"] = Field(default="vxlan", description="Flannel backend")

    @field_validator("pod_cidr", "service_cidr")
    @classmethod
    def _cidr(cls, value: str) -> str:
        try:
            network = ipaddress.ip_network(value, strict=True)
        except ValueError as error:
            raise ValueError(f"{value!r} is not a valid CIDR ({error})") from None
        if network.version != 4:
            raise ValueError(f"{value!r}: only IPv4 networks are supported")
        return value

    @field_validator("service_cidr")
    @classmethod
    def _no_overlap(cls, service: str, info: ValidationInfo) -> str:
        pod = info.data.get("pod_cidr")
        if pod and ipaddress.ip_network(pod).overlaps(ipaddress.ip_network(service)):
            raise ValueError(f"{service} overlaps podCidr {pod}")
        return service


class KubeadmSettings(_Model):
    """The `kubeadm init --config` file (local target)."""

    config_path: str = Field(default="kubeadm-config.yaml", description="where `pulumi up` writes the file")
    cri_socket: str = Field(default="unix:///var/run/containerd/containerd.sock", description="container runtime socket")
    advertise_address: Optional[str] = Field(default=None, description="API server address; default: kubeadm's choice")
    node_name: Optional[str] = Field(default=None, description="node name; default: the host name")

    @field_validator("advertise_address")
    @classmethod
    def _address(cls, value: Optional[str]) -> Optional[str]:
        if value is not None:
            ipaddress.ip_address(value)
        return value


class AutoscalingSettings(_Model):
    """How the Kubernetes HPA reacts: one value feeds kubeadm and every HPA."""

    scale_down_stabilization_seconds: int = Field(
        default=15, ge=0, le=3600, description="HPA scale-down window (controller default is 300)"
    )
    sync_period_seconds: int = Field(default=15, ge=1, le=300, description="HPA controller sync period (kubeadm)")


class MetricsSettings(_Model):
    """metrics-server (local and EKS targets)."""

    resolution_seconds: int = Field(default=15, ge=10, le=300, description="--metric-resolution")
    kubelet_request_timeout_seconds: Optional[int] = Field(
        default=None, ge=1, le=60,
        description="--kubelet-request-timeout; default 10, or 0.9 x resolutionSeconds rounded down if that is less",
    )
    kubelet_insecure_tls: Optional[bool] = Field(
        default=None, description="--kubelet-insecure-tls; default: on for local kubeadm, off elsewhere"
    )

    @field_validator("kubelet_request_timeout_seconds")
    @classmethod
    def _timeout_fits(cls, timeout: Optional[int], info: ValidationInfo) -> Optional[int]:
        resolution = info.data.get("resolution_seconds")
        # metrics-server refuses to start unless 0.9 * resolution >= timeout.
        if timeout is not None and resolution is not None and 0.9 * resolution < timeout:
            raise ValueError(f"{timeout}s exceeds 0.9 x resolutionSeconds ({0.9 * resolution:g}s)")
        return timeout

    @property
    def effective_kubelet_request_timeout_seconds(self) -> int:
        if self.kubelet_request_timeout_seconds is not None:
            return self.kubelet_request_timeout_seconds
        return min(10, int(0.9 * self.resolution_seconds))


class OperatorImage(_Model):
    repository: str = Field(default="quay.io/kuberay/operator", description="operator image repository")
    tag: Optional[str] = Field(default=None, description="image tag; default v<version>")


class OperatorSettings(_Model):
    """KubeRay CRDs and the namespace-scoped operators."""

    version: str = Field(default="1.7.0", description="KubeRay release for CRDs and operator chart")
    image: OperatorImage = Field(default_factory=OperatorImage, description="operator image")
    resources: dict[str, dict[str, str]] = Field(
        default_factory=lambda: {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
        description="operator container resources",
    )
    leader_election: bool = Field(default=True, description="leader election (needed for more than one replica)")
    node_selector: dict[str, str] = Field(default_factory=dict, description="operator nodeSelector")
    tolerations: list[dict[str, Any]] = Field(default_factory=list, description="operator tolerations")
    values: dict[str, Any] = Field(default_factory=dict, description="any other kuberay-operator chart value, passed through")

    @field_validator("version")
    @classmethod
    def _semver(cls, version: str) -> str:
        if not re.match(r"^\d+\.\d+\.\d+$", version):
            raise ValueError(f"{version!r} must be a release such as 1.7.0")
        return version


class AwsAccessSettings(_Model):
    """AWS access for Ray jobs (S3)."""

    mode: Literal["none", "secret", "irsa"] = Field(
        default="none", description="secret: assumed-role credentials in a Secret; irsa: EKS service account, no Secret"
    )
    region: Optional[str] = Field(default=None, description="AWS region (or AWS_REGION in the environment)")
    bucket: Optional[str] = Field(default=None, description="the S3 bucket Ray jobs read and write")
    create_bucket: bool = Field(default=False, description="create the bucket")
    role_arn: Optional[str] = Field(default=None, description="use this existing role instead of creating one")
    trusted_principals: list[str] = Field(
        default_factory=list, description="ARNs allowed to assume the created role (secret mode)"
    )
    session_duration_seconds: int = Field(default=3600, ge=900, le=43200, description="credential lifetime")
    renew_before_seconds: int = Field(default=1800, ge=0, description="renew on `pulumi up` when expiry is this close")
    external_id: Optional[str] = Field(default=None, description="sts:ExternalId, if the role's trust requires one")
    endpoint_url: Optional[str] = Field(default=None, description="AWS endpoint override (tests, private endpoints)")
    secret_name: str = Field(default="aws-credentials", description="Secret name in each Ray namespace")
    mount_path: str = Field(
        default="/etc/aws", description="where every Ray container mounts the credentials Secret (AWS_CONFIG_FILE points into it)"
    )
    service_account_name: str = Field(default="ray-s3", description="service account for irsa mode")
    oidc_provider_arn: Optional[str] = Field(default=None, description="EKS cluster OIDC provider ARN (irsa)")
    oidc_issuer: Optional[str] = Field(default=None, description="EKS OIDC issuer host/path without https:// (irsa)")

    @field_validator("bucket")
    @classmethod
    def _bucket_name(cls, bucket: Optional[str]) -> Optional[str]:
        if bucket is not None and not re.match(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", bucket):
            raise ValueError(f"{bucket!r} is not an S3 bucket name (3-63 lowercase letters, digits, '.', '-')")
        return bucket

    @field_validator("role_arn", "oidc_provider_arn")
    @classmethod
    def _arn(cls, arn: Optional[str]) -> Optional[str]:
        if arn is not None and not re.match(r"^arn:aws[a-z-]*:iam::\d{12}:(role|oidc-provider)/.+$", arn):
            raise ValueError(f"{arn!r} is not an IAM role or OIDC provider ARN (arn:aws:iam::<account>:role/<name>)")
        return arn

    @field_validator("trusted_principals")
    @classmethod
    def _principals(cls, principals: list[str]) -> list[str]:
        for principal in principals:
            if not re.match(r"^arn:aws[a-z-]*:(iam|sts)::\d{12}:.+$", principal):
                raise ValueError(f"{principal!r} is not an IAM principal ARN (arn:aws:iam::<account>:user/<name>, role/..., root)")
        return principals

    @field_validator("mount_path")
    @classmethod
    def _mount_path(cls, path: str) -> str:
        # An absolute directory of its own: the Secret volume hides whatever the image has there.
        if not re.match(r"^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$", path) or path.rstrip("/") in ("/etc", "/home", "/usr", "/tmp") or ".." in path:
            raise ValueError(f"{path!r} must be an absolute directory of its own, such as /etc/aws (the volume hides what is there)")
        return path

    @field_validator("renew_before_seconds")
    @classmethod
    def _renew_window(cls, renew: int, info: ValidationInfo) -> int:
        duration = info.data.get("session_duration_seconds")
        if duration is not None and renew >= duration:
            raise ValueError(f"must be below sessionDurationSeconds ({duration}), got {renew}")
        return renew

    @model_validator(mode="after")
    def _mode_rules(self) -> "AwsAccessSettings":
        if self.mode == "none":
            return self
        if not self.effective_region:
            raise ValueError(f"__region__ awsAccess.mode {self.mode} needs a region (set it here, or AWS_REGION)")
        if not self.bucket:
            raise ValueError(f"__bucket__ awsAccess.mode {self.mode} needs the S3 bucket name")
        if self.mode == "secret" and not self.role_arn and not self.trusted_principals:
            raise ValueError("__trustedPrincipals__ name who may assume the created role, or give roleArn")
        if self.mode == "irsa" and not self.role_arn and not (self.oidc_provider_arn and self.oidc_issuer):
            raise ValueError("__oidcProviderArn__ irsa mode needs oidcProviderArn and oidcIssuer of the EKS cluster")
        return self


    @property
    def effective_region(self) -> Optional[str]:
        return self.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")


class Settings(_Model):
    """All of raykube's settings for one stack."""

    target: TargetName = Field(default="local", description="local | eks | aks | gke")
    kubernetes_version: str = Field(default="1.33", description="Kubernetes minor version (1.25-1.37), or x.y.z")
    kubeconfig: Optional[str] = Field(default=None, description="kubeconfig path; default KUBECONFIG / ~/.kube/config")
    kube_context: Optional[str] = Field(default=None, description="kubeconfig context; default the current one")
    network: Optional[NetworkSettings] = Field(default=None, description="pod/Service networks (local only)")
    kubeadm: Optional[KubeadmSettings] = Field(default=None, description="kubeadm config file (local only)")
    autoscaling: AutoscalingSettings = Field(default_factory=AutoscalingSettings, description="HPA behaviour")
    metrics: Optional[MetricsSettings] = Field(default=None, description="metrics-server (local, eks)")
    operator: OperatorSettings = Field(default_factory=OperatorSettings, description="KubeRay")
    ray_clusters: list[RayClusterSettings] = Field(
        default_factory=lambda: [RayClusterSettings()], description="Ray clusters, each in its namespace"
    )
    aws_access: AwsAccessSettings = Field(default_factory=AwsAccessSettings, description="AWS access for Ray jobs")

    @field_validator("kubernetes_version", mode="before")
    @classmethod
    def _version(cls, version: Any) -> str:
        if not isinstance(version, str):
            raise ValueError(f"{version!r} must be a quoted string such as \"1.33\" (YAML reads 1.30 as 1.3)")
        match = re.match(r"^v?1\.(\d+)(?:\.(\d+))?$", version)
        low, high = KUBERNETES_MINOR_RANGE
        if not match or not low <= int(match.group(1)) <= high:
            raise ValueError(f"{version!r} is not a supported Kubernetes version (1.{low} to 1.{high}, e.g. \"1.33\")")
        return version.lstrip("v")

    @field_validator("kubeconfig", "kube_context")
    @classmethod
    def _empty_is_default(cls, value: Optional[str]) -> Optional[str]:
        return value or None

    @field_validator("network", "kubeadm")
    @classmethod
    def _local_only(cls, value: Any, info: ValidationInfo) -> Any:
        target = info.data.get("target")
        profile = TARGETS.get(target) if target else None
        if profile is not None and not profile.kubeadm_config:
            raise ValueError(f"only the local target uses this section; {profile.title} manages its own nodes and network")
        return value

    @field_validator("metrics")
    @classmethod
    def _metrics_target(cls, value: Any, info: ValidationInfo) -> Any:
        target = info.data.get("target")
        profile = TARGETS.get(target) if target else None
        if profile is not None and not profile.metrics_server:
            raise ValueError(f"{profile.title} runs its own metrics-server; remove this section")
        return value

    @field_validator("ray_clusters")
    @classmethod
    def _unique_clusters(cls, clusters: list[RayClusterSettings]) -> list[RayClusterSettings]:
        seen: dict[tuple[str, str], int] = {}
        for index, cluster in enumerate(clusters):
            key = (cluster.namespace, cluster.name)
            if key in seen:
                raise ValueError(f"__{index}.name__ duplicate cluster {cluster.name!r} in namespace {cluster.namespace!r}")
            seen[key] = index
        if not clusters:
            raise ValueError("at least one Ray cluster is needed")
        return clusters

    @field_validator("aws_access")
    @classmethod
    def _aws_target(cls, aws: AwsAccessSettings, info: ValidationInfo) -> AwsAccessSettings:
        target = info.data.get("target")
        if aws.mode == "irsa" and target is not None and target != "eks":
            raise ValueError(f"__mode__ irsa needs the eks target (this stack's target is {target})")
        return aws

    # Effective values: the target profile fills what the stack left out.
    @property
    def profile(self):
        return TARGETS[self.target]

    @property
    def kubernetes_minor(self) -> str:
        return ".".join(self.kubernetes_version.split(".")[:2])

    @property
    def effective_network(self) -> NetworkSettings:
        return self.network or NetworkSettings()

    @property
    def effective_kubeadm(self) -> KubeadmSettings:
        return self.kubeadm or KubeadmSettings()

    @property
    def effective_metrics(self) -> MetricsSettings:
        return self.metrics or MetricsSettings()

    @property
    def kubelet_insecure_tls(self) -> bool:
        chosen = self.effective_metrics.kubelet_insecure_tls
        return self.profile.kubelet_insecure_tls if chosen is None else chosen

    @property
    def namespaces(self) -> list[str]:
        """Ray namespaces in first-use order."""
        return list(dict.fromkeys(cluster.namespace for cluster in self.ray_clusters))


# --- loading ---------------------------------------------------------------

_EMBEDDED_KEY = re.compile(r"^__(.+?)__ (.*)$", re.S)


def _key_of(loc: tuple[Any, ...]) -> str:
    key = f"{PROJECT}:"
    first = True
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        else:
            key += ("" if first else ".") + str(part)
        first = False
    return key


def _split_embedded(loc: tuple[Any, ...], message: str) -> tuple[tuple[Any, ...], str]:
    """Validators that judge several fields name the one at fault as `__sub.key__ msg`."""
    match = _EMBEDDED_KEY.match(message)
    if not match:
        return loc, message
    sub = tuple(int(part) if part.isdigit() else part for part in match.group(1).split("."))
    return loc + sub, match.group(2)


def _problems(error: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for item in error.errors(include_url=False):
        # Drop the union/function tags pydantic adds to locations.
        loc = tuple(part for part in item["loc"] if not (isinstance(part, str) and ("[" in part or part.startswith("function-"))))
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown setting (check the spelling against the README's settings table)"
        elif item["type"] == "literal_error":
            message = f"{item['input']!r} is not allowed; expected {item['ctx']['expected']}"
        loc, message = _split_embedded(loc, message)
        problems.append((_key_of(loc), message))
    return problems


def parse_settings(raw: Mapping[str, Any], source: str) -> Settings:
    """Validate `raw` ({key without prefix: value}); SettingsError names key and source."""
    try:
        return Settings.model_validate(dict(raw))
    except ValidationError as error:
        raise SettingsError(source, _problems(error)) from None


def config_values(config: Mapping[str, str]) -> dict[str, Any]:
    """This project's keys from Pulumi's flat config ({"raykube:key": "json or text"})."""
    values: dict[str, Any] = {}
    prefix = f"{PROJECT}:"
    for full_key, text in config.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        # Pulumi hands structured values to the program as JSON text.
        try:
            value = json.loads(text)
        except (TypeError, ValueError):
            value = text
        if not isinstance(value, (dict, list)):
            value = text  # scalars stay the text the user wrote
        values[key] = value
    return values


def stack_file() -> str:
    return f"stacks/Pulumi.{pulumi.get_stack()}.yaml"


def load_settings(source: Optional[str] = None) -> Settings:
    """The settings of the running stack: every `raykube:` key of its config.

    `pulumi.Config("raykube")` reads one known key at a time; strict checking
    needs them all, so this reads the same config map Pulumi fills (the
    language host's set_all_config, or PULUMI_CONFIG).
    """
    from pulumi.runtime.config import CONFIG, get_config_env

    merged = {**get_config_env(), **CONFIG.get()}
    return parse_settings(config_values(merged), source or stack_file())
