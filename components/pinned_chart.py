"""An upstream Helm chart at a pinned version from its official repository."""

from typing import Any, Mapping

import pulumi
import pulumi_kubernetes as k8s


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
) -> k8s.helm.v4.Chart:
    """helm.v4.Chart: rendered by the provider, its objects applied (server-side) as Pulumi resources."""
    return k8s.helm.v4.Chart(
        resource_name,
        chart=chart,
        version=version,
        repository_opts={"repo": repository},
        namespace=namespace,
        name=release,
        skip_crds=skip_crds,
        values=dict(values),
        opts=opts,
    )
