"""The session's control plane as a small cluster where the real KubeRay operator acts.

On top of the kit's kube-apiserver and controller-manager: kwok as the kubelet
of every Node (Pods it is given become Running and Ready with a pod IP; Pods
being deleted go away), a stand-in scheduler that binds each Pending Pod to a
Node at once (placement is not what these tests judge), and one real KubeRay
v1.7.0 operator per Ray namespace, started with the flags the program's chart
values make (tests/helpers/operator_flags.py).
"""
from __future__ import annotations

import itertools
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from tests.helpers.envtest import ControlPlane, envtest_script, wait_for
from tests.helpers.operator_flags import operator_command_line

# Large enough for every stack's pods at once (the EKS head asks 2 CPU / 8Gi,
# GPU workers 8 CPU / 32Gi); the stand-in binds without checking fit anyway.
NODES = (("sim-node-0", "64", "512Gi", "250"), ("sim-node-1", "64", "512Gi", "250"))


# The kit's default controllers, plus those the operator's work needs here:
# Jobs (KubeRay's RayJob submitter and Redis clean-up Jobs; kwok completes
# their Pods) and the PVC/PV protection that lets a namespace with the head's
# GCS volume claim be deleted.
CONTROLLERS = (
    "deployment-controller,replicaset-controller,horizontal-pod-autoscaler-controller,serviceaccount-controller,"
    "serviceaccount-token-controller,namespace-controller,garbage-collector-controller,"
    "root-ca-certificate-publisher-controller,node-lifecycle-controller,job-controller,"
    "persistentvolumeclaim-protection-controller,persistentvolume-protection-controller"
)


def controller_manager_flags(kubeadm_text: str) -> list[str]:
    """The session's controller-manager: `--name=value` for each controllerManager
    extraArg of the kubeadm file, and the controllers the simulated cluster needs."""
    import yaml

    cluster = next(doc for doc in yaml.safe_load_all(kubeadm_text) if doc and doc["kind"] == "ClusterConfiguration")
    extra = cluster["controllerManager"]["extraArgs"]
    pairs = [(item["name"], item["value"]) for item in extra] if isinstance(extra, list) else list(extra.items())
    return [f"--{name}={value}" for name, value in pairs] + [f"--controllers={CONTROLLERS}"]


class SimulatedCluster:
    def __init__(self, plane: ControlPlane, controller_manager_flags: Iterable[str]):
        self.plane = plane
        self.directory = plane.directory
        plane.start_controller_manager(controller_manager_flags)
        self._envtest("kwok")
        for node in NODES:
            self._envtest("node", *node)
        from kubernetes import client, dynamic

        self.api_client = plane.api_client()
        self.core = client.CoreV1Api(self.api_client)
        self.dynamic = dynamic.DynamicClient(self.api_client)
        self.operators: dict[str, list[str]] = {}
        self._stopping = threading.Event()
        self._binder = threading.Thread(target=self._bind_pending_pods, name="stand-in-scheduler", daemon=True)
        self._binder.start()

    def _envtest(self, *arguments: str, env: Optional[Mapping[str, str]] = None) -> str:
        done = subprocess.run(
            [str(envtest_script()), arguments[0], str(self.directory), *arguments[1:]],
            capture_output=True, text=True, timeout=180, env={**os.environ, **(env or {})},
        )
        if done.returncode != 0:
            raise RuntimeError(f"envtest {' '.join(arguments)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    # --- the stand-in scheduler ---------------------------------------------------

    def _bind_pending_pods(self) -> None:
        from kubernetes import client, watch
        from kubernetes.client.rest import ApiException

        nodes = itertools.cycle([name for name, *_ in NODES])
        while not self._stopping.is_set():
            try:
                stream = watch.Watch().stream(self.core.list_pod_for_all_namespaces, field_selector="spec.nodeName=", timeout_seconds=2)
                for event in stream:
                    pod = event["object"]
                    if event["type"] == "DELETED" or pod.metadata.deletion_timestamp or pod.spec.node_name:
                        continue
                    binding = client.V1Binding(
                        metadata=client.V1ObjectMeta(name=pod.metadata.name),
                        target=client.V1ObjectReference(api_version="v1", kind="Node", name=next(nodes)),
                    )
                    try:
                        self.core.create_namespaced_binding(pod.metadata.namespace, binding, _preload_content=False)
                    except ApiException:
                        pass  # deleted or bound meanwhile
                    if self._stopping.is_set():
                        break
            except Exception:  # the API server going away at session end
                time.sleep(0.5)

    # --- KubeRay operators ----------------------------------------------------------

    def start_operator(self, namespace: str, chart_values: Mapping[str, Any]) -> list[str]:
        """The namespace's operator, as the chart would run it; restarted when its flags change (a chart upgrade)."""
        flags, environment = operator_command_line(chart_values, namespace)
        if self.operators.get(namespace) == flags:
            return flags
        if namespace in self.operators:
            self.stop_operator(namespace)
        self._envtest("kuberay-operator", *flags, env=environment)
        self.operators[namespace] = flags
        return flags

    def stop_operator(self, namespace: str) -> None:
        if self.operators.pop(namespace, None) is not None:
            subprocess.run([str(envtest_script()), "stop", str(self.directory), f"kuberay-operator-{namespace}"], capture_output=True, timeout=60)

    def operator_log(self, namespace: str) -> str:
        path = Path(self.directory) / f"kuberay-operator-{namespace}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- what tests read --------------------------------------------------------------

    def pods(self, namespace: str, selector: str = "") -> list[Any]:
        """Pods not being deleted."""
        return [pod for pod in self.core.list_namespaced_pod(namespace, label_selector=selector).items if not pod.metadata.deletion_timestamp]

    def pod_uids(self, namespace: str, selector: str = "") -> dict[str, str]:
        return {pod.metadata.name: pod.metadata.uid for pod in self.pods(namespace, selector)}

    def running(self, namespace: str, selector: str = "") -> list[Any]:
        return [pod for pod in self.pods(namespace, selector) if pod.status.phase == "Running"]

    def events(self, namespace: str, about: Optional[str] = None) -> list[str]:
        """The namespace's events, oldest first (only those about the object named `about`)."""
        items = sorted(self.core.list_namespaced_event(namespace).items, key=lambda event: str(event.last_timestamp or event.event_time or ""))
        return [f"{event.reason}: {event.message}" for event in items if about is None or event.involved_object.name == about]

    def delete_namespace(self, namespace: str, timeout: float = 60) -> None:
        from kubernetes.client.rest import ApiException

        try:
            self.core.delete_namespace(namespace)
        except ApiException as error:
            if error.status != 404:
                raise

        def gone() -> bool:
            try:
                self.core.read_namespace(namespace)
            except ApiException as error:
                return error.status == 404
            return False

        wait_for(gone, timeout, f"namespace {namespace} to be deleted")

    def stop(self) -> None:
        self._stopping.set()
        self._binder.join(timeout=10)
        for namespace in list(self.operators):
            self.stop_operator(namespace)
