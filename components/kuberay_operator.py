"""KubeRayOperator: the official kuberay-operator chart, scoped to one namespace."""
from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence, TypedDict

import pulumi

from components.merge import deep_merge
from components.pinned_chart import pinned_chart
from components.versions import KUBERAY_HELM_REPOSITORY, KUBERAY_OPERATOR_CHART, KUBERAY_VERSION


class OperatorImageArgs(TypedDict, total=False):
    """repository (default quay.io/kuberay/operator), tag (default v<version>)."""

    repository: str
    tag: Optional[str]


class KubeRayOperatorArgs(TypedDict, total=False):
    """Arguments of KubeRayOperator; the typed ones mirror the chart's values.

    namespace: where the operator runs (required; plain string).
    watch_namespaces: namespaces it reconciles (default [namespace]).
    version: chart and operator version (default components.versions.KUBERAY_VERSION).
    image: OperatorImageArgs (default the chart's image for `version`).
    resources: operator container resources (default the chart's).
    leader_election: leaderElectionEnabled (default True).
    node_selector: nodeSelector (default {}).
    tolerations: tolerations (default []).
    values: any other chart value, merged last (default {}).
    """

    namespace: str
    watch_namespaces: Sequence[str]
    version: str
    image: OperatorImageArgs
    resources: Mapping[str, Mapping[str, str]]
    leader_election: bool
    node_selector: Mapping[str, str]
    tolerations: Sequence[Mapping[str, Any]]
    values: Mapping[str, Any]


def operator_values(args: Mapping[str, Any]) -> dict[str, Any]:
    """Chart values: namespace-scoped RBAC only, CRDs left to KubeRayCrds."""
    version = args.get("version") or KUBERAY_VERSION
    namespace = args["namespace"]
    image = dict(args.get("image") or {})
    values: dict[str, Any] = {
        # Roles and RoleBindings in the watched namespaces, never ClusterRoles.
        "singleNamespaceInstall": True,
        "watchNamespace": list(args.get("watch_namespaces") or [namespace]),
        "rbacEnable": True,
        "crNamespacedRbacEnable": True,
        "leaderElectionEnabled": args.get("leader_election", True),
        "image": {
            "repository": image.get("repository") or "quay.io/kuberay/operator",
            "tag": image.get("tag") or f"v{version}",
        },
    }
    if args.get("resources"):
        values["resources"] = {kind: dict(items) for kind, items in args["resources"].items()}
    if args.get("node_selector"):
        values["nodeSelector"] = dict(args["node_selector"])
    if args.get("tolerations"):
        values["tolerations"] = [dict(item) for item in args["tolerations"]]
    return deep_merge(values, args.get("values") or {})


class KubeRayOperator(pulumi.ComponentResource):
    """One KubeRay operator with namespace-scoped rights. Depend it on KubeRayCrds."""

    namespace: pulumi.Output[str]
    release_name: pulumi.Output[str]

    def __init__(self, name: str, args: KubeRayOperatorArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("raykube:index:KubeRayOperator", name, None, opts)
        version = args.get("version") or KUBERAY_VERSION
        self.chart = pinned_chart(
            f"{name}-chart",
            chart=KUBERAY_OPERATOR_CHART,
            version=version,
            repository=KUBERAY_HELM_REPOSITORY,
            namespace=args["namespace"],
            release="kuberay-operator",
            skip_crds=True,  # KubeRayCrds owns them, once per cluster
            values=operator_values(args),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.namespace = pulumi.Output.from_input(args["namespace"])
        self.release_name = pulumi.Output.from_input("kuberay-operator")
        self.register_outputs({"namespace": self.namespace, "release_name": self.release_name})
