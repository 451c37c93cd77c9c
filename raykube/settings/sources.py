"""Air-gapped sources: where charts, the KubeRay CRDs, URL manifests and images come from.

Every field is optional; with none set, raykube fetches from upstream exactly
as before (docs/air-gapped.md). Local paths are relative to the project (the
folder of Pulumi.yaml, where `pulumi up` runs); what they must hold is
checked here, with the components' own rules (components/sources.py).
A repository's password (and username) are Pulumi secrets: a `secure:` value
of the stack file, passed on as secret Outputs, shown as "[secret]".
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

from pydantic import Field, PlainSerializer, PlainValidator, WithJsonSchema

from raykube.redaction import SECRET
from raykube.settings.model import Model

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class SecretText:
    """A value the stack file gives as `secure:`. Offline (render, tests) the ciphertext is never decrypted:
    `value` is None and stands as "[secret]". Its repr never shows the value."""

    __slots__ = ("value", "written_secure")

    def __init__(self, value: Optional[str], written_secure: bool):
        self.value = value
        self.written_secure = written_secure

    def __repr__(self) -> str:
        return f"SecretText({SECRET})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretText) and (self.value, self.written_secure) == (other.value, other.written_secure)

    def __hash__(self) -> int:
        return hash((self.value, self.written_secure))

    @property
    def shown(self) -> str:
        """The value to hand on (inside a secret Output): the plaintext under `pulumi up`, "[secret]" offline."""
        return SECRET if self.value is None else self.value


def _secret_text(value: Any) -> SecretText:
    if isinstance(value, SecretText):
        return value
    if isinstance(value, dict) and set(value) == {"secure"} and isinstance(value["secure"], str):
        return SecretText(None, True)  # the stack file's ciphertext, read without the CLI
    if isinstance(value, str) and value:
        return SecretText(value, False)  # plaintext, or decrypted by `pulumi up` (loading tells which)
    raise ValueError("must be a non-empty string, set as a secret (`pulumi config set --secret --path ...`)")


Secret = Annotated[
    SecretText,
    PlainValidator(_secret_text),
    PlainSerializer(lambda value: SECRET, return_type=str),
    WithJsonSchema({"type": "string", "format": "password"}),
]


def project_path(path: str) -> str:
    """A path as written in the stack file, made absolute from the project folder (where `pulumi up` runs)."""
    return os.path.normpath(os.path.join(PROJECT_ROOT, os.path.expanduser(path)))


class ChartSource(Model):
    """One chart's source: one of path, tgz, oci, repository (all unset: the chart's upstream repository)."""

    path: Optional[str] = Field(default=None, description="an unpacked chart folder, relative to the project; its Chart.yaml must be the chart at the version raykube installs")
    tgz: Optional[str] = Field(default=None, description="a packaged chart file (helm pull / helm package), relative to the project; the chart at the version raykube installs")
    oci: Optional[str] = Field(default=None, description="oci://host[:port]/path/<chart>, no tag: the version is the one raykube installs")
    repository: Optional[str] = Field(default=None, description="a mirror Helm repository URL holding the chart (https, or http with allowHttp)")
    ca_file: Optional[str] = Field(default=None, description="the repository's or registry's CA bundle (PEM file, relative to the project)")
    cert_file: Optional[str] = Field(default=None, description="client certificate (PEM file) for the repository or registry; with keyFile")
    key_file: Optional[str] = Field(default=None, description="the client certificate's key (PEM file); handed on as a secret")
    username: Optional[Secret] = Field(default=None, description="basic-auth user for the repository or registry; with password; handed on as a secret")
    password: Optional[Secret] = Field(default=None, description="basic-auth password: a `secure:` value (pulumi config set --secret --path ...), never plaintext")
    allow_http: bool = Field(default=False, description="allow an http:// repository, or plain HTTP to the oci registry (a mirror inside your network)")

    def component_args(self) -> dict[str, Any]:
        """The component's ChartSourceArgs: paths absolute from the project, credentials as the values to hand on."""
        args: dict[str, Any] = {}
        for field in ("path", "tgz", "ca_file", "cert_file", "key_file"):
            if getattr(self, field) is not None:
                args[field] = project_path(getattr(self, field))
        for field in ("oci", "repository"):
            if getattr(self, field) is not None:
                args[field] = getattr(self, field)
        for field in ("username", "password"):
            if getattr(self, field) is not None:
                args[field] = getattr(self, field).shown
        if self.allow_http:
            args["allow_http"] = True
        return args


class ChartSources(Model):
    """The charts raykube installs, each from its upstream repository unless set."""

    kuberay_operator: Optional[ChartSource] = Field(default=None, description="kuberay-operator chart (every operator), at operator.version")
    metrics_server: Optional[ChartSource] = Field(default=None, description="metrics-server chart (local and eks targets)")
    flannel: Optional[ChartSource] = Field(default=None, description="flannel chart (local target)")
    kube_prometheus_stack: Optional[ChartSource] = Field(default=None, description="kube-prometheus-stack chart (observability.mode install)")


class CrdSource(Model):
    """The KubeRay CRDs: from a local folder or a mirror folder URL (unset: the release tag on GitHub)."""

    path: Optional[str] = Field(default=None, description="a folder holding ray.io_rayclusters.yaml, ray.io_rayjobs.yaml, ray.io_rayservices.yaml of operator.version (e.g. the kuberay-operator chart's crds/), relative to the project")
    base_url: Optional[str] = Field(default=None, description="a mirror URL of a folder holding those files (https, or http with allowHttp)")
    allow_http: bool = Field(default=False, description="allow an http:// baseUrl")


class ManifestSource(Model):
    """One URL manifest: from a local file or a mirror URL (unset: the release tag on GitHub)."""

    path: Optional[str] = Field(default=None, description="a local copy of the release's manifest, relative to the project")
    url: Optional[str] = Field(default=None, description="a mirror URL of the release's manifest (https, or http with allowHttp)")
    allow_http: bool = Field(default=False, description="allow an http:// url")


class ManifestSources(Model):
    kube_network_policies: Optional[ManifestSource] = Field(
        default=None, description="kube-network-policies' install.yaml (networkPolicies.enforcer kube-network-policies)"
    )


class SourcesSettings(Model):
    """Where charts, CRDs, manifests and images come from (air-gapped clusters); unset: upstream."""

    image_registry: Optional[str] = Field(
        default=None,
        description="registry prefix for every image raykube sets (Ray, operator, metrics-server, Flannel, kube-network-policies, "
        "the renewer, kube-prometheus-stack): the image's registry host is replaced, its path kept "
        "(docker.io/rayproject/ray -> <prefix>/rayproject/ray); images you set yourself are left as written",
    )
    charts: ChartSources = Field(default_factory=ChartSources, description="Helm charts")
    crds: Optional[CrdSource] = Field(default=None, description="the KubeRay CRDs")
    manifests: ManifestSources = Field(default_factory=ManifestSources, description="URL manifests")

    @property
    def any_set(self) -> bool:
        return self != SourcesSettings()


def chart_sources(settings: Any, chart: str) -> dict[str, Any]:
    """A chart component's air-gapped arguments: its `source` and the stack's `image_registry`, only those set
    (sources.charts.<chart>, sources.imageRegistry)."""
    source = getattr(settings.sources.charts, chart)
    args: dict[str, Any] = {}
    if source is not None and source.component_args():
        args["source"] = source.component_args()
    if settings.sources.image_registry:
        args["image_registry"] = settings.sources.image_registry
    return args
