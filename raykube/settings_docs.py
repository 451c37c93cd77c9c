"""`python -m raykube.settings_docs [--check]`: docs/settings.md's reference, from the settings model.

Every key, its type, range and default come from the pydantic models in
raykube/settings/ (what `raykube render` and `pulumi up` validate), so the
reference cannot drift from them. What a validator checks beyond a field's
own type and bounds (a name's length, a set of allowed values, a rule that
spans two keys) is in RULES below, next to the constant it is built from
where there is one; tests/test_settings_reference.py probes each numeric
rule against the validators and fails when a key named here is gone.
--check exits 1 when docs/settings.md is stale.
"""
from __future__ import annotations

import argparse
import json
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from raykube.component_docs import replace_between_markers

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "settings.md"
START, END = "<!-- settings:start -->", "<!-- settings:end -->"
GENERATOR = "python -m raykube.settings_docs"


def rules() -> dict[str, str]:
    """What validators check beyond the field's type and bounds, by key (the generated `allowed` column)."""
    from components.credentials_renewer import INTERVALS
    from raykube.code_folder import MAX_CODE_BYTES
    from raykube.settings.namespaces import SYSTEM_NAMESPACES, SYSTEM_PREFIXES
    from raykube.settings.observability import RAY_DASHBOARDS
    from raykube.settings.ray_cluster import RAY_CLUSTER_NAME_MAX
    from raykube.settings.ray_jobs import RAY_JOB_NAME_MAX
    from components.ray_service import RAY_SERVICE_NAME_MAX
    from raykube.settings.operator import KUBERAY_VERSION_RANGE, RAY_BROKEN_RANGE, RAY_MIN_FOR_KUBERAY
    from raykube.settings.stack import KUBERNETES_MINOR_RANGE

    low, high = KUBERNETES_MINOR_RANGE
    dotted = lambda version: ".".join(map(str, version))
    refused = ", ".join(f"`{name}`" for name in SYSTEM_NAMESPACES) + ", " + ", ".join(f"`{prefix}*`" for prefix in SYSTEM_PREFIXES)
    # Newest KubeRay first: each entry holds up to the minor before the previous entry's.
    ray_for_kuberay = "; ".join(
        f"KubeRay {dotted(since)}" + (f" to {dotted((newer[0][0], newer[0][1] - 1))}" if newer else " and later") + f": Ray {dotted(minimum)}+"
        for (since, minimum), newer in zip(RAY_MIN_FOR_KUBERAY, [None, *RAY_MIN_FOR_KUBERAY])
    )
    quantities = "resource names and quantities as [the settings check them](#what-the-settings-refuse-as-kubernetes-and-aws-would); a limit at least its request; a GPU group needs an `nvidia.com/gpu` limit"
    labels = "label keys and values"
    tolerations = "tolerations as core/v1 takes them"
    env = "environment variable names"
    from components.kuberay_crds import crd_file_names

    chart_source = "at most one of `path`, `tgz`, `oci`, `repository`; credentials, certificates and `allowHttp` with `oci` or `repository` only"
    local_chart = "a folder (relative to the project) whose Chart.yaml names the chart and the version raykube installs"
    packaged_chart = "a file (relative to the project) holding <chart>/Chart.yaml of the chart and the version raykube installs"
    mirror_url = "an https:// URL (http:// with `allowHttp`), no credentials, query or fragment"
    return {
        "operator.resources": quantities.replace("; a GPU group needs an `nvidia.com/gpu` limit", ""),
        "operator.nodeSelector": labels,
        "operator.tolerations": tolerations,
        "rayClusters[].head.nodeSelector": labels,
        "rayClusters[].head.labels": labels,
        "rayClusters[].head.tolerations": tolerations,
        "rayClusters[].head.env": env,
        "rayClusters[].workerGroups[].nodeSelector": labels,
        "rayClusters[].workerGroups[].labels": labels,
        "rayClusters[].workerGroups[].tolerations": tolerations,
        "rayClusters[].workerGroups[].env": env,
        "rayClusters[].dashboardIngress.className": "a DNS subdomain",
        "rayClusters[].dashboardIngress.host": "a DNS name (`*.example.com` allowed); no IP address, scheme, port or path",
        "rayClusters[].dashboardIngress.annotations": "annotation keys as label keys; at most 256 KiB in all",
        "rayClusters[].dashboardIngress.tls.secretName": "a DNS subdomain",
        "awsAccess.secretName": "a DNS subdomain",
        "awsAccess.serviceAccountName": "a DNS subdomain",
        "networkPolicies.headAccessFrom[].podLabels": labels,
        "observability.dashboardLabel": labels,
        "kubernetesVersion": f'quoted "1.{low}" to "1.{high}" (or "1.N.P"); 1.31 or later with `awsAccess.issuerBucket`',
        "adoptNamespaces": "namespaces of `rayClusters[]`, each once",
        "network": "local target only",
        "network.podCidr": "an IPv4 CIDR block",
        "network.serviceCidr": "an IPv4 CIDR block, not overlapping `podCidr`",
        "kubeadm": "local target only",
        "kubeadm.advertiseAddress": "an IP address",
        "metrics": "local and eks targets only (AKS and GKE run their own metrics-server)",
        "metrics.kubeletRequestTimeoutSeconds": "at most 0.9 × `resolutionSeconds` (metrics-server refuses more)",
        "operator.version": f"a KubeRay release x.y.z from {dotted(KUBERAY_VERSION_RANGE[0])} to {dotted(KUBERAY_VERSION_RANGE[1])}.x; at least 1.5.1 with `auth.mode: token`, 1.6.0 with `upgradeStrategy: Recreate`, 1.7.0 with the rocksdb GCS backend",
        "operator.featureGates": "`GCSFaultToleranceEmbeddedStorage` cannot be turned off while a cluster uses rocksdb",
        "rayClusters": "at least one; each (namespace, name) once",
        "rayClusters[].name": f"a DNS-1035 label of at most {RAY_CLUSTER_NAME_MAX} characters",
        "rayClusters[].namespace": f"a DNS-1123 label of at most 63 characters; not {refused}, nor the observability, renewer or an Ingress controller's namespace",
        "rayClusters[].rayVersion": (
            "a release x.y.z; the installed `ray` package's version unless `allowVersionMismatch`, and never newer than its minor; "
            f"one the operator runs ({ray_for_kuberay}; never {dotted(RAY_BROKEN_RANGE[0])} to {dotted(RAY_BROKEN_RANGE[1])}); "
            "at least 2.52 with `auth.mode: token`, 2.57 with rocksdb"
        ),
        "rayClusters[].image": "an image reference; a tag that starts with the Ray version unless `allowVersionMismatch`",
        "rayClusters[].pythonVersion": 'a quoted minor version such as "3.11"',
        "rayClusters[].imageDigest": "`sha256:` and 64 lowercase hex digits; GPU groups then need an `image` of their own",
        "rayClusters[].head.resources": quantities,
        "rayClusters[].head.rayResources": "every amount ≥ 0; CPU, GPU and memory whole numbers",
        "rayClusters[].workerGroups": "group names unique; with a head of `CPU: 0`, some group must be able to have a worker",
        "rayClusters[].workerGroups[].name": "a DNS-1123 label of at most 40 characters",
        "rayClusters[].workerGroups[].resources": quantities + "; `hpa` groups need a cpu request",
        "rayClusters[].workerGroups[].rayResources": "every amount ≥ 0; CPU, GPU and memory whole numbers",
        "rayClusters[].workerGroups[].replicas": "`fixed` groups only, and required there",
        "rayClusters[].workerGroups[].minReplicas": "`ray` and `hpa` groups only; `hpa`: at least 1",
        "rayClusters[].workerGroups[].maxReplicas": "`ray` and `hpa` groups only; at least `minReplicas`",
        "rayClusters[].workerGroups[].hpa": "`hpa` groups only",
        "rayClusters[].workerGroups[].image": "an image reference; a GPU group cannot take a CPU-only `rayproject/ray` image",
        "rayClusters[].workerGroups[].idleTimeoutSeconds": "`ray` groups with `autoscaler.version: v2` only",
        "rayClusters[].dashboardIngress.path": "starts with `/`; a sub-path needs a rewrite (written for ingress-nginx classes, else in `annotations`)",
        "rayClusters[].dashboardIngress.tls.hosts": "DNS names as `host`; required unless `host` is set",
        "rayClusters[].gcsFaultTolerance": "rocksdb: `storage` (`size` or `claimName`), no `redis` or `externalStorageNamespace`; redis: `redis.address`, no `storage`",
        "rayClusters[].gcsFaultTolerance.storage.size": "a positive quantity with a unit, e.g. 10Gi",
        "rayClusters[].gcsFaultTolerance.storage.claimName": "a DNS-1123 label; not with `size`, `storageClassName` or `accessModes`",
        "rayClusters[].gcsFaultTolerance.redis.address": "host:port (or redis://host:port)",
        "awsAccess.mode": "per target: local secret, webIdentity; eks also irsa, podIdentity; aks and gke secret, webIdentity",
        "awsAccess.region": "a region of botocore's endpoint data; required unless mode is none (here or `AWS_REGION`)",
        "awsAccess.bucket": "an S3 bucket name (3 to 63 lowercase letters, digits, `.`, `-`); required unless mode is none",
        "awsAccess.eksClusterName": "podIdentity only, and required there",
        "awsAccess.roleArn": "an IAM role ARN",
        "awsAccess.trustedPrincipals": "IAM principal ARNs; secret mode needs them or `roleArn`",
        "awsAccess.renewBeforeSeconds": "below `sessionDurationSeconds`",
        "awsAccess.oidcProviderArn": "an IAM OIDC provider ARN; irsa needs it (with `oidcIssuer`) or `roleArn`",
        "awsAccess.oidcIssuer": "an https host and path (not http); not on local (use `issuerBucket`)",
        "awsAccess.issuerBucket": "local only; 3 to 63 lowercase letters, digits, `-` (no `.`); webIdentity or secret mode; not with `oidcIssuer`",
        "awsAccess.mountPath": "an absolute directory of its own (not /etc, /home, /usr, /tmp)",
        "awsAccess.renewal": "secret mode only; cluster needs `oidcIssuer` or `issuerBucket`",
        "awsAccess.renewalIntervalMinutes": f"one of {', '.join(map(str, INTERVALS))}; at most half of `sessionDurationSeconds`",
        "awsAccess.renewerNamespace": "a DNS-1123 label; not a Ray namespace",
        "networkPolicies.headAccessFrom": "peers: pods (`namespace`, `podLabels`) or an IP block (`cidr`, `exceptCidrs`), not both",
        "networkPolicies.apiServerCidrs": "CIDR blocks, at least one",
        "networkPolicies.apiServerPorts": "TCP ports 1 to 65535, at least one",
        "networkPolicies.httpsEgressCidrs": "CIDR blocks, at least one",
        "networkPolicies.ingressControllerNamespace": "a DNS-1123 label; not a Ray namespace",
        "networkPolicies.enforcer": "local target only",
        "observability.namespace": "a DNS-1123 label; not a Ray namespace",
        "observability.monitorLabels": "label keys and values; install: keeps `release: kube-prometheus-stack`",
        "observability.dashboards": f"each of {', '.join(f'`{name}`' for name in RAY_DASHBOARDS)} at most once",
        "observability.prometheusUrl": "http:// or https://; not with mode install",
        "observability.grafanaUrl": "http:// or https://; not with mode install",
        "observability.grafanaBrowserUrl": "http:// or https://",
        "observability.kubePrometheusStack.values": "mode install only",
        "rayJobs[].name": f"a DNS-1035 label of at most {RAY_JOB_NAME_MAX} characters; each (namespace, name) once",
        "rayJobs[].namespace": "a namespace of `rayClusters[]`",
        "rayJobs[].entrypoint": "not empty",
        "rayJobs[].code": f"a folder inside the project, at most {MAX_CODE_BYTES // 2**20} MiB once git's exclusions, virtualenvs and caches are left out; needs `awsAccess`; not with `runtimeEnv.working_dir`",
        "rayJobs[].cluster": "a RayCluster of `rayClusters[]` in the job's namespace; then no `head`, `workerGroups`, `autoscaler`",
        "rayJobs[].workerGroups": "`ray` or `fixed` groups (no `hpa`)",
        "rayJobs[].submissionMode": "SidecarMode only on the job's own cluster",
        "rayJobs[].ttlSecondsAfterFinished": "only with `shutdownAfterJobFinishes` true",
        "rayServices[].name": f"a DNS-1035 label of at most {RAY_SERVICE_NAME_MAX} characters; each (namespace, name) once",
        "rayServices[].namespace": "a namespace of `rayClusters[]`",
        "rayServices[].code": f"a folder inside the project, at most {MAX_CODE_BYTES // 2**20} MiB, as `rayJobs[].code`; needs `awsAccess`; not with an application's `runtimeEnv.working_dir`",
        "rayServices[].workerGroups": "`ray` or `fixed` groups (no `hpa`), names unique",
        "rayServices[].upgradeStrategy": "NewClusterWithIncrementalUpgrade: the operator's RayServiceIncrementalUpgrade gate on (KubeRay 1.7's default), `clusterUpgradeOptions`, a `ray` worker group",
        "rayServices[].clusterUpgradeOptions": "NewClusterWithIncrementalUpgrade only; `stepSizePercent` at most `maxSurgePercent`",
        "rayServices[].serviceUnhealthySecondThreshold": "refused: KubeRay ignores it since 1.1",
        "rayServices[].deploymentUnhealthySecondThreshold": "refused: KubeRay ignores it since 1.1",
        "rayServices[].serveConfig.applications": "at least one; names and route prefixes unique",
        "rayServices[].serveConfig.applications[].importPath": "module:attribute (one colon inside) or module.attribute",
        "rayServices[].serveConfig.applications[].routePrefix": "starts with `/`",
        "rayServices[].serveConfig.applications[].runtimeEnv": "working_dir, py_modules: remote URIs (s3://, gs://, https://) or local:// directories",
        "rayServices[].serveConfig.applications[].deployments": "names unique",
        "rayServices[].serveConfig.applications[].deployments[].numReplicas": "not with `autoscaling`",
        "rayServices[].serveConfig.applications[].deployments[].autoscaling.maxReplicas": "at least `minReplicas`",
        "rayServices[].serveConfig.applications[].deployments[].autoscaling.initialReplicas": "between `minReplicas` and `maxReplicas`",
        "rayServices[].serveConfig.extra": "keys of Ray Serve 2.60's config but `applications`; `http_options.port` only 8000",
        "rayServices[].serveConfig.applications[].extra": "keys of Ray Serve 2.60's application schema without a typed setting; not `host`, `port`",
        "rayServices[].serveConfig.applications[].deployments[].extra": "keys of Ray Serve 2.60's deployment schema without a typed setting",
        "networkPolicies.serveAccessFrom": "peers: pods (`namespace`, `podLabels`) or an IP block (`cidr`, `exceptCidrs`), not both",
        "sources.imageRegistry": "host[:port][/path], the host a name with `.` or `:port` (or localhost); no scheme",
        "sources.charts.kuberayOperator": chart_source,
        "sources.charts.metricsServer": chart_source + "; local and eks targets only",
        "sources.charts.flannel": chart_source + "; local target only",
        "sources.charts.kubePrometheusStack": chart_source + "; `observability.mode: install` only",
        "sources.charts.kuberayOperator.path": local_chart,
        "sources.charts.kuberayOperator.tgz": packaged_chart,
        "sources.charts.kuberayOperator.oci": "oci://host[:port]/path/<chart name>, no tag or digest",
        "sources.charts.kuberayOperator.repository": mirror_url,
        "sources.charts.kuberayOperator.caFile": "a file",
        "sources.charts.kuberayOperator.certFile": "a file; with `keyFile`",
        "sources.charts.kuberayOperator.keyFile": "a file; with `certFile`",
        "sources.charts.kuberayOperator.username": "with `password`; oci or repository only",
        "sources.charts.kuberayOperator.password": "a `secure:` value (refused as plaintext); with `username`",
        "sources.crds": "one of `path`, `baseUrl`; not with `operator.installCrds: false`",
        "sources.crds.path": "a folder holding " + ", ".join(crd_file_names()),
        "sources.crds.baseUrl": mirror_url,
        "sources.manifests.kubeNetworkPolicies": "one of `path`, `url`; `networkPolicies.enforcer: kube-network-policies` only",
        "sources.manifests.kubeNetworkPolicies.path": "a file",
        "sources.manifests.kubeNetworkPolicies.url": mirror_url,
    }


