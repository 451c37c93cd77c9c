"""KubeRayCrds: the RayCluster, RayJob and RayService CRDs, once per Kubernetes cluster."""
from __future__ import annotations

from typing import Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.versions import KUBERAY_CRD_PLURALS, KUBERAY_CRD_URL, KUBERAY_VERSION


class KubeRayCrdsArgs(TypedDict, total=False):
    """Arguments of KubeRayCrds.

    version: KubeRay release whose CRDs are applied (default components.versions.KUBERAY_VERSION; plain string).
    """

    version: str


def crd_urls(version: str) -> list[str]:
    """The CRD manifests of a KubeRay release, straight from its tag."""
    return [KUBERAY_CRD_URL.format(version=version, plural=plural) for plural in KUBERAY_CRD_PLURALS]


class KubeRayCrds(pulumi.ComponentResource):
    """The KubeRay CRDs. Cluster-scoped: create one per Kubernetes cluster.

    Each CRD is larger than the 256 KiB that client-side apply stores in the
    last-applied annotation, so the provider must use server-side apply (the
    default of pulumi-kubernetes v4; raykube's provider sets it explicitly).
    """

    version: pulumi.Output[str]
    crd_names: pulumi.Output[list]

    def __init__(self, name: str, args: Optional[KubeRayCrdsArgs] = None, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("raykube:index:KubeRayCrds", name, None, opts)
        version = (args or {}).get("version") or KUBERAY_VERSION
        self.crds = k8s.yaml.v2.ConfigGroup(
            f"{name}-crds",
            files=crd_urls(version),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.version = pulumi.Output.from_input(version)
        self.crd_names = pulumi.Output.from_input([f"{plural}.ray.io" for plural in KUBERAY_CRD_PLURALS])
        self.register_outputs({"version": self.version, "crd_names": self.crd_names})
