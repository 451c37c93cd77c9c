"""Readers and validators for the verbatim upstream data in ../shared/upstream.

Nothing here is copied into the project: tests read the files where they lie.
A missing file skips the test locally and fails it in CI (CI=true).
"""
from __future__ import annotations

import copy
import functools
import os
import re
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = ROOT.parent / "shared" / "upstream"
RAYCLUSTER_CRD = "kuberay/ray-operator/config/crd/bases/ray.io_rayclusters.yaml"
RAYJOB_CRD = "kuberay/ray-operator/config/crd/bases/ray.io_rayjobs.yaml"
RAYSERVICE_CRD = "kuberay/ray-operator/config/crd/bases/ray.io_rayservices.yaml"
# The copy of the release's config/crd/bases lacks RayCronJob; the chart's crds/ of the same release has it.
RAYCRONJOB_CRD = "charts/kuberay-operator/crds/ray.io_raycronjobs.yaml"
KUBERAY_CRDS = (
    RAYCLUSTER_CRD,
    RAYJOB_CRD,
    RAYSERVICE_CRD,
    RAYCRONJOB_CRD,
)
# The Prometheus operator's CRDs (v0.93.0, the schemas kube-prometheus-stack 88.5.3 ships).
PROMETHEUS_OPERATOR_CRDS = tuple(
    f"prometheus-operator/crds/monitoring.coreos.com_{plural}.yaml" for plural in ("podmonitors", "servicemonitors", "prometheusrules")
)
KUBE_PROMETHEUS_STACK_VALUES = "kube-prometheus-stack/values.yaml"
KUBERAY_OPERATOR_VALUES = "kuberay/helm-chart/kuberay-operator/values.yaml"
METRICS_SERVER_VALUES = "metrics-server/values.yaml"
FLANNEL_VALUES = "flannel/values.yaml"


def require_shared(path: Path, what: str) -> Path:
    """A file from ../shared: a missing one skips the test locally and fails it in CI."""
    if not path.exists():
        message = f"{what} {path} is missing"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def upstream_path(relative: str) -> Path:
    return require_shared(UPSTREAM / relative, "upstream reference")


@functools.lru_cache(maxsize=None)
def load_upstream(relative: str) -> Any:
    """One upstream YAML file, parsed once (treat it as read-only)."""
    with open(upstream_path(relative), encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _closed(schema: Any) -> Any:
    """The schema with every structural object closed (additionalProperties: false).

    The API server prunes fields a structural schema does not declare; closing
    the schema turns that silent loss of a user's setting into a test failure.
    """
    if isinstance(schema, dict):
        schema = {key: _closed(value) for key, value in schema.items()}
        if (
            schema.get("type") == "object"
            and "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    return schema


@functools.lru_cache(maxsize=None)
def crd_validator(crd_file: str) -> jsonschema.protocols.Validator:
    crd = load_upstream(crd_file)
    version = next(item for item in crd["spec"]["versions"] if item["name"] == "v1")
    schema = _closed(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    return jsonschema.Draft7Validator(schema)


def _validate_custom(obj: dict[str, Any], crd_file: str) -> None:
    errors = sorted(crd_validator(crd_file).iter_errors(obj), key=lambda error: list(error.absolute_path))
    if errors:
        details = "\n".join(f"  {'.'.join(map(str, error.absolute_path))}: {error.message[:300]}" for error in errors[:10])
        raise AssertionError(f"{obj.get('kind')} {obj.get('metadata', {}).get('name')} fails its CRD's schema ({crd_file}):\n{details}")


def validate_raycluster(obj: dict[str, Any]) -> None:
    _validate_custom(obj, RAYCLUSTER_CRD)


def validate_rayjob(obj: dict[str, Any]) -> None:
    _validate_custom(obj, RAYJOB_CRD)


def validate_rayservice(obj: dict[str, Any]) -> None:
    _validate_custom(obj, RAYSERVICE_CRD)


def validate_kuberay(obj: dict[str, Any]) -> None:
    """A ray.io/v1 object against the schema of its kind."""
    {"RayCluster": validate_raycluster, "RayJob": validate_rayjob, "RayService": validate_rayservice}[obj["kind"]](obj)


CUSTOM_RESOURCE_CRDS = {
    ("ray.io/v1", "RayCluster"): RAYCLUSTER_CRD,
    ("ray.io/v1", "RayJob"): RAYJOB_CRD,
    ("ray.io/v1", "RayService"): RAYSERVICE_CRD,
    **{("monitoring.coreos.com/v1", kind): crd for kind, crd in zip(("PodMonitor", "ServiceMonitor", "PrometheusRule"), PROMETHEUS_OPERATOR_CRDS)},
}


def is_custom_resource(obj: dict[str, Any]) -> bool:
    """A kind of a CRD (KubeRay's, the Prometheus operator's), not of Kubernetes itself."""
    group, _, _version = obj["apiVersion"].rpartition("/")
    return "." in group and not group.endswith("k8s.io")


def validate_object(obj: dict[str, Any], version: str) -> None:
    """Any object raykube writes: a custom resource against its CRD's schema (closed), the rest
    against Kubernetes' official schema of `version`."""
    if is_custom_resource(obj):
        crd = CUSTOM_RESOURCE_CRDS.get((obj["apiVersion"], obj["kind"]))
        assert crd is not None, f"no CRD schema known for {obj['apiVersion']} {obj['kind']}: add it to CUSTOM_RESOURCE_CRDS"
        _validate_custom(obj, crd)
    else:
        validate_kubernetes(obj, version)


def validate_kubernetes(obj: dict[str, Any], version: str) -> None:
    """Strict validation against the official OpenAPI schema of `version`."""
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        raise AssertionError(f"{obj.get('kind')} {obj.get('metadata', {}).get('name')} invalid for Kubernetes {version}: {error}") from None


def _commented_paths(text: str) -> set[str]:
    """Value paths a chart documents only in comments (`# watchNamespace:`,
    `resources:` then `  # requests:`): real options, left unset upstream."""
    stack: list[tuple[int, str]] = []
    documented: set[str] = set()
    for line in text.splitlines():
        live = re.match(r"^(\s*)([A-Za-z][A-Za-z0-9_]*):", line)
        commented = re.match(r"^(\s*)#\s?([A-Za-z][A-Za-z0-9_]*):(\s|$)", line)
        match = live or commented
        if not match:
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([key for _, key in stack] + [match.group(2)])
        if live:
            stack.append((indent, match.group(2)))
        else:
            documented.add(path)
    return documented


def _unknown_paths(values: Any, upstream: Any, path: str) -> Iterator[str]:
    if not isinstance(values, dict):
        return
    if not isinstance(upstream, dict) or not upstream:
        return  # a free-form map upstream ({} or null): any key is the user's
    for key, value in values.items():
        if key not in upstream:
            yield f"{path}{key}"
        else:
            yield from _unknown_paths(value, upstream[key], f"{path}{key}.")


def unknown_chart_values(values: dict[str, Any], values_file: str) -> list[str]:
    """Value paths that the chart's upstream values.yaml does not define."""
    upstream = load_upstream(values_file)
    documented = _commented_paths(upstream_path(values_file).read_text(encoding="utf-8"))
    return [
        path
        for path in _unknown_paths(values, upstream, "")
        if not any(path == doc or path.startswith(doc + ".") for doc in documented)
    ]
