"""Every Kubernetes object a render writes, against Kubernetes' official schema (strict).

A value the API server would refuse (a misspelled field, a string where it
wants a number, a negative replica count) must stop the render, not come out
looking clean in a pull request and fail later at `pulumi up`. The schemas are
kubernetes_validate's (offline, one per Kubernetes minor version). Custom
resources (ray.io, monitoring.coreos.com) are not in them: the tests check
those against their CRDs (tests/helpers/upstream.py).
"""
from __future__ import annotations

from typing import Any, Iterable, Optional


class SchemaError(Exception):
    """An object Kubernetes would refuse; the message names the object and the field, on one line."""


def is_custom_resource(obj: dict[str, Any]) -> bool:
    """A kind of a CRD (KubeRay's, the Prometheus operator's), not of Kubernetes itself."""
    group, _, _version = str(obj.get("apiVersion", "")).rpartition("/")
    return "." in group and not group.endswith("k8s.io")


def _field(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(the object)"


def _under(field: str, secret_paths: list[str]) -> bool:
    return any(secret in (".", "") or field == secret or field.startswith((secret + ".", secret + "[")) for secret in secret_paths)


def check_object(obj: dict[str, Any], version: str, where: str, secret_paths: Optional[list[str]] = None) -> None:
    """SchemaError if `obj` fails the official schema of Kubernetes `version` (custom resources pass)."""
    import kubernetes_validate
    import kubernetes_validate.utils
    import kubernetes_validate.version

    if is_custom_resource(obj):
        return
    metadata = obj.get("metadata") or {}
    name = "/".join(part for part in (metadata.get("namespace"), metadata.get("name")) if part)
    what = f"{obj.get('kind')} {name} ({where})"
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        field = _field(error.path)
        # The message quotes the value; a secret's value must not reach a terminal or a CI log.
        message = f"fails the schema's {error.validator!r} rule" if _under(field, secret_paths or []) else error.message
        message = " ".join(message.split())  # one line, whatever the value's repr held
        raise SchemaError(f"{what} is invalid for Kubernetes {version}: {field}: {message[:300]}") from None
    except kubernetes_validate.SchemaNotFoundError:
        raise SchemaError(f"{what}: Kubernetes {version} has no {obj.get('kind')} in {obj.get('apiVersion')}") from None
    except kubernetes_validate.utils.VersionNotSupportedError:
        raise SchemaError(f"{what}: kubernetes-validate {kubernetes_validate.version.__version__} has no schemas for Kubernetes {version}") from None


def check_resources(resources, version: str, path_of) -> int:
    """Check every Kubernetes object of an offline run; the number checked."""
    checked = 0
    for resource in resources:
        if not resource.is_kubernetes_object or is_custom_resource(resource.inputs):
            continue
        check_object(resource.revealed_inputs, version, path_of(resource) or resource.name, resource.secret_paths)
        checked += 1
    return checked
