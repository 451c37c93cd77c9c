"""Ray pod groups: the head, worker groups, and how an HPA scales a worker pool."""
from __future__ import annotations

from typing import Any, Literal, Mapping, Optional

from pydantic import Field, ValidationInfo, field_validator, model_validator

from components.quantity import quantity_problem, resources_problem
from components.ray_node import GPU_RESOURCE, ray_resources_problem
from components import defaults
from raykube.settings.model import DNS1123, INT32_MAX, Model
from raykube.settings.pods import check_env_names, check_labels, check_tolerations
from raykube.settings.checked import ImageReference


def _check_quantities(values: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for resource, quantity in values.items():
        # One judge for settings and components: components.quantity.
        problem = quantity_problem(resource, quantity)
        if problem:
            raise ValueError(problem)
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

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> "ContainerResources":
        # A limit below its request, an extended resource (a GPU) requested without an equal limit.
        problem = resources_problem({"requests": self.requests, "limits": self.limits})
        if problem:
            where, message = problem
            raise ValueError(f"__{where.split('.', 1)[0]}__ {message}")
        return self


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

    @field_validator("tolerations")
    @classmethod
    def _tolerations(cls, tolerations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return check_tolerations(tolerations)

    @field_validator("node_selector", "labels")
    @classmethod
    def _labels(cls, labels: dict[str, str]) -> dict[str, str]:
        return check_labels(labels)

    @field_validator("env")
    @classmethod
    def _env(cls, env: dict[str, str]) -> dict[str, str]:
        return check_env_names(env)

    @field_validator("ray_resources")
    @classmethod
    def _non_negative(cls, value: dict[str, float]) -> dict[str, float]:
        problem = ray_resources_problem(value)
        if problem:
            raise ValueError(f"{problem[0]} {problem[1]}")
        return value

    @property
    def wants_gpu(self) -> bool:
        return self.ray_resources.get("GPU", 0) > 0 or any(GPU_RESOURCE in part for part in (self.resources.requests, self.resources.limits))

    @model_validator(mode="after")
    def _gpus_need_limits(self) -> "RayGroup":
        if self.wants_gpu and GPU_RESOURCE not in self.resources.limits:
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
        default=defaults.HEAD_SERVICE_TYPE, description="type of the <cluster>-head-svc Service"
    )


class ScaleUpPolicy(Model):
    """How fast an HPA may add pods."""

    stabilization_window_seconds: int = Field(default=defaults.HPA_SCALE_UP_STABILIZATION_SECONDS, ge=0, le=3600, description="scale-up stabilization")
    pods: int = Field(default=defaults.HPA_SCALE_UP_PODS, ge=1, le=INT32_MAX, description="at most this many pods added per period")
    percent: int = Field(default=defaults.HPA_SCALE_UP_PERCENT, ge=1, le=INT32_MAX, description="or at most this percent of current pods per period")
    period_seconds: int = Field(default=defaults.HPA_SCALE_UP_PERIOD_SECONDS, ge=1, le=1800, description="policy period")


class HpaSettings(Model):
    """The HorizontalPodAutoscaler of a worker group in `hpa` mode."""

    target_cpu_utilization_percent: int = Field(default=defaults.HPA_TARGET_CPU_PERCENT, ge=1, le=100, description="average CPU utilization, relative to requests")
    scale_up: ScaleUpPolicy = Field(default_factory=ScaleUpPolicy, description="scale-up behaviour")


class WorkerGroup(RayGroup):
    """One kind of Ray worker (CPU, GPU, ...)."""

    name: str = Field(description="group name (DNS-1123 label)")
    autoscaling: Literal["ray", "hpa", "fixed"] = Field(
        default="ray",
        description="ray: KubeRay's autoscaler; hpa: a Deployment scaled by an HPA on CPU; fixed: `replicas` pods",
    )
    replicas: Optional[int] = Field(default=None, ge=0, le=INT32_MAX, description="autoscaling fixed: the number of workers (required there, and only there)")
    min_replicas: int = Field(default=defaults.MIN_WORKERS, ge=0, le=INT32_MAX, description="autoscaling ray or hpa: fewest workers")
    max_replicas: int = Field(default=defaults.MAX_WORKERS, ge=0, le=INT32_MAX, description="autoscaling ray or hpa: most workers")
    hpa: HpaSettings = Field(default_factory=HpaSettings, description="HPA settings (autoscaling: hpa)")
    termination_grace_period_seconds: int = Field(
        default=defaults.TERMINATION_GRACE_SECONDS, ge=30, le=86400, description="time a stopping worker pod gets before it is killed (every mode)"
    )
    image: Optional[ImageReference] = Field(
        default=None,
        description="this group's image; default the cluster's, or its -gpu variant for a group that requests nvidia.com/gpu",
    )
    idle_timeout_seconds: Optional[int] = Field(
        default=None, ge=0, le=INT32_MAX,
        description="autoscaling ray, autoscaler v2: idle time before this group's workers go; default autoscaler.idleTimeoutSeconds",
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
        # Every setting a group's mode cannot use is an error, never dropped.
        chosen = self.model_fields_set
        if self.autoscaling == "fixed":
            ranged = [field for field in ("min_replicas", "max_replicas") if field in chosen]
            if ranged:
                key = type(self).model_fields[ranged[0]].alias
                raise ValueError(f"__{key}__ a fixed group runs exactly `replicas` workers: remove {key}, or use autoscaling: ray or hpa")
            if self.replicas is None:
                raise ValueError("__replicas__ a fixed group needs replicas: the number of workers it runs")
        elif self.replicas is not None:
            owner = "Ray's autoscaler" if self.autoscaling == "ray" else "the HPA"
            raise ValueError(f"__replicas__ {owner} sets the count of an autoscaling: {self.autoscaling} group: use minReplicas and maxReplicas")
        if "hpa" in chosen and self.autoscaling != "hpa":
            raise ValueError(f"__hpa__ only groups with autoscaling: hpa have an HPA (this group's autoscaling is {self.autoscaling}): remove hpa")
        if self.idle_timeout_seconds is not None and self.autoscaling != "ray":
            raise ValueError("__idleTimeoutSeconds__ only Ray's autoscaler removes idle workers: set it on groups with autoscaling: ray")
        if self.autoscaling == "hpa":
            if "cpu" not in self.resources.requests:
                raise ValueError("__resources.requests__ an HPA-scaled group needs a cpu request: utilization is relative to it")
            if self.min_replicas < 1:
                raise ValueError("__minReplicas__ an HPA keeps at least 1 replica; set minReplicas >= 1")
        return self

    @property
    def most_workers(self) -> int:
        """The most workers this group can ever run."""
        return self.replicas if self.autoscaling == "fixed" and self.replicas is not None else self.max_replicas
