"""KubeRay: the CRDs and the namespace-scoped operators."""
from __future__ import annotations

import re
from typing import Any, Optional

from pydantic import Field, field_validator
from components.quantity import resources_problem
from components.kuberay_operator import INCREMENTAL_UPGRADE_GATE, INCREMENTAL_UPGRADE_GATE_ON_SINCE
from components.versions import KUBERAY_VERSION, version_tuple

from raykube.settings.model import Model
from raykube.settings.pods import check_labels, check_tolerations
from raykube.settings.checked import ImageRepository, ImageTag


# KubeRay releases raykube deploys: from 1.1 (its CRDs are ray.io/v1 only, as raykube
# writes them) to the pinned release's minor (components/versions.py: the CRDs and
# chart the tests validate against; a newer one is unknown to raykube's checks).
KUBERAY_VERSION_RANGE = ((1, 1), version_tuple(KUBERAY_VERSION)[:2])
# The Ray releases each KubeRay supports (docs.ray.io, "KubeRay upgrade guide",
# KubeRay / Ray compatibility): 1.1 and 1.2 support Ray 2.8.0 and later, 1.3 and
# later Ray 2.38.0 and later; Ray 2.11.0 to 2.37.0 hang the head's dashboard agent
# (and with it KubeRay's probes) once a job runs, with every KubeRay.
RAY_MIN_FOR_KUBERAY = (((1, 3), (2, 38, 0)), ((1, 1), (2, 8, 0)))
RAY_BROKEN_RANGE = ((2, 11, 0), (2, 37, 0))


def ray_version_problem(ray_version: str, kuberay_version: str) -> str | None:
    """Why KubeRay `kuberay_version` does not support Ray `ray_version`, or None."""
    ray, kuberay = version_tuple(ray_version), version_tuple(kuberay_version)
    for since, minimum in RAY_MIN_FOR_KUBERAY:
        if kuberay[:2] >= since:
            if ray < minimum:
                return f"KubeRay {kuberay_version} supports Ray {'.'.join(map(str, minimum))} and later"
            break
    low, high = RAY_BROKEN_RANGE
    if low <= ray <= high:
        return "Ray 2.11.0 to 2.37.0 hang the head's dashboard agent once a job runs (KubeRay upgrade guide): use 2.38.0 or later"
    return None


class OperatorImage(Model):
    repository: ImageRepository = Field(default="quay.io/kuberay/operator", description="operator image repository")
    tag: Optional[ImageTag] = Field(default=None, description="image tag; default v<version>")




class OperatorSettings(Model):
    """KubeRay CRDs and the namespace-scoped operators."""

    version: str = Field(default=KUBERAY_VERSION, description="KubeRay release for CRDs and operator chart")
    install_crds: bool = Field(
        default=True,
        description="install the KubeRay CRDs (kept on destroy); false when another stack on the same "
        "Kubernetes cluster installed them",
    )
    image: OperatorImage = Field(default_factory=OperatorImage, description="operator image")
    resources: dict[str, dict[str, str]] = Field(
        default_factory=lambda: {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
        description="operator container resources",
    )
    leader_election: bool = Field(default=True, description="leader election (needed for more than one replica)")
    node_selector: dict[str, str] = Field(default_factory=dict, description="operator nodeSelector")
    tolerations: list[dict[str, Any]] = Field(default_factory=list, description="operator tolerations")
    feature_gates: dict[str, bool] = Field(
        default_factory=dict,
        description="KubeRay feature gates by name, over the chart's defaults; raykube turns on those its clusters need",
    )
    values: dict[str, Any] = Field(default_factory=dict, description="any other kuberay-operator chart value, passed through")

    @field_validator("tolerations")
    @classmethod
    def _tolerations(cls, tolerations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return check_tolerations(tolerations)

    @field_validator("node_selector")
    @classmethod
    def _node_selector(cls, labels: dict[str, str]) -> dict[str, str]:
        return check_labels(labels)

    @field_validator("resources")
    @classmethod
    def _resources(cls, resources: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        unknown = sorted(set(resources) - {"requests", "limits"})
        if unknown:
            raise ValueError(f"takes requests and limits, not {', '.join(unknown)}")
        problem = resources_problem(resources)
        if problem:
            raise ValueError(f"{problem[0]}: {problem[1]}")
        return resources

    @field_validator("version")
    @classmethod
    def _semver(cls, version: str) -> str:
        if not re.match(r"^\d+\.\d+\.\d+$", version):
            raise ValueError(f"{version!r} must be a release such as 1.7.0")
        low, high = KUBERAY_VERSION_RANGE
        if not low <= version_tuple(version)[:2] <= high:
            raise ValueError(
                f"{version} is not a supported KubeRay release ({'.'.join(map(str, low))}.0 to {'.'.join(map(str, high))}.x): "
                "raykube writes ray.io/v1 objects, and its checks know the releases up to the pinned one"
            )
        return version

    def gate_enabled(self, gate: str) -> bool:
        """Whether the operators run with `gate` on: as featureGates sets it, else the release's default (raykube knows RayServiceIncrementalUpgrade's)."""
        if gate in self.feature_gates:
            return self.feature_gates[gate]
        if gate == INCREMENTAL_UPGRADE_GATE:
            return version_tuple(self.version) >= INCREMENTAL_UPGRADE_GATE_ON_SINCE
        return False
