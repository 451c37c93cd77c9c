"""The session's control plane as a small cluster of real parts where the real KubeRay operator acts.

On top of the session's kube-apiserver and controller-manager (with the local
stack's kubeadm flags): the real kube-scheduler, kwok as the kubelet of every
Node (Pods the scheduler binds become Running and Ready with a pod IP; Pods
being deleted go away; CPU use is what a Pod's annotation says),
metrics-server with the local stack's resolution, Nodes shaped like the
targets' (labels the stacks' node selectors name, a tainted GPU node), and
one real KubeRay operator per Ray namespace (the project's build: tools/go/kuberay), started with the flags
the program's chart values make (tests/helpers/operator_flags.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from tests.helpers.built_operator import adapt_flags
from tests.helpers.envtest import ControlPlane, wait_for
from tests.helpers.operator_flags import operator_command_line

@dataclass(frozen=True)
class NodeShape:
    name: str
    cpu: str
    memory: str
    labels: dict = field(default_factory=dict)
    gpus: int = 0
    taints: tuple = ()


GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
# What the targets' node pools look like to the scheduler, large enough for every
# test's pods at once: general nodes (kubeadm, GKE's default pool), EKS managed
# node groups by capacity type (the head's nodeSelector asks ON_DEMAND), an EKS
# GPU node group (nvidia.com/gpu capacity, tainted as the NVIDIA device plugin's
# docs do), and AKS's user pool `raypool`.
NODES = (
    NodeShape("sim-general-0", "64", "512Gi"),
    NodeShape("sim-general-1", "64", "512Gi"),
    NodeShape("sim-eks-ondemand-0", "64", "512Gi", {"eks.amazonaws.com/capacityType": "ON_DEMAND"}),
    NodeShape("sim-eks-spot-0", "64", "512Gi", {"eks.amazonaws.com/capacityType": "SPOT"}),
    NodeShape("sim-eks-gpu-0", "64", "512Gi", {"eks.amazonaws.com/capacityType": "ON_DEMAND", "nvidia.com/gpu.present": "true"},
              gpus=8, taints=(GPU_TAINT,)),
    NodeShape("sim-aks-raypool-0", "64", "512Gi", {"agentpool": "raypool", "kubernetes.azure.com/mode": "user"}),
)


# The default controllers (tests/helpers/cluster_processes.py), plus those the operator's work needs here:
# Jobs (KubeRay's RayJob submitter and Redis clean-up Jobs; kwok completes
# their Pods), the PersistentVolume binder (a head's GCS claim binds to a volume
# before the scheduler places the head) and the PVC/PV protection that lets a
# namespace with that claim be deleted; and a Service's endpoints (the Pods it
# selects), which pulumi-kubernetes waits for before a Service counts as created
# and KubeRay reads to judge a RayService's serve Service; and DaemonSets (Flannel's,
# whose rollout pulumi-kubernetes waits for).
CONTROLLERS = (
    "deployment-controller,replicaset-controller,horizontal-pod-autoscaler-controller,serviceaccount-controller,"
    "serviceaccount-token-controller,namespace-controller,garbage-collector-controller,"
    "root-ca-certificate-publisher-controller,node-lifecycle-controller,job-controller,"
    "persistentvolume-binder-controller,persistentvolumeclaim-protection-controller,persistentvolume-protection-controller,"
    "endpoints-controller,endpointslice-controller,daemonset-controller"
)


def controller_manager_flags(kubeadm_text: str) -> list[str]:
    """The session's controller-manager: `--name=value` for each controllerManager
    extraArg of the kubeadm file, and the controllers the simulated cluster needs."""
    import yaml

    cluster = next(doc for doc in yaml.safe_load_all(kubeadm_text) if doc and doc["kind"] == "ClusterConfiguration")
    extra = cluster["controllerManager"]["extraArgs"]
    pairs = [(item["name"], item["value"]) for item in extra] if isinstance(extra, list) else list(extra.items())
    return [f"--{name}={value}" for name, value in pairs] + [f"--controllers={CONTROLLERS}"]


def metrics_server_flags(chart_values: Mapping[str, Any]) -> list[str]:
    """The stack's metrics-server timing flags, from its chart values."""
    wanted = ("--metric-resolution=", "--kubelet-request-timeout=")
    return [arg for arg in chart_values.get("defaultArgs", []) if arg.startswith(wanted)]


