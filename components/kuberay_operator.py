"""KubeRayOperator: the official kuberay-operator chart, scoped to one namespace."""

from typing import Any, Mapping, Optional, Sequence, Required, TypedDict

import pulumi

from components.merge import deep_merge
from components.pinned_chart import check_chart_source, check_image_registry, pinned_chart
from components.sources import ChartSourceArgs, mirrored_image
from components.versions import KUBERAY_HELM_REPOSITORY, KUBERAY_OPERATOR_CHART, KUBERAY_OPERATOR_IMAGE, KUBERAY_VERSION
from components.args import ComponentArgsError, check_args, component_label
from components.quantity import resources_problem


# The kuberay-operator chart's own `featureGates` (chart 1.7.0, in its order).
# Helm replaces a list value whole, so raykube sends this list with its own
# gates laid over it; tests keep it equal to the chart's values.yaml.
CHART_FEATURE_GATES: tuple[tuple[str, bool], ...] = (
    ("RayClusterStatusConditions", True),
    ("RayJobDeletionPolicy", True),
    ("RayMultiHostIndexing", True),
    ("RayServiceIncrementalUpgrade", True),
    ("RayCronJob", False),
    ("RayClusterMTLS", False),
    ("RayClusterNetworkPolicy", False),
    ("RayClusterHistoryServer", False),
)
# Off in KubeRay 1.7 (alpha); a RayCluster with gcsFaultToleranceOptions.backend
# rocksdb is refused by an operator without it.
EMBEDDED_GCS_STORAGE_GATE = "GCSFaultToleranceEmbeddedStorage"
# RayService upgrades through a Gateway (NewClusterWithIncrementalUpgrade): beta and on
# from KubeRay 1.7.0 (binary and chart), alpha and off before; an operator without it
# takes the strategy for "no zero-downtime upgrade" (rayservice_controller.go
# isZeroDowntimeUpgradeEnabled): a changed cluster spec would never be applied.
INCREMENTAL_UPGRADE_GATE = "RayServiceIncrementalUpgrade"
INCREMENTAL_UPGRADE_GATE_ON_SINCE = (1, 7, 0)


def feature_gate_values(gates: Mapping[str, bool]) -> list[dict[str, Any]]:
    """The chart's `featureGates` list with `gates` laid over it (new gates last)."""
    merged = dict(CHART_FEATURE_GATES)
    merged.update({name: bool(enabled) for name, enabled in gates.items()})
    return [{"name": name, "enabled": enabled} for name, enabled in merged.items()]


class OperatorImageArgs(TypedDict, total=False):
    """repository (default quay.io/kuberay/operator), tag (default v<version>)."""

    repository: str
    """Operator image repository, taken as given (default quay.io/kuberay/operator, from image_registry when that is set)."""
    tag: Optional[str]
    """Image tag (default v<version>)."""


class KubeRayOperatorArgs(TypedDict, total=False):
    """Arguments of KubeRayOperator; the typed ones mirror the chart's values."""

    namespace: Required[str]
    """where the operator runs (required; plain string)."""
    watch_namespaces: Sequence[str]
    """namespaces it reconciles (default [namespace])."""
    version: str
    """chart and operator version (default components.versions.KUBERAY_VERSION)."""
    image: OperatorImageArgs
    """OperatorImageArgs (default the chart's image for `version`)."""
    resources: Mapping[str, Mapping[str, str]]
    """operator container resources (default the chart's)."""
    leader_election: bool
    """leaderElectionEnabled (default True)."""
    node_selector: Mapping[str, str]
    """nodeSelector (default {})."""
    tolerations: Sequence[Mapping[str, Any]]
    """tolerations (default [])."""
    feature_gates: Mapping[str, bool]
    """KubeRay feature gates by name, laid over the chart's defaults (default {}: the chart's)."""
    source: ChartSourceArgs
    """where the chart comes from: a folder, .tgz, oci:// reference or mirror repository (default the upstream repository)."""
    image_registry: str
    """registry prefix the operator image (unless image.repository is given) is pulled from, e.g. registry.example.com/mirror (default unset: upstream registries)."""
    values: Mapping[str, Any]
    """any other chart value, merged last (default {})."""


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
            "repository": image.get("repository") or mirrored_image(KUBERAY_OPERATOR_IMAGE, args.get("image_registry")),
            "tag": image.get("tag") or f"v{version}",
        },
    }
    if args.get("resources"):
        values["resources"] = {kind: dict(items) for kind, items in args["resources"].items()}
    if args.get("node_selector"):
        values["nodeSelector"] = dict(args["node_selector"])
    if args.get("tolerations"):
        values["tolerations"] = [dict(item) for item in args["tolerations"]]
    if args.get("feature_gates"):
        values["featureGates"] = feature_gate_values(args["feature_gates"])
    return deep_merge(values, args.get("values") or {})


class KubeRayOperator(pulumi.ComponentResource):
    """One KubeRay operator with namespace-scoped rights. Depend it on KubeRayCrds."""

    namespace: pulumi.Output[str]
    """Namespace the operator runs in."""
    release_name: pulumi.Output[str]
    """Helm release name of the operator."""

    def __init__(self, name: str, args: KubeRayOperatorArgs, opts: Optional[pulumi.ResourceOptions] = None):
        label = component_label("KubeRayOperator", name)
        check_args(label, KubeRayOperatorArgs, args)
        problem = resources_problem(args.get("resources") or {})
        if problem:
            raise ComponentArgsError(label, f"resources{'.' + problem[0] if problem[0] else ''}", problem[1])
        version = args.get("version") or KUBERAY_VERSION
        check_chart_source(label, args.get("source"), KUBERAY_OPERATOR_CHART, version)
        check_image_registry(label, args.get("image_registry"))
        super().__init__("raykube:index:KubeRayOperator", name, None, opts)
        self.chart = pinned_chart(
            f"{name}-chart",
            chart=KUBERAY_OPERATOR_CHART,
            version=version,
            repository=KUBERAY_HELM_REPOSITORY,
            namespace=args["namespace"],
            release="kuberay-operator",
            skip_crds=True,  # KubeRayCrds owns them, once per cluster
            values=operator_values(args),
            source=args.get("source"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.namespace = pulumi.Output.from_input(args["namespace"])
        self.release_name = pulumi.Output.from_input("kuberay-operator")
        self.register_outputs({"namespace": self.namespace, "release_name": self.release_name})