# Kubernetes stores these as int32: the bound the API server enforces.
_INT32_MAX = 2**31 - 1


def _bounds(info: FieldInfo) -> str:
    low = high = None
    for item in info.metadata:
        low = getattr(item, "ge", low) if getattr(item, "ge", None) is not None else low
        high = getattr(item, "le", high) if getattr(item, "le", None) is not None else high
    if low is None and high is None:
        return ""
    shown = lambda value: "2³¹−1" if value == _INT32_MAX else f"{value:g}" if isinstance(value, float) else str(value)
    if high is None:
        return f"≥ {shown(low)}"
    if low is None:
        return f"≤ {shown(high)}"
    return f"{shown(low)} to {shown(high)}"


def _strip_optional(annotation: Any) -> tuple[Any, bool]:
    """The type under Optional[...] and Annotated[...] (a checked string is a string)."""
    optional = False
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            annotation, optional = args[0], True
    if typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation, optional


def _model(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The settings model a field holds (itself, or as list items), and whether it is a list."""
    annotation, _ = _strip_optional(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        item, _ = _strip_optional(item)
        if isinstance(item, type) and issubclass(item, BaseModel):
            return item, True
    return None, False


def _type(annotation: Any) -> str:
    annotation, _ = _strip_optional(annotation)
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " | ".join(f"`{value}`" for value in typing.get_args(annotation))
    if origin is list:
        (item,) = typing.get_args(annotation)
        inner = _type(item)
        return f"list of {inner}"
    if origin is dict:
        return "map"
    model, _ = _model(annotation)
    if model is not None:
        return "mapping"
    from raykube.settings.sources import SecretText

    if annotation is SecretText:
        return "secret string"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True, exclude_defaults=True, mode="json")
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _shown(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`' if value.replace(".", "").isdigit() else f"`{value}`"
    return f"`{json.dumps(value, separators=(', ', ': '), ensure_ascii=False)}`"


def _cell(text: str) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def rows(model: type[BaseModel], prefix: str, instance: Any, seen: dict[type, str]) -> list[tuple[str, str, str, str, str]]:
    """(key, type, default, allowed, description) per setting, depth first in declaration order."""
    found: list[tuple[str, str, str, str, str]] = []
    extra = rules()
    for name, info in model.model_fields.items():
        key = f"{prefix}{info.alias or name}"
        if info.default_factory is not None:
            default = info.default_factory()
        elif info.default is PydanticUndefined:
            default = PydanticUndefined
        else:
            default = info.default
        if instance is not None and instance is not PydanticUndefined:
            default = getattr(instance, name)
        nested, is_list = _model(info.annotation)
        allowed = "; ".join(part for part in (_bounds(info), extra.get(key, "")) if part)
        shown = "required" if default is PydanticUndefined else _shown(default)
        if nested is not None and not is_list and nested in seen and seen[nested] != key:
            found.append((key, "mapping", shown, allowed, f"{info.description or ''}; the fields of `{seen[nested]}`"))
            continue
        if nested is not None and is_list and nested in seen:
            found.append((key, "list of mappings", shown, allowed, f"{info.description or ''}; each as `{seen[nested]}[]`"))
            continue
        if nested is not None:
            seen[nested] = key
            kind = "list of mappings" if is_list else "mapping"
            # A section's own row when it says something its fields do not: a default other than its fields', or a rule.
            own_default = is_list or (default is not None and default is not PydanticUndefined and _plain(default) not in ({}, None))
            if own_default or allowed or default is None:
                found.append((key, kind, shown if (is_list or own_default or default is None) else "", allowed, info.description or ""))
            child_instance = None if is_list or default is None else default
            found += rows(nested, f"{key}[]." if is_list else f"{key}.", child_instance, seen)
            continue
        found.append((key, _type(info.annotation), shown, allowed, info.description or ""))
    return found


def reference() -> str:
    from raykube.settings import Settings

    lines = [START, "", f"Generated from the settings model (raykube/settings/) by `{GENERATOR}`; do not edit by hand.", ""]
    lines += ["| key | type | default | allowed | description |", "|---|---|---|---|---|"]
    for key, kind, default, allowed, description in rows(Settings, "", None, {}):
        lines.append(f"| `{key}` | {_cell(kind)} | {_cell(default)} | {_cell(allowed)} | {_cell(description)} |")
    lines += ["", END]
    return "\n".join(lines)


def keys() -> list[str]:
    """Every key the reference lists (for tests)."""
    from raykube.settings import Settings

    return [row[0] for row in rows(Settings, "", None, {})]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=GENERATOR, description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/settings.md is stale, change nothing")
    args = parser.parse_args(argv)
    return replace_between_markers(DOC, START, END, reference(), GENERATOR, "settings reference", check=args.check)


if __name__ == "__main__":
    sys.exit(main())
