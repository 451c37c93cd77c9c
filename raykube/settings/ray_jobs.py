"""Ray jobs as KubeRay RayJobs: a job with its own cluster, or on a stack's RayCluster."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from raykube.code_folder import MAX_CODE_BYTES, check_code_folder
from raykube.settings.model import DNS1035, INT32_MAX, Model
from raykube.settings.ray_cluster import AutoscalerOptions, require_a_place_for_tasks, require_gpu_images
from raykube.settings.ray_groups import HeadGroup, WorkerGroup

# KubeRay names a job's cluster "<job>-<5 characters>", and that cluster's
# objects after it (RAY_CLUSTER_NAME_MAX 53): 47 leaves room for the suffix.
RAY_JOB_NAME_MAX = 47


class RayJobSettings(Model):
    """One RayJob."""

    name: str = Field(description="RayJob name (DNS-1035 label, at most 47 characters)")
    namespace: str = Field(default="ray", description="a namespace of rayClusters[] (its operator runs the job)")
    entrypoint: str = Field(description="the command, e.g. python job.py --bucket my-bucket")
    runtime_env: dict[str, Any] = Field(
        default_factory=dict, description="Ray runtime environment: pip, env_vars, working_dir (a remote URI such as s3://...)"
    )
    code: Optional[str] = Field(
        default=None,
        description="a folder of this project (e.g. examples/wine_shap) that pulumi up uploads to awsAccess.bucket "
        "and the job runs in (its runtimeEnv working_dir); .gitignore'd files, virtualenvs and caches are left out, "
        f"and the rest must fit {MAX_CODE_BYTES // 2**20} MiB",
    )
    cluster: Optional[str] = Field(
        default=None, description="run on this RayCluster of rayClusters[] in the same namespace; default: a cluster of its own"
    )
    head: HeadGroup = Field(default_factory=HeadGroup, description="own cluster: head group")
    worker_groups: list[WorkerGroup] = Field(
        default_factory=lambda: [WorkerGroup(name="cpu", min_replicas=1)], description="own cluster: worker groups (ray or fixed)"
    )
    autoscaler: AutoscalerOptions = Field(default_factory=AutoscalerOptions, description="own cluster: autoscaler options")
    shutdown_after_job_finishes: Optional[bool] = Field(
        default=None, description="delete the job's own cluster when it ends; default true (own cluster), false (cluster)"
    )
    ttl_seconds_after_finished: int = Field(
        default=300, ge=0, le=INT32_MAX, description="how long a finished job's own cluster stays for inspection"
    )
    active_deadline_seconds: Optional[int] = Field(default=None, ge=1, le=INT32_MAX, description="fail the job after this long")
    backoff_limit: int = Field(default=0, ge=0, le=100, description="retries of a failed job (each with a new cluster)")
    submission_mode: Literal["K8sJobMode", "HTTPMode", "SidecarMode"] = Field(
        default="K8sJobMode", description="how KubeRay submits: a submitter Job, an HTTP request, or a sidecar on the head"
    )
    read_only_root_filesystem: bool = Field(
        default=True, description="own cluster: Ray containers cannot write their image, as rayClusters[].readOnlyRootFilesystem"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if len(name) > RAY_JOB_NAME_MAX or not DNS1035.match(name):
            raise ValueError(f"{name!r} must be a DNS-1035 label (lowercase letter first) of at most {RAY_JOB_NAME_MAX} characters")
        return name

    @field_validator("entrypoint")
    @classmethod
    def _entrypoint(cls, entrypoint: str) -> str:
        if not entrypoint.strip():
            raise ValueError("must be the command the job runs, e.g. python job.py")
        return entrypoint

    @field_validator("code")
    @classmethod
    def _code(cls, code: Optional[str]) -> Optional[str]:
        # Relative to the project folder: where `pulumi up` (and `raykube render`) run the program.
        # Inside it only, git's exclusions applied, and within the upload limit (raykube/code_folder.py):
        # checked here, so an 870 MB virtualenv is refused before anything is registered.
        if code is not None:
            check_code_folder(code, Path.cwd())
        return code

    @field_validator("worker_groups")
    @classmethod
    def _groups(cls, groups: list[WorkerGroup]) -> list[WorkerGroup]:
        for index, group in enumerate(groups):
            if group.autoscaling == "hpa":
                raise ValueError(f"__{index}.autoscaling__ a RayJob's own cluster scales with Ray (ray or fixed), not an HPA")
        return groups

    @model_validator(mode="after")
    def _one_working_dir(self) -> "RayJobSettings":
        if self.code is not None and "working_dir" in self.runtime_env:
            raise ValueError("__runtimeEnv.working_dir__ code sets the job's working_dir (the uploaded folder): remove one of them")
        return self

    @model_validator(mode="after")
    def _cluster_or_own(self) -> "RayJobSettings":
        if self.cluster is not None:
            own = sorted({"head", "worker_groups", "autoscaler"} & self.model_fields_set)
            if own:
                key = type(self).model_fields[own[0]].alias
                raise ValueError(
                    f"__{key}__ describes a cluster of the job's own, but the job runs on RayCluster {self.cluster!r} (cluster): remove it"
                )
            if self.shutdown_after_job_finishes:
                raise ValueError("__shutdownAfterJobFinishes__ cannot delete a RayCluster the job does not own (cluster is set)")
            if self.submission_mode == "SidecarMode":
                raise ValueError("__submissionMode__ SidecarMode runs on a cluster of the job's own; with cluster use K8sJobMode or HTTPMode")
        else:
            # The rules of a RayCluster's groups hold for the job's own cluster too.
            require_a_place_for_tasks(self.head, self.worker_groups)
            require_gpu_images(self.worker_groups)
        if self.cluster is None and "ttl_seconds_after_finished" in self.model_fields_set and self.shutdown_after_job_finishes is False:
            raise ValueError("__ttlSecondsAfterFinished__ only applies when shutdownAfterJobFinishes is true")
        return self

    @property
    def effective_shutdown(self) -> bool:
        if self.shutdown_after_job_finishes is not None:
            return self.shutdown_after_job_finishes
        return self.cluster is None