class SimulatedCluster:
    def __init__(self, plane: ControlPlane, controller_manager_flags: Iterable[str], metrics_server_flags: Iterable[str] = ()):
        self.plane = plane
        self.directory = plane.directory
        plane.start_controller_manager(controller_manager_flags)
        from kubernetes import client, dynamic

        self.api_client = plane.api_client()
        self.core = client.CoreV1Api(self.api_client)
        self.dynamic = dynamic.DynamicClient(self.api_client)
        plane.scheduler()
        plane.kwok()
        for node in NODES:
            self.add_node(node)
        plane.metrics_server(metrics_server_flags)
        self.operators: dict[str, list[str]] = {}
        self.operator_pids: dict[str, int] = {}
        self.operator_metrics: dict[str, str] = {}

    def add_node(self, node: NodeShape) -> None:
        """A kwok Node of this shape (labels, taints, GPUs), Ready when this returns."""
        self.plane.node(node.name, node.cpu, node.memory, "250")
        self.core.patch_node(node.name, {"metadata": {"labels": dict(node.labels)}, "spec": {"taints": [dict(taint) for taint in node.taints]}})
        if node.gpus:
            gpus = {"nvidia.com/gpu": str(node.gpus)}
            self.core.patch_node_status(node.name, {"status": {"capacity": gpus, "allocatable": gpus}})

    # --- KubeRay operators ----------------------------------------------------------

    def start_operator(self, namespace: str, chart_values: Mapping[str, Any]) -> list[str]:
        """The namespace's operator, as the chart would run it; restarted when its flags change (a chart upgrade)."""
        flags, environment = operator_command_line(chart_values, namespace)
        flags = adapt_flags(flags)
        if self.operators.get(namespace) == flags:
            return flags
        if namespace in self.operators:
            self.stop_operator(namespace)
        pid, metrics = self.plane.kuberay_operator(f"kuberay-operator-{namespace}", flags, environment)
        self.operators[namespace] = flags
        self.operator_pids[namespace] = pid
        self.operator_metrics[namespace] = metrics
        return flags

    def operator_metrics_address(self, namespace: str) -> str:
        """host:port of the namespace's operator's /metrics (on a free loopback port)."""
        return self.operator_metrics[namespace]

    def stop_operator(self, namespace: str) -> None:
        if self.operators.pop(namespace, None) is not None:
            self.plane.stop(f"kuberay-operator-{namespace}")

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

    def has_namespace(self, namespace: str) -> bool:
        """Whether the namespace exists (a terminating one too)."""
        from kubernetes.client.rest import ApiException

        try:
            self.core.read_namespace(namespace)
        except ApiException as error:
            if error.status == 404:
                return False
            raise
        return True

    def crd_names(self) -> set[str]:
        return {item.metadata.name for item in self.dynamic.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition").get().items}

    def delete_namespace(self, namespace: str, timeout: float = 60) -> None:
        from kubernetes.client.rest import ApiException

        try:
            self.core.delete_namespace(namespace)
        except ApiException as error:
            if error.status != 404:
                raise

        def gone() -> bool:
            try:
                return not self.has_namespace(namespace)
            except ApiException:
                return False  # asked again until the timeout

        wait_for(gone, timeout, f"namespace {namespace} to be deleted")

    def provide_volume(self, name: str, size: str, storage_class: str = "") -> None:
        """A PersistentVolume a claim of this class and size binds to: the storage a
        real cluster's provisioner would make (kwok mounts nothing)."""
        from kubernetes import client

        self.core.create_persistent_volume(client.V1PersistentVolume(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PersistentVolumeSpec(capacity={"storage": size}, access_modes=["ReadWriteOnce"], storage_class_name=storage_class,
                                               persistent_volume_reclaim_policy="Delete", host_path=client.V1HostPathVolumeSource(path=f"/var/lib/sim/{name}"))))

    def node_of(self, pod) -> NodeShape:
        return next(node for node in NODES if node.name == pod.spec.node_name)

    def set_cpu_load(self, namespace: str, selector: str, cpu: str) -> int:
        """What the pods use, as kwok reports it to metrics-server (annotated on the Pods, not
        the template, which would roll the Deployment). Returns how many pods were set."""
        pods = self.pods(namespace, selector)
        for pod in pods:
            if (pod.metadata.annotations or {}).get("kwok.x-k8s.io/usage-cpu") != cpu:
                self.core.patch_namespaced_pod(pod.metadata.name, namespace, {"metadata": {"annotations": {"kwok.x-k8s.io/usage-cpu": cpu}}})
        return len(pods)

    def pending_reasons(self, namespace: str, pod_name: str) -> list[str]:
        """The scheduler's word on a Pending pod: its PodScheduled condition and FailedScheduling events."""
        pod = self.core.read_namespaced_pod(pod_name, namespace)
        reasons = [f"{c.reason}: {c.message}" for c in pod.status.conditions or () if c.type == "PodScheduled" and c.status == "False"]
        return reasons + [line for line in self.events(namespace, pod_name) if line.startswith("FailedScheduling")]

    def stop(self) -> None:
        for namespace in list(self.operators):
            self.stop_operator(namespace)
