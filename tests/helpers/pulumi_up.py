"""`pulumi up` and `pulumi destroy` of a program run, against the simulated cluster: a stand-in
for the Pulumi engine where the real one cannot run here.

The real engine and pulumi-kubernetes provider (the project's build) run raykube's stacks in
tests/test_engine_scenarios.py and decide there what a user gets: diffs, patchForce, waits,
retained CRDs, a destroyed neighbour. They cannot run a stack with `awsAccess` or with
`observability.mode: install`: pulumi-aws and pulumi-random cannot be built from the Go module
proxy (their builds need sources outside their modules). This emulation stays for what only
such stacks (eks, aks, the local stack as committed) and the operator's own behaviour need:
the first up of every stack under the real operator, upgrades, eks's autoscaler versions,
head fault tolerance, the HPA and Ray autoscaler scaling, `raykube status`.

What it does, as the engine and pulumi-kubernetes (server-side apply) do: resources
in the order the program registered them (each after what it depends on); a
resource whose inputs equal those of the previous up is left alone (no diff, no
update); a new or changed object is applied with the provider's field manager,
forced only where it carries `pulumi.com/patchForce`, or replaced (deleted
first with deleteBeforeReplace) where replaceOnChanges names a changed field;
what the previous up had and this one has not is deleted. Before dependents go
on, Pulumi's wait: `pulumi.com/waitFor` (a jsonpath condition, judged like
`kubectl wait`: not before the controller observed the new generation, within
`pulumi.com/timeoutSeconds`) and a Deployment's rollout. The KubeRay operator
chart (one Helm resource under the mocks) becomes the real operator, started
with the flags its values make, restarted when they change (the chart's
Deployment has strategy Recreate), plus that Deployment and Service as objects
(kwok runs the Pod) for what reads them. A destroy deletes in reverse order and keeps
what the program retains.
"""
from __future__ import annotations

import copy
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Optional

from components.versions import KUBERAY_CRD_PLURALS
from raykube.offline import OfflineRun, Registered
from tests.helpers.envtest import server_side_apply
from tests.helpers.operator_flags import chart_workload
from tests.helpers.simulated_cluster import SimulatedCluster

# pulumi-kubernetes' field manager for server-side apply (the same from every
# machine: it is kept in the stack's state).
FIELD_MANAGER = "pulumi-kubernetes"
CHART = "kubernetes:helm.sh/v4:Chart"
OPERATOR_CHART = "kuberay-operator"
# Tests wait at most this long where Pulumi would wait timeoutSeconds (900).
TEST_TIMEOUT_SECONDS = 90


class AwaitTimeout(AssertionError):
    pass


@dataclass
class Deployed:
    """What an up applied: the objects as sent."""

    objects: list[dict[str, Any]] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [obj for obj in self.objects if obj["kind"] == kind]


def _is_operator_chart(resource: Registered) -> bool:
    return resource.type == CHART and resource.inputs.get("chart") == OPERATOR_CHART


def _jsonpath_condition(annotation: str) -> tuple[list[str], str]:
    """`jsonpath={.status.state}=ready` -> (["status", "state"], "ready")."""
    match = re.fullmatch(r"jsonpath=\{\.([\w.]+)\}=(.+)", annotation)
    if not match:
        raise AssertionError(f"the harness does not model pulumi.com/waitFor {annotation!r}")
    return match.group(1).split("."), match.group(2)


def _wait_expressions(annotation: str) -> list[str]:
    """pulumi.com/waitFor: one expression, or a JSON list of them that must all hold."""
    return json.loads(annotation) if annotation.lstrip().startswith("[") else [annotation]


def _condition_holds(live: dict[str, Any], expression: str) -> bool:
    """`condition=Type[=Status]` as pulumi-kubernetes judges it (kubectl wait's rule): the
    condition's status, once its observedGeneration (or the status's) reached the generation."""
    kind, _, expected = expression.removeprefix("condition=").partition("=")
    for condition in _dig(live, ["status", "conditions"]) or []:
        if condition.get("type", "").lower() != kind.lower():
            continue
        observed = condition.get("observedGeneration", _dig(live, ["status", "observedGeneration"]))
        if observed is not None and observed < live["metadata"]["generation"]:
            return False
        return str(condition.get("status", "")).lower() == (expected or "True").lower()
    return False


def _dig(obj: Any, path: list[str]) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _read(sim: SimulatedCluster, obj: dict[str, Any]) -> Optional[dict[str, Any]]:
    from kubernetes.client.rest import ApiException

    resource = sim.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    try:
        return resource.get(name=obj["metadata"]["name"], namespace=obj["metadata"].get("namespace")).to_dict()
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def _await(sim: SimulatedCluster, obj: dict[str, Any], timeout: float) -> None:
    """Pulumi's wait for this object, if it has one."""
    annotations = obj["metadata"].get("annotations") or {}
    namespace = obj["metadata"].get("namespace", "")
    deadline = time.monotonic() + min(float(annotations.get("pulumi.com/timeoutSeconds", timeout)), timeout)
    if "pulumi.com/waitFor" in annotations:
        expressions = _wait_expressions(annotations["pulumi.com/waitFor"])
        paths = [None if expression.startswith("condition=") else _jsonpath_condition(expression) for expression in expressions]

        def done() -> bool:
            live = _read(sim, obj)
            if live is None:
                return False
            for expression, path in zip(expressions, paths):
                if path is None:
                    if not _condition_holds(live, expression):
                        return False
                    continue
                observed = _dig(live, ["status", "observedGeneration"])
                if observed is not None and observed < live["metadata"]["generation"]:
                    return False  # the status still describes the previous spec
                if str(_dig(live, path[0])) != path[1]:
                    return False
            return True
    elif obj["kind"] == "Deployment":
        def done() -> bool:
            live = _read(sim, obj) or {}
            status, generation = live.get("status") or {}, (live.get("metadata") or {}).get("generation")
            replicas = (live.get("spec") or {}).get("replicas", 1)
            return (
                status.get("observedGeneration") == generation and status.get("updatedReplicas", 0) == replicas
                and status.get("availableReplicas", 0) == replicas and status.get("replicas", 0) == replicas
            )
    else:
        return
    while not done():
        if time.monotonic() > deadline:
            what = f"{obj['kind']} {namespace}/{obj['metadata']['name']}"
            log = [line for line in sim.operator_log(namespace).splitlines() if '"level":"error"' in line or "ERROR" in line]
            own = sim.events(namespace, obj["metadata"]["name"])
            raise AwaitTimeout(f"{what} did not become ready: its events {own[-3:]}, operator errors {log[-2:]}")
        time.sleep(0.2)


