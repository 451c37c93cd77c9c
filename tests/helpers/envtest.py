"""A real Kubernetes control plane for tests: etcd and kube-apiserver (and the
controller-manager on demand) from the project's own build, on loopback
(tests/helpers/cluster_processes.py), and the ways tests talk to it.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Iterable, Optional

from tests.helpers.cluster_processes import Cluster

FIELD_MANAGER = "raykube-tests"


class ControlPlane(Cluster):
    """etcd + kube-apiserver in `directory`; the controller-manager started once, on demand."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.kubeconfig = str(self.kubeconfig)
        self.controller_manager_flags: Optional[list[str]] = None

    def start_controller_manager(self, flags: Iterable[str]) -> None:
        """Start kube-controller-manager once, with these extra flags."""
        flags = list(flags)
        if self.controller_manager_flags is not None:
            if self.controller_manager_flags != flags:
                raise RuntimeError(f"controller-manager already runs with {self.controller_manager_flags}")
            return
        self.controller_manager(flags)
        self.controller_manager_flags = flags


class ApplyError(AssertionError):
    """The API server refused an object: its status code and message."""

    def __init__(self, obj: dict[str, Any], status: int, message: str):
        self.status = status
        self.message = message
        metadata = obj.get("metadata") or {}
        super().__init__(f"{obj.get('kind')} {metadata.get('namespace', '')}/{metadata.get('name')}: HTTP {status}: {message}")


def server_side_apply(
    client, obj: dict[str, Any], manager: str = FIELD_MANAGER, dry_run: bool = False, force: Optional[bool] = None
) -> tuple[dict[str, Any], list[str]]:
    """Apply one object as `pulumi up` with server-side apply does: forced only
    where the object carries `pulumi.com/patchForce: "true"`, as Pulumi does.

    Returns the object as stored (or as it would be, with dry_run) and the
    warnings the server sent (Pod Security `warn`, deprecations).
    """
    import json

    from kubernetes.client.rest import ApiException

    resource = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    metadata = obj.get("metadata") or {}
    path = resource.path(name=metadata["name"], namespace=metadata.get("namespace") if resource.namespaced else None)
    if force is None:
        force = (metadata.get("annotations") or {}).get("pulumi.com/patchForce") == "true"
    query = [("fieldManager", manager)] + ([("dryRun", "All")] if dry_run else []) + ([("force", "true")] if force else [])
    try:
        response = client.client.call_api(
            path, "PATCH", {}, query,
            {"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"},
            body=obj, auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=False,
        )
    except ApiException as error:
        try:
            message = json.loads(error.body).get("message", error.body)
        except (TypeError, ValueError):
            message = str(error.body)
        raise ApplyError(obj, error.status, message) from None
    headers = response.headers  # urllib3: one Warning header per warning
    return json.loads(response.data), list(headers.getlist("Warning"))


def wait_for(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def install_crds(client, paths: Iterable[Path]) -> None:
    """The KubeRay CRDs by server-side apply (they exceed the client-side annotation limit)."""
    import yaml

    crd_api = client.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    names = []
    for path in paths:
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        crd_api.server_side_apply(body=crd, field_manager=FIELD_MANAGER, force_conflicts=True)
        names.append(crd["metadata"]["name"])

    def established() -> bool:
        for name in names:
            conditions = crd_api.get(name=name).to_dict().get("status", {}).get("conditions") or []
            if not any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                return False
        return True

    wait_for(established, 60, "the KubeRay CRDs to be Established")


def install_stack_crds(client) -> None:
    """What a stack's objects need on a fresh API server: the KubeRay CRDs the program installs and
    the Prometheus operator's (PodMonitor, ServiceMonitor, PrometheusRule), from ../shared/upstream,
    and the namespace of the Prometheus operator that observability.mode podMonitors expects."""
    from tests.helpers.upstream import KUBERAY_CRDS, PROMETHEUS_OPERATOR_CRDS, upstream_path

    install_crds(client, [upstream_path(path) for path in (*KUBERAY_CRDS, *PROMETHEUS_OPERATOR_CRDS)])
    server_side_apply(client, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monitoring"}}, "tests")
