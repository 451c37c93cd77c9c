"""The Ingress of a Ray dashboard (and Jobs API): host, sub-path with rewrite, annotations, TLS."""

from typing import Any, Mapping, Optional, Sequence, Required, TypedDict

DASHBOARD_PORT = 8265
# Ingress classes that are ingress-nginx underneath: a sub-path gets the rewrite
# KubeRay's own Ingress sample uses. webapprouting.kubernetes.azure.com is AKS's
# application routing add-on.
NGINX_INGRESS_CLASSES = ("nginx", "ingress-nginx", "webapprouting.kubernetes.azure.com")
NGINX_REWRITE = "nginx.ingress.kubernetes.io/rewrite-target"


class IngressTlsArgs(TypedDict, total=False):
    """secret_name: a kubernetes.io/tls Secret (required); hosts: names it covers (default [host])."""

    secret_name: Required[str]
    """A kubernetes.io/tls Secret holding the certificate (required)."""
    hosts: Sequence[str]
    """Host names the certificate covers (default [host])."""


class DashboardIngressArgs(TypedDict, total=False):
    """Dashboard Ingress."""

    enabled: bool
    """create it (default False)."""
    class_name: Optional[str]
    """ingressClassName (default the cluster's default class)."""
    host: Optional[str]
    """host name (default any host)."""
    path: str
    """path prefix (default "/"); a sub-path is rewritten for ingress-nginx classes, other controllers need their rewrite in `annotations`."""
    annotations: Mapping[str, str]
    """Ingress annotations (default {})."""
    tls: Optional[IngressTlsArgs]
    """IngressTlsArgs (default none)."""


def rewrites_sub_path(args: Mapping[str, Any]) -> bool:
    return (args.get("path") or "/").rstrip("/") not in ("", "/") and args.get("class_name") in NGINX_INGRESS_CLASSES


def dashboard_ingress(args: Mapping[str, Any], service_name: str, name: str, namespace: str, port: int = DASHBOARD_PORT) -> dict[str, Any]:
    """The Ingress (API field names) that routes `path` on `host` to `port` of the Service (the head's dashboard port;
    a RayService's serve Service takes the same Ingress on port 8000)."""
    prefix = (args.get("path") or "/").rstrip("/") or "/"
    annotations = dict(args.get("annotations") or {})
    if rewrites_sub_path(args):
        # /ray/api/jobs/ -> /api/jobs/: the dashboard serves from its root.
        annotations.setdefault(NGINX_REWRITE, "/$1")
        path = {"path": f"{prefix}/(.*)", "pathType": "ImplementationSpecific"}
    else:
        path = {"path": prefix, "pathType": "Prefix"}
    path["backend"] = {"service": {"name": service_name, "port": {"number": port}}}
    rule: dict[str, Any] = {"http": {"paths": [path]}}
    if args.get("host"):
        rule["host"] = args["host"]
    spec: dict[str, Any] = {"rules": [rule]}
    if args.get("class_name"):
        spec["ingressClassName"] = args["class_name"]
    tls = args.get("tls")
    if tls:
        spec["tls"] = [{"secretName": tls["secret_name"], "hosts": list(tls.get("hosts") or [args["host"]])}]
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": metadata, "spec": spec}
