"""One RayCluster: its version and image, head and worker groups, autoscaling, dashboard."""
from __future__ import annotations

import sys
from importlib import metadata
from typing import Any, Literal, Mapping, Optional

from pydantic import Field, ValidationInfo, field_validator, model_validator

from components.quantity import parse_quantity
from components.ray_node import GPU_RESOURCE
from components.versions import RAY_IMAGE_REPOSITORY
from raykube.settings.model import DNS1035, DNS1123, INT32_MAX, Model

# KubeRay names the head Service "<cluster>-head-svc" and worker pods
# "<cluster>-<group>-worker-<5 chars>"; 53 keeps every derived name a label.
RAY_CLUSTER_NAME_MAX = 53


def installed_ray_version() -> str:
    """The `ray` package this program (and its job clients) runs with."""
    return metadata.version("ray")


def python_tag() -> str:
    """`py311` for Python 3.11: the suffix of rayproject/ray image tags."""
    return f"py{sys.version_info.major}{sys.version_info.minor}"


def _check_quantities(values: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for resource, quantity in values.items():
        parse_quantity(quantity)
        out[resource] = str(quantity)
    return out


class ContainerResources(Model):
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


class RayGroup(Model):
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


class ScaleUpPolicy(Model):
    """How fast an HPA may add pods."""

    stabilization_window_seconds: int = Field(default=0, ge=0, le=3600, description="scale-up stabilization")
    pods: int = Field(default=4, ge=1, le=INT32_MAX, description="at most this many pods added per period")
    percent: int = Field(default=100, ge=1, le=INT32_MAX, description="or at most this percent of current pods per period")
    period_seconds: int = Field(default=15, ge=1, le=1800, description="policy period")


class HpaSettings(Model):
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
        if len(name) > 40 or not DNS1123.match(name):
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


class AutoscalerOptions(Model):
    """KubeRay's in-tree Ray autoscaler (worker groups in `ray` mode)."""

    version: Literal["v1", "v2"] = Field(default="v2", description="Ray autoscaler version")
    upscaling_mode: Literal["Default", "Aggressive", "Conservative"] = Field(default="Default", description="upscaling speed")
    idle_timeout_seconds: int = Field(default=60, ge=0, le=INT32_MAX, description="idle time before a worker is removed")


class DashboardIngress(Model):
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


class RayClusterSettings(Model):
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
        if len(name) > RAY_CLUSTER_NAME_MAX or not DNS1035.match(name):
            raise ValueError(
                f"{name!r} must be a DNS-1035 label (lowercase letter first, then letters, digits, '-') "
                f"of at most {RAY_CLUSTER_NAME_MAX} characters"
            )
        return name

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, namespace: str) -> str:
        if len(namespace) > 63 or not DNS1123.match(namespace):
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
