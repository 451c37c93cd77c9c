"""KubeRay: the CRDs and the namespace-scoped operators."""
from __future__ import annotations

import re
from typing import Any, Optional

from pydantic import Field, field_validator
from components.versions import KUBERAY_VERSION

from raykube.settings.model import Model


class OperatorImage(Model):
    repository: str = Field(default="quay.io/kuberay/operator", description="operator image repository")
    tag: Optional[str] = Field(default=None, description="image tag; default v<version>")


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

    @field_validator("version")
    @classmethod
    def _semver(cls, version: str) -> str:
        if not re.match(r"^\d+\.\d+\.\d+$", version):
            raise ValueError(f"{version!r} must be a release such as 1.7.0")
        return version
