"""One RayCluster: version and images, groups, autoscaling, upgrades, authentication, fault tolerance."""
from __future__ import annotations

from importlib import metadata
import re
from typing import Literal, Optional

from pydantic import Field, field_validator, model_validator

from components.versions import RAY_IMAGE_PYTHON_VERSION, RAY_IMAGE_REPOSITORY, ray_image_python_tag, version_tuple
from components import defaults
from raykube.settings.dashboard import DashboardIngress
from raykube.settings.head_fault_tolerance import GcsFaultTolerance
from raykube.settings.model import DNS1035, DNS1123, INT32_MAX, Model
from raykube.settings.namespaces import system_namespace
from raykube.settings.ray_groups import HeadGroup, WorkerGroup
from raykube.settings.checked import ImageReference

# KubeRay names the head Service "<cluster>-head-svc" and worker pods
# "<cluster>-<group>-worker-<5 chars>"; 53 keeps every derived name a label.
RAY_CLUSTER_NAME_MAX = 53


def installed_ray_version() -> str:
    """The `ray` package this program (and its job clients) runs with."""
    return metadata.version("ray")


class AutoscalerOptions(Model):
    """KubeRay's in-tree Ray autoscaler (worker groups in `ray` mode)."""

    version: Literal["v1", "v2"] = Field(default=defaults.AUTOSCALER_VERSION, description="Ray autoscaler version")
    upscaling_mode: Literal["Default", "Aggressive", "Conservative"] = Field(default=defaults.AUTOSCALER_UPSCALING_MODE, description="upscaling speed")
    idle_timeout_seconds: int = Field(default=defaults.AUTOSCALER_IDLE_TIMEOUT_SECONDS, ge=0, le=INT32_MAX, description="idle time before a worker is removed")


# Ray token authentication exists from Ray 2.52.
TOKEN_AUTH_MIN_RAY = (2, 52)
# The embedded (rocksdb) GCS store exists from Ray 2.57.
EMBEDDED_GCS_MIN_RAY = (2, 57)



def gpu_variant(image: str) -> str:
    """rayproject/ray:2.60.0-py311 -> rayproject/ray:2.60.0-py311-gpu (a tag that names CUDA is kept)."""
    repository, _, tag = image.rpartition(":")
    if not repository or "/" in tag or re.search(r"-(gpu|cu\d+)", tag):
        return image
    return f"{image}-gpu"


def require_gpu_images(worker_groups: list[WorkerGroup]) -> None:
    """A group that requests GPUs cannot run a rayproject/ray image without CUDA."""
    for index, group in enumerate(worker_groups):
        if group.wants_gpu and group.image and group.image.startswith(f"{RAY_IMAGE_REPOSITORY}:") and gpu_variant(group.image) != group.image:
            raise ValueError(
                f"__workerGroups.{index}.image__ {group.image} has no CUDA, but the group requests GPUs: "
                f"use {gpu_variant(group.image)} (or leave image out: GPU groups default to it)"
            )


def require_a_place_for_tasks(head: HeadGroup, worker_groups: list[WorkerGroup]) -> None:
    """A cluster whose head takes no tasks and that can have no worker never runs anything."""
    if head.ray_resources.get("CPU", 1) == 0 and not any(group.most_workers > 0 for group in worker_groups):
        raise ValueError(
            "__workerGroups__ no task can ever run: the head takes none (head.rayResources.CPU is 0) and no worker group "
            "can have a worker; add a worker group with maxReplicas (or replicas) above 0, or give the head CPUs"
        )


class AuthSettings(Model):
    """Who may use the cluster's dashboard, Jobs API and GCS."""

    mode: Literal["token", "disabled"] = Field(
        default=defaults.AUTH_MODE,
        description="token: KubeRay generates a token Secret and every Ray process requires it (Ray >= 2.52); "
        "disabled: anyone who reaches the head can run code on it",
    )


