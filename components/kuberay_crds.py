"""KubeRayCrds: the RayCluster, RayJob, RayService and RayCronJob CRDs, once per Kubernetes cluster."""

import os
from pathlib import Path
from typing import Any, Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.versions import KUBERAY_CRD_URL, KUBERAY_VERSION, kuberay_crd_plurals
from components.args import check_args, component_label
from components.sources import local_or_mirror


class KubeRayCrdsArgs(TypedDict, total=False):
    """Arguments of KubeRayCrds."""

    version: str
    """KubeRay release whose CRDs are applied (default components.versions.KUBERAY_VERSION; plain string)."""
    path: str
    """a local folder holding ray.io_<plural>.yaml of that release, e.g. the kuberay-operator chart's crds/ (default unset: the release tag on GitHub)."""
    base_url: str
    """a mirror URL (https) of a folder holding ray.io_<plural>.yaml of that release (default unset: the release tag on GitHub)."""
    allow_http: bool
    """allow an http:// base_url (default False)."""


CRD_TYPE = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"


def retain_crds(args: pulumi.ResourceTransformArgs) -> Optional[pulumi.ResourceTransformResult]:
    """Keep every CRD on `pulumi destroy`.

    Deleting a CRD deletes every custom resource of its kind in the whole
    Kubernetes cluster: other stacks' RayClusters included. The transform
    marks each CRD inside the ConfigGroup itself, so the retain does not rest
    on the provider passing the group's `retain_on_delete` on to its children
    (the 4.25.0 provider the tests run does; tests/test_engine_scenarios.py
    fails when both are dropped).
    """
    if args.type_ != CRD_TYPE:
        return None
    return pulumi.ResourceTransformResult(
        props=args.props, opts=pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(retain_on_delete=True))
    )


def crd_file_names(version: str = KUBERAY_VERSION) -> list[str]:
    """The CRD files raykube installs, as a release's config/crd/bases/ (and the chart's crds/) name them."""
    return [f"ray.io_{plural}.yaml" for plural in kuberay_crd_plurals(version)]


def crd_urls(version: str) -> list[str]:
    """The CRD manifests of a KubeRay release, straight from its tag."""
    return [KUBERAY_CRD_URL.format(version=version, plural=plural) for plural in kuberay_crd_plurals(version)]


def crd_folder_problem(folder: Any, version: str = KUBERAY_VERSION) -> Optional[str]:
    """Why `folder` cannot give the CRDs raykube installs for KubeRay `version` (a folder with every ray.io_<plural>.yaml)."""
    if not isinstance(folder, (str, Path)) or not str(folder):
        return f"{folder!r} is not a folder"
    if not Path(folder).is_dir():
        return f"{folder} is not a folder"
    names = crd_file_names(version)
    missing = [name for name in names if not (Path(folder) / name).is_file()]
    if missing:
        return f"{folder} lacks {', '.join(missing)} (it needs {', '.join(names)}, e.g. the kuberay-operator chart's crds/)"
    return None


def crd_sources(args: KubeRayCrdsArgs, component: str = "KubeRayCrds") -> list[str]:
    """The files (local paths or URLs) the CRDs are read from; ComponentArgsError for a source that cannot give them."""
    version = args.get("version") or KUBERAY_VERSION
    chosen = local_or_mirror(args, component, lambda folder: crd_folder_problem(folder, version), "base_url", "a folder of CRD files")
    if chosen:
        kind, where = chosen
        return [os.path.join(where, name) if kind == "path" else f"{where.rstrip('/')}/{name}" for name in crd_file_names(version)]
    return crd_urls(version)


class KubeRayCrds(pulumi.ComponentResource):
    """The KubeRay CRDs. Cluster-scoped: create one per Kubernetes cluster.

    Kept on `pulumi destroy` (see retain_crds): other stacks on the same
    Kubernetes cluster may use them. Each CRD is larger than the 256 KiB that client-side apply stores in the
    last-applied annotation, so the provider must use server-side apply (the
    default of pulumi-kubernetes v4; raykube's provider sets it explicitly).
    """

    version: pulumi.Output[str]
    """KubeRay release of the CRDs."""
    crd_names: pulumi.Output[list[str]]
    """Names of the installed CRDs."""

    def __init__(self, name: str, args: KubeRayCrdsArgs, opts: Optional[pulumi.ResourceOptions] = None):
        label = component_label("KubeRayCrds", name)
        check_args(label, KubeRayCrdsArgs, args)
        files = crd_sources(args or {}, label)
        super().__init__("raykube:index:KubeRayCrds", name, None, opts)
        version = (args or {}).get("version") or KUBERAY_VERSION
        self.crds = k8s.yaml.v2.ConfigGroup(
            f"{name}-crds",
            files=files,
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True, transforms=[retain_crds]),
        )
        self.version = pulumi.Output.from_input(version)
        self.crd_names = pulumi.Output.from_input([f"{plural}.ray.io" for plural in kuberay_crd_plurals(version)])
        self.register_outputs({"version": self.version, "crd_names": self.crd_names})
