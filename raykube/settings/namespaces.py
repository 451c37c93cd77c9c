"""Which namespaces raykube may make Ray namespaces, and which it owns there.

A Ray namespace gets a namespace-wide default-deny NetworkPolicy and Pod
Security labels: in a namespace other workloads share, those would cut their
traffic or reject their pods. So raykube refuses the namespaces Kubernetes,
the clouds and raykube itself run system pods in, creates every other Ray
namespace itself (the API server refuses one that already exists), and takes
an existing namespace only when `adoptNamespaces` names it: then it neither
creates, labels nor deletes it, and its policies select raykube's pods alone.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

# Where the Ingress controllers of the classes raykube knows run (the dashboard's
# traffic comes from there): AKS's application routing add-on, else ingress-nginx's chart.
INGRESS_CONTROLLER_NAMESPACES = {"webapprouting.kubernetes.azure.com": "app-routing-system"}
DEFAULT_INGRESS_CONTROLLER_NAMESPACE = "ingress-nginx"
# The default renewer namespace of every stack is raykube-credentials-<stack>
# (AwsAccessSettings.effective_renewer_namespace); no stack's Ray pods go there.
RENEWER_NAMESPACE_PREFIX = "raykube-credentials-"

# Namespaces with system pods in them on every cluster, or on the targets raykube knows:
# Kubernetes' own (default holds the kubernetes Service; kube-system, kube-public,
# kube-node-lease and every kube-* are reserved), the Ingress controllers the
# dashboard Ingress uses (ingress-nginx's chart, AKS app routing), GKE's managed
# components (gke-managed-*, gmp-system and gmp-public of Managed Prometheus).
SYSTEM_NAMESPACES = ("default", DEFAULT_INGRESS_CONTROLLER_NAMESPACE, *INGRESS_CONTROLLER_NAMESPACES.values(), "gmp-system", "gmp-public")
SYSTEM_PREFIXES = ("kube-", "gke-managed-", RENEWER_NAMESPACE_PREFIX)


def system_namespace(namespace: str) -> Optional[str]:
    """Why `namespace` cannot be a Ray namespace (None: it can)."""
    if namespace in SYSTEM_NAMESPACES:
        return f"{namespace!r} is a system or shared namespace"
    for prefix in SYSTEM_PREFIXES:
        if namespace.startswith(prefix):
            owner = "raykube's credentials renewers" if prefix == RENEWER_NAMESPACE_PREFIX else "the cluster's system components"
            return f"{namespace!r} is reserved for {owner} ({prefix}*)"
    return None


def ingress_controller_namespace(class_name: Optional[str], chosen: Optional[str] = None) -> str:
    """The namespace a dashboard Ingress's traffic comes from: as set, else by its class."""
    return chosen or INGRESS_CONTROLLER_NAMESPACES.get(class_name or "", DEFAULT_INGRESS_CONTROLLER_NAMESPACE)


def namespace_dependency(namespaces: Mapping[str, Any], namespace: str) -> list[Any]:
    """What an object in `namespace` waits for: the Namespace raykube creates; nothing for an adopted one (it exists)."""
    return [namespaces[namespace]] if namespace in namespaces else []