def _changed_fields(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {key for key in set(before) | set(after) if before.get(key) != after.get(key)}


def _delete(sim: SimulatedCluster, obj: dict[str, Any], timeout: float) -> None:
    """Delete, and wait until it is gone (finalizers run), as pulumi-kubernetes does."""
    from kubernetes.client.rest import ApiException

    if obj["kind"] == "Namespace":
        sim.delete_namespace(obj["metadata"]["name"], timeout)
        return
    api = sim.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    try:
        api.delete(name=obj["metadata"]["name"], namespace=obj["metadata"].get("namespace"))
    except ApiException as error:
        if error.status != 404:
            raise
    deadline = time.monotonic() + timeout
    while _read(sim, obj) is not None:
        if time.monotonic() > deadline:
            raise AwaitTimeout(f"{obj['kind']} {obj['metadata']['name']} was not deleted: events {sim.events(obj['metadata'].get('namespace', ''))[-5:]}")
        time.sleep(0.2)


def pulumi_up(sim: SimulatedCluster, run: OfflineRun, previous: Optional[OfflineRun] = None,
              timeout: float = TEST_TIMEOUT_SECONDS) -> Deployed:
    """One `pulumi up` of `run` over the state `previous` left (None: a new stack)."""
    before = {resource.urn: resource for resource in (previous.resources if previous else [])}
    deployed = Deployed()
    for resource in run.resources:
        old = before.get(resource.urn)
        unchanged = old is not None and old.revealed_inputs == resource.revealed_inputs
        if _is_operator_chart(resource):
            sim.start_operator(resource.inputs["namespace"], resource.inputs.get("values") or {})
            for obj in chart_workload(resource.inputs.get("values") or {}, resource.inputs["namespace"]):
                server_side_apply(sim.dynamic, obj, FIELD_MANAGER)
        elif resource.is_kubernetes_object:
            obj = copy.deepcopy(resource.revealed_inputs)
            deployed.objects.append(obj)
            if unchanged:
                continue
            if old is not None and _changed_fields(old.revealed_inputs, obj) & set(resource.replace_on_changes):
                # deleteBeforeReplace: the old one goes first (two RayJobs of one name cannot coexist).
                _delete(sim, old.revealed_inputs, timeout)
            server_side_apply(sim.dynamic, obj, FIELD_MANAGER)
            _await(sim, obj, timeout)
    urns = {resource.urn for resource in run.resources}
    for resource in reversed(previous.resources if previous else []):
        if resource.urn not in urns:
            _remove(sim, resource, timeout)
    return deployed


def _remove(sim: SimulatedCluster, resource: Registered, timeout: float) -> None:
    """What a destroy (or an up that dropped it) does with one resource."""
    if resource.type == "kubernetes:yaml/v2:ConfigGroup":
        # retainOnDelete on the group does not reach the CRDs inside it (its
        # children, made by the provider); only a registered transform does.
        # Without one, destroy takes the CRDs and every custom resource with them.
        if not resource.transforms:
            crds = sim.dynamic.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
            for plural in KUBERAY_CRD_PLURALS:
                crds.delete(name=f"{plural}.ray.io")
        return
    if resource.retain_on_delete:
        return
    if _is_operator_chart(resource):
        sim.stop_operator(resource.inputs["namespace"])
        for obj in chart_workload(resource.inputs.get("values") or {}, resource.inputs["namespace"]):
            _delete(sim, obj, timeout)
    elif resource.is_kubernetes_object:
        _delete(sim, resource.revealed_inputs, timeout)


def pulumi_destroy(sim: SimulatedCluster, run: OfflineRun, timeout: float = 60) -> None:
    """Delete what the run made, dependents first; what the program retains stays."""
    for resource in reversed(run.resources):
        _remove(sim, resource, timeout)


def discard(sim: SimulatedCluster, run: OfflineRun) -> None:
    """A test's cleanup, not a `pulumi destroy`: the run's operators stop and its namespaces are
    deleted without waiting (the namespace controller takes what is in them). Only for runs in
    namespaces of their own (tests/helpers/program.py: fresh); tests of destroy call pulumi_destroy."""
    for resource in run.resources:
        if _is_operator_chart(resource):
            sim.stop_operator(resource.inputs["namespace"])
    namespaces = sim.dynamic.resources.get(api_version="v1", kind="Namespace")
    for resource in run.resources:
        if resource.is_kubernetes_object and resource.inputs.get("kind") == "Namespace":
            name = resource.inputs["metadata"]["name"]
            try:
                namespaces.delete(name=name)  # Terminating: no controller may create pods there any more
            except Exception as error:  # already gone
                if getattr(error, "status", None) != 404:
                    raise
            # The pods at once, so the next test's pods find the Nodes free.
            sim.core.delete_collection_namespaced_pod(name, grace_period_seconds=0)
