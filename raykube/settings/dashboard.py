"""The Ray dashboard's Ingress: host, path, class, annotations, TLS."""
from __future__ import annotations

from typing import Optional

from pydantic import Field, field_validator, model_validator

from components.dashboard_ingress import NGINX_INGRESS_CLASSES, rewrites_sub_path
from components.kubernetes_names import host_problem
from raykube.settings.model import Model
from raykube.settings.pods import check_annotations
from raykube.settings.checked import HostName, ObjectName


class IngressTls(Model):
    """TLS for the dashboard Ingress."""

    secret_name: ObjectName = Field(description="Secret of type kubernetes.io/tls holding the certificate")
    hosts: list[str] = Field(default_factory=list, description="host names the certificate covers; default [host]")

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, hosts: list[str]) -> list[str]:
        for index, host in enumerate(hosts):
            problem = host_problem(host)
            if problem:
                raise ValueError(f"__{index}__ {problem}")
        return hosts


class DashboardIngress(Model):
    """An Ingress to the Ray dashboard and Jobs API (port 8265)."""

    enabled: bool = Field(default=False, description="create the Ingress")
    class_name: Optional[ObjectName] = Field(default=None, description="ingressClassName; default the cluster's default class")
    host: Optional[HostName] = Field(default=None, description="host name; empty matches any host")
    path: str = Field(default="/", description="path prefix; a sub-path needs a rewrite (written for ingress-nginx classes)")
    annotations: dict[str, str] = Field(default_factory=dict, description="Ingress annotations, e.g. your controller's auth or rewrite")
    tls: Optional[IngressTls] = Field(default=None, description="TLS: secretName and hosts")

    @field_validator("annotations")
    @classmethod
    def _annotations(cls, annotations: dict[str, str]) -> dict[str, str]:
        return check_annotations(annotations)

    @field_validator("path")
    @classmethod
    def _path(cls, path: str) -> str:
        if not path.startswith("/"):
            raise ValueError(f"must start with '/', got {path!r}")
        return path.rstrip("/") or "/"

    @model_validator(mode="after")
    def _sub_path_needs_a_rewrite(self) -> "DashboardIngress":
        # The dashboard's pages load /static/... and /api/... from the root:
        # under /ray they only work if the controller strips the prefix.
        if not self.enabled or self.path == "/" or rewrites_sub_path(self.model_dump()):
            return self
        if any("rewrite" in key for key in self.annotations):
            return self
        raise ValueError(
            f"__path__ {self.path} is a sub-path, and the dashboard only works there if the Ingress controller strips it: "
            f"raykube writes that rewrite for ingress-nginx classes ({', '.join(NGINX_INGRESS_CLASSES)}); "
            f"for className {self.class_name!r} put your controller's rewrite in dashboardIngress.annotations, or use path /"
        )

    @model_validator(mode="after")
    def _tls_hosts(self) -> "DashboardIngress":
        if self.tls is not None and not self.tls.hosts and not self.host:
            raise ValueError("__tls.hosts__ name the hosts the certificate covers (or set dashboardIngress.host)")
        return self
