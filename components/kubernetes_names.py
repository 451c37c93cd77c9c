"""Kubernetes' rules for names, label and annotation keys and values, and host names.

The API server's own validation (k8s.io/apimachinery/pkg/util/validation),
written once so the settings refuse at `pulumi preview` what the API server
would refuse halfway through `pulumi up`. Each function returns why a value is
refused, or None.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any, Optional

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# The name part of a qualified name (label and annotation keys) and a label value.
_NAME_PART = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
LABEL_MAX = 63
SUBDOMAIN_MAX = 253
# All annotations of one object together (TotalAnnotationSizeLimitB).
ANNOTATIONS_MAX_BYTES = 256 * 1024


def subdomain_problem(name: Any) -> Optional[str]:
    """A DNS-1123 subdomain: most object names (Secrets, ServiceAccounts, IngressClasses), at most 253."""
    if not isinstance(name, str) or len(name) > SUBDOMAIN_MAX or not DNS1123_SUBDOMAIN.match(name):
        return f"{name!r} is not a Kubernetes name (lowercase letters, digits, '-' and '.', at most {SUBDOMAIN_MAX} characters)"
    return None


def qualified_name_problem(key: Any) -> Optional[str]:
    """A label or annotation key: [a DNS subdomain prefix /] a name of at most 63 characters."""
    if not isinstance(key, str):
        return f"{key!r} is not a key (a string)"
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or subdomain_problem(prefix)):
        return f"{key!r}: the part before '/' must be a DNS subdomain such as example.com"
    if len(name) > LABEL_MAX or not _NAME_PART.match(name):
        return f"{key!r} is not a key: at most {LABEL_MAX} letters, digits, '-', '_' and '.', starting and ending with a letter or digit (optionally prefix/ first)"
    return None


def label_value_problem(value: Any) -> Optional[str]:
    """A label value: empty, or at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit."""
    if not isinstance(value, str):
        return f"{value!r} is not a label value (quote it: labels are strings)"
    if value and (len(value) > LABEL_MAX or not _NAME_PART.match(value)):
        return f"{value!r} is not a label value: at most {LABEL_MAX} letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
    return None


def labels_problem(labels: Any) -> Optional[str]:
    """Why a {key: value} label map would be refused (keys and values)."""
    for key, value in dict(labels).items():
        problem = qualified_name_problem(key) or label_value_problem(value)
        if problem:
            return problem
    return None


def annotations_problem(annotations: Any) -> Optional[str]:
    """Annotation keys are qualified names; the values any text, all together at most 256 KiB."""
    size = 0
    for key, value in dict(annotations).items():
        problem = qualified_name_problem(key)
        if problem:
            return problem
        if not isinstance(value, str):
            return f"{key}: {value!r} is not text (quote it: annotation values are strings)"
        size += len(key.encode()) + len(value.encode())
    if size > ANNOTATIONS_MAX_BYTES:
        return f"annotations take {size} bytes; Kubernetes takes at most {ANNOTATIONS_MAX_BYTES}"
    return None


def host_problem(host: Any) -> Optional[str]:
    """An Ingress host: a DNS subdomain, optionally `*.` first; no IP address, port or scheme."""
    if not isinstance(host, str):
        return f"{host!r} is not a host name"
    try:
        ipaddress.ip_address(host)
        return f"{host!r} is an IP address: an Ingress host must be a DNS name (leave host out to match any)"
    except ValueError:
        pass
    bare = host[2:] if host.startswith("*.") else host
    if subdomain_problem(bare) or "." not in bare and host.startswith("*."):
        return f"{host!r} is not a host name (lowercase DNS name such as ray.example.com, or *.example.com; no scheme, port or path)"
    return None


# An image reference as container runtimes parse it (github.com/distribution/reference):
# [domain[:port]/]path[:tag][@digest], the path lowercase.
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?"
_PATH = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*$")
_DOMAIN_ONLY = re.compile(rf"^{_DOMAIN}$")


def _repository_ok(repository: str) -> bool:
    # The first component is a registry only if it looks like one (a '.' or ':', or localhost),
    # as runtimes split it; otherwise it is part of the (lowercase) path, as in rayproject/ray.
    first, _, rest = repository.partition("/")
    if rest and (("." in first or ":" in first or first == "localhost") and _DOMAIN_ONLY.match(first)):
        return bool(_PATH.match(rest))
    return bool(_PATH.match(repository))
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")


def image_problem(image: Any) -> Optional[str]:
    """Why a runtime could not pull `image` by its name (not whether it exists), or None."""
    if not isinstance(image, str):
        return f"{image!r} is not an image reference"
    name, _, digest = image.partition("@")
    repository, tag = name, ""
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repository, tag = name.rsplit(":", 1)
    if not _repository_ok(repository) or len(repository) > 255:
        return f"{image!r} is not an image reference: [registry/]repository[:tag][@sha256:digest], the repository lowercase"
    if (":" in last and not _TAG.match(tag)) or (digest and not _DIGEST.match(digest)):
        return f"{image!r} is not an image reference: a tag is letters, digits, '_', '.', '-' (at most 128), a digest sha256:<hex>"
    return None


def repository_problem(repository: Any) -> Optional[str]:
    """An image repository alone (no tag, no digest)."""
    if not isinstance(repository, str) or "@" in repository or ":" in repository.rsplit("/", 1)[-1]:
        return f"{repository!r} is not an image repository ([registry/]path, without a tag: set tag)"
    return image_problem(repository)


def tag_problem(tag: Any) -> Optional[str]:
    if not isinstance(tag, str) or not _TAG.match(tag):
        return f"{tag!r} is not an image tag (letters, digits, '_', '.', '-'; at most 128)"
    return None