class RayClusterSettings(Model):
    """One RayCluster and its namespace."""

    name: str = Field(default="raycluster", description="RayCluster name (DNS-1035 label, at most 53 characters)")
    namespace: str = Field(
        default="ray",
        description="namespace raykube creates for it (an existing one only when adoptNamespaces names it); gets its own KubeRay operator; "
        "never default, kube-*, an Ingress controller's or the observability or renewer namespace",
    )
    ray_version: Optional[str] = Field(default=None, description="Ray version; default: the installed `ray` package")
    image: Optional[ImageReference] = Field(default=None, description="Ray image; default rayproject/ray:<rayVersion>-py<pythonVersion>")
    python_version: str = Field(
        default=RAY_IMAGE_PYTHON_VERSION,
        description="Python of the default Ray image (its tag's -pyXY), pinned: never the Python that runs `pulumi up`",
    )
    allow_version_mismatch: bool = Field(
        default=False, description="allow rayVersion/image tag to differ from the installed ray client"
    )
    autoscaler: AutoscalerOptions = Field(default_factory=AutoscalerOptions, description="in-tree autoscaler options")
    head: HeadGroup = Field(default_factory=HeadGroup, description="head group")
    worker_groups: list[WorkerGroup] = Field(
        default_factory=lambda: [WorkerGroup(name="cpu")], description="worker groups"
    )
    ready_timeout_seconds: int = Field(default=defaults.READY_TIMEOUT_SECONDS, ge=60, le=7200, description="how long `pulumi up` waits for the cluster")
    dashboard_ingress: DashboardIngress = Field(default_factory=DashboardIngress, description="dashboard Ingress")
    upgrade_strategy: Literal["Recreate", "None"] = Field(
        default=defaults.UPGRADE_STRATEGY,
        description="Recreate: a changed pod spec (image, Ray version) recreates all pods, ending running jobs; "
        "None: running pods keep the old spec",
    )
    auth: AuthSettings = Field(default_factory=AuthSettings, description="token authentication")
    gcs_fault_tolerance: Optional[GcsFaultTolerance] = Field(
        default=None, description="head fault tolerance (off by default): backend rocksdb or redis"
    )
    image_digest: Optional[str] = Field(
        default=None,
        description="sha256:<64 hex> pinning the cluster's image (default none: the tag); a GPU group then names its own image@digest",
    )
    read_only_root_filesystem: bool = Field(
        default=True,
        description="Ray containers cannot write their image; /tmp (Ray's /tmp/ray) and /dev/shm are writable emptyDirs. "
        "false for code that writes into the home folder (e.g. Ray Tune's default ~/ray_results)",
    )

    @field_validator("image_digest")
    @classmethod
    def _digest(cls, digest: Optional[str]) -> Optional[str]:
        if digest is not None and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            raise ValueError(f"{digest!r} must be sha256: and 64 lowercase hex digits (`docker buildx imagetools inspect IMAGE` prints it)")
        return digest

    @field_validator("ray_version")
    @classmethod
    def _ray_release(cls, version: Optional[str]) -> Optional[str]:
        if version is None:
            return None
        # A release: it is the image's tag and a label value (raykube.io/ray-version) as well.
        if not isinstance(version, str) or not re.fullmatch(r"\d+\.\d+\.\d+", version):
            raise ValueError(f"{version!r} must be a quoted Ray release such as \"{installed_ray_version()}\"")
        newest = version_tuple(installed_ray_version())[:2]
        if version_tuple(version)[:2] > newest:
            # Nothing newer than the client is known to exist, nor to keep Ray's wire protocol.
            raise ValueError(f"{version} is newer than the installed ray client {installed_ray_version()}: upgrade ray in requirements.txt first")
        return version

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if len(name) > RAY_CLUSTER_NAME_MAX or not DNS1035.match(name):
            raise ValueError(
                f"{name!r} must be a DNS-1035 label (lowercase letter first, then letters, digits, '-') "
                f"of at most {RAY_CLUSTER_NAME_MAX} characters"
            )
        return name

    @field_validator("python_version", mode="before")
    @classmethod
    def _python_version(cls, version: object) -> str:
        if not isinstance(version, str) or not re.match(r"^3\.\d{1,2}$", version):
            raise ValueError(f"{version!r} must be a quoted Python minor version such as \"3.11\" (YAML reads 3.10 as 3.1)")
        return version

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, namespace: str) -> str:
        if len(namespace) > 63 or not DNS1123.match(namespace):
            raise ValueError(f"{namespace!r} must be a DNS-1123 label of at most 63 characters")
        # Its default-deny policy and Pod Security labels would reach every other pod there.
        reason = system_namespace(namespace)
        if reason:
            raise ValueError(f"{reason}: Ray needs a namespace of its own (raykube creates it, e.g. ray)")
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
        version = self.effective_ray_version
        if not self.allow_version_mismatch and self.ray_version is not None and self.ray_version != installed:
            raise ValueError(
                f"__rayVersion__ {self.ray_version} differs from the installed ray client {installed}; "
                "Ray needs the same version on both sides (set allowVersionMismatch: true to override)"
            )
        if self.auth.mode == "token" and version_tuple(version) < TOKEN_AUTH_MIN_RAY:
            raise ValueError(
                f"__auth.mode__ token authentication needs Ray 2.52 or later (rayVersion is {version}); "
                "upgrade Ray or set auth.mode: disabled"
            )
        if self.gcs_fault_tolerance is not None and self.gcs_fault_tolerance.backend == "rocksdb" and version_tuple(version) < EMBEDDED_GCS_MIN_RAY:
            raise ValueError(
                f"__gcsFaultTolerance.backend__ the rocksdb backend needs Ray 2.57 or later (rayVersion is {version}): upgrade Ray or use backend: redis"
            )
        if self.allow_version_mismatch:
            return self
        images = [("image", self.image)] + [(f"workerGroups.{index}.image", group.image) for index, group in enumerate(self.worker_groups)]
        for key, image in images:
            if image is None:
                continue
            name = image.split("@", 1)[0]  # a pinned reference: repo:tag@sha256:...
            tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else ""
            if not tag.startswith(version):
                raise ValueError(
                    f"__{key}__ tag {tag or '(none)'!r} does not match rayVersion {version}; "
                    "use a tag that starts with it (set allowVersionMismatch: true to override)"
                )
        return self

    @model_validator(mode="after")
    def _group_idle_timeouts_need_v2(self) -> "RayClusterSettings":
        for index, group in enumerate(self.worker_groups):
            if group.idle_timeout_seconds is not None and self.autoscaler.version != "v2":
                raise ValueError(
                    f"__workerGroups.{index}.idleTimeoutSeconds__ per-group idle timeouts need autoscaler.version: v2"
                )
        return self

    @model_validator(mode="after")
    def _gpu_groups_get_gpu_images(self) -> "RayClusterSettings":
        require_gpu_images(self.worker_groups)
        return self

    @model_validator(mode="after")
    def _digest_pins_every_image(self) -> "RayClusterSettings":
        # One digest is one image: a GPU group's default -gpu variant is another one.
        if self.image_digest is None and "@" not in self.effective_image:
            return self
        for index, group in enumerate(self.worker_groups):
            if group.wants_gpu and not group.image:
                raise ValueError(
                    f"__workerGroups.{index}.image__ imageDigest pins {self.effective_image}, but this GPU group runs "
                    f"{gpu_variant(self.effective_image)}: give it image: {gpu_variant(self.effective_image)}@sha256:<its digest>"
                )
        return self

    @model_validator(mode="after")
    def _something_can_run(self) -> "RayClusterSettings":
        require_a_place_for_tasks(self.head, self.worker_groups)
        return self

    @property
    def effective_ray_version(self) -> str:
        return self.ray_version or installed_ray_version()

    @property
    def effective_image(self) -> str:
        """The cluster's image by tag (what GPU variants are derived from)."""
        return self.image or f"{RAY_IMAGE_REPOSITORY}:{self.effective_ray_version}-{ray_image_python_tag(self.python_version)}"

    @property
    def pinned_image(self) -> str:
        """The cluster's image as pods pull it: by digest when imageDigest is set."""
        return f"{self.effective_image}@{self.image_digest}" if self.image_digest else self.effective_image

    def image_for(self, group: WorkerGroup) -> str:
        """A group's image: its own, else the cluster's (the -gpu variant for GPU groups)."""
        if group.image:
            return group.image
        return gpu_variant(self.effective_image) if group.wants_gpu else self.pinned_image
