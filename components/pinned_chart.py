"""An upstream Helm chart at a pinned version: from its official repository, or from the source the caller gives
(a local folder or .tgz, an oci:// reference, a mirror repository: components/sources.py)."""

from typing import Any, Mapping, Optional

import pulumi
import pulumi_kubernetes as k8s

from components.args import ComponentArgsError
from components.sources import chart_location, chart_source_problem, image_registry_problem


def check_chart_source(component: str, source: Optional[Mapping[str, Any]], chart: str, version: str) -> None:
    """ComponentArgsError naming `source.<field>` for a source that cannot fetch `chart` at `version` (before anything is registered)."""
    problem = chart_source_problem(source or {}, chart, version)
    if problem:
        raise ComponentArgsError(component, f"source.{problem[0]}", problem[1])


def check_image_registry(component: str, registry: Optional[str]) -> None:
    """ComponentArgsError naming image_registry for a prefix that is no registry host[:port][/path]."""
    problem = image_registry_problem(registry) if registry is not None else None
    if problem:
        raise ComponentArgsError(component, "image_registry", problem)


def pinned_chart(
    resource_name: str,
    *,
    chart: str,
    version: str,
    repository: str,
    namespace: str,
    release: str,
    values: Mapping[str, Any],
    opts: pulumi.ResourceOptions,
    skip_crds: bool = False,
    source: Optional[Mapping[str, Any]] = None,
) -> k8s.helm.v4.Chart:
    """helm.v4.Chart: rendered by the provider, its objects applied (server-side) as Pulumi resources."""
    return k8s.helm.v4.Chart(
        resource_name,
        **chart_location(source, chart, repository),
        version=version,
        namespace=namespace,
        name=release,
        skip_crds=skip_crds,
        values=dict(values),
        opts=opts,
    )
