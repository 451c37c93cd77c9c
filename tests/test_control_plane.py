"""Every stack's objects against a real kube-apiserver (the project's build, tools/go/kubernetes) by
server-side apply, as `pulumi up` applies them; a boundary sweep of the settings;
the HPA pool under a real kube-controller-manager with the local stack's flags."""
from __future__ import annotations

import base64
import copy
from typing import Any

import pytest

from components.quantity import parse_quantity
from tests.helpers.program import STACKS, stack_file_config
from tests.helpers.envtest import ApplyError, server_side_apply
from tests.helpers.simulated_cluster import controller_manager_flags

KIND_ORDER = ["Namespace", "ServiceAccount", "Secret", "ConfigMap", "Service"]


def apply_order(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Namespaces first, then what pods refer to, then the rest (as Pulumi's dependencies order them)."""
    return sorted(objects, key=lambda obj: KIND_ORDER.index(obj["kind"]) if obj["kind"] in KIND_ORDER else len(KIND_ORDER))


def stack_objects(result) -> list[dict[str, Any]]:
    """Every Kubernetes object of a run, with secret values in place (in memory only)."""
    return apply_order([copy.deepcopy(resource.revealed_inputs) for resource in result.kubernetes_objects()])


def as_stored(obj: dict[str, Any]) -> dict[str, Any]:
    """What the server keeps of what we sent: stringData is write-only, it becomes data."""
    obj = copy.deepcopy(obj)
    if obj.get("kind") == "Secret" and "stringData" in obj:
        data = obj.setdefault("data", {})
        for key, value in obj.pop("stringData").items():
            data[key] = base64.b64encode(value.encode()).decode()
    return obj


def _same_quantity(sent: Any, kept: Any) -> bool:
    try:
        return parse_quantity(sent) == parse_quantity(kept)
    except (ValueError, TypeError):
        return False


def lost_fields(sent: Any, kept: Any, path: str = "") -> list[str]:
    """Fields we set that the server pruned, defaulted away or changed."""
    if isinstance(sent, dict):
        if not isinstance(kept, dict):
            return [f"{path}: {kept!r}"]
        lost = []
        for key, value in sent.items():
            if key not in kept:
                lost.append(f"{path}.{key} (pruned)")
            else:
                lost += lost_fields(value, kept[key], f"{path}.{key}")
        return lost
    if isinstance(sent, list):
        if not isinstance(kept, list) or len(kept) != len(sent):
            return [f"{path}: {sent!r} -> {kept!r}"]
        return [item for index, value in enumerate(sent) for item in lost_fields(value, kept[index], f"{path}[{index}]")]
    if sent == kept or (isinstance(sent, str) and _same_quantity(sent, kept)):
        return []
    return [f"{path}: {sent!r} -> {kept!r}"]


def revision(stored: dict[str, Any]) -> str:
    """What an apply that changes nothing leaves alone: the spec's generation where the
    kind has one (controllers update status meanwhile: the pool's pods really run
    here), else the whole object's resourceVersion."""
    metadata = stored["metadata"]
    return f"generation {metadata['generation']}" if "generation" in metadata else f"resourceVersion {metadata['resourceVersion']}"


@pytest.mark.parametrize("stack", STACKS)
def test_every_object_is_accepted_kept_and_stable_on_the_real_server(stack_runs, control_plane, stack):
    client = control_plane.dynamic()
    # Stacks share object names here, unlike on their real clusters: one manager
    # lets each stack take the objects over, as a fresh `pulumi up` would own them.
    manager = "pulumi-kubernetes"
    objects = stack_objects(stack_runs[stack])
    assert objects
    first = {}
    for obj in objects:
        stored, warnings = server_side_apply(client, obj, manager)
        assert warnings == [], f"{obj['kind']} {obj['metadata']['name']}: {warnings}"
        lost = lost_fields(as_stored(obj), stored)
        assert lost == [], f"{obj['kind']} {obj['metadata']['name']} lost fields: {lost}"
        first[(obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])] = revision(stored)
    for obj in objects:  # the second `pulumi up` with nothing changed
        stored, _ = server_side_apply(client, obj, manager)
        key = (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"])
        assert revision(stored) == first[key], f"re-applying {key} changed it"


def test_the_real_server_refuses_fields_outside_the_raycluster_schema(control_plane):
    """Server-side apply refuses (HTTP 500, typed patch) a field the CRD does not
    declare instead of pruning it; lost_fields catches what is pruned or changed."""
    client = control_plane.dynamic()
    obj = {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "probe", "namespace": "default"},
           "spec": {"headGroupSpec": {"rayStartParams": {}, "notAField": 1, "template": {"spec": {"containers": [
               {"name": "ray-head", "image": "rayproject/ray:2.60.0"}]}}}}}
    with pytest.raises(ApplyError, match="notAField: field not declared in schema"):
        server_side_apply(client, obj, dry_run=True)
    del obj["spec"]["headGroupSpec"]["notAField"]
    stored, _ = server_side_apply(client, obj, dry_run=True)
    assert lost_fields(obj, stored) == []
    assert lost_fields({**obj, "status": {"state": "ready"}}, stored) == [".status (pruned)"]
    assert lost_fields(obj, {**stored, "spec": {**stored["spec"], "rayVersion": "2.9.0"}}) == []
    changed = copy.deepcopy(stored)
    changed["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] = "other"
    assert lost_fields(obj, changed) == [".spec.headGroupSpec.template.spec.containers[0].image: 'rayproject/ray:2.60.0' -> 'other'"]


# --- boundary sweep ----------------------------------------------------------
# For every numeric or enumerated setting: the values at and just past its
# documented limits are either refused by raykube with an error naming the
# setting, or give objects the real API server accepts.

INT32_MAX = 2**31 - 1
# (stack whose file is the base, config path of the section, what the section
# holds first): worker groups of each mode (hpa: local, ray with a GPU group:
# eks, fixed: gke's second cluster); optional sections that need a choice.
SECTIONS = [
    ("local", ("autoscaling",), None),
    ("local", ("metrics",), None),
    ("local", ("network",), None),
    ("local", ("awsAccess",), None),
    ("local", ("rayClusters", 0), None),
    ("eks", ("rayClusters", 0), None),
    ("local", ("rayClusters", 0, "workerGroups", 0), None),
    ("eks", ("rayClusters", 0, "workerGroups", 1), None),
    ("gke", ("rayClusters", 1, "workerGroups", 0), None),
    ("eks", ("rayJobs", 0), None),
    ("gke", ("rayJobs", 0), None),
    ("eks", ("rayServices", 0), None),
    ("eks", ("rayClusters", 0, "gcsFaultTolerance"), {"backend": "rocksdb", "storage": {"size": "10Gi"}}),
    ("eks", ("rayClusters", 0, "gcsFaultTolerance"), {"backend": "redis", "redis": {"address": "redis:6379"}}),
]


def _model_at(path: tuple) -> type:
    from raykube.settings import Settings

    model = Settings
    for part in path:
        if isinstance(part, int):
            continue
        field = next(f for f in model.model_fields.values() if f.alias == part)
        model = _inner_model(field.annotation)
    return model


def _inner_model(annotation) -> Any:
    import typing

    from pydantic import BaseModel

    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
        inner = [arg for arg in typing.get_args(candidate) if isinstance(arg, type) and issubclass(arg, BaseModel)]
        if inner:
            return inner[0]
    return None


def boundary_values(field) -> list[Any]:
    """At and just past the field's documented limits (int bounds, or Literal choices)."""
    import typing

    from annotated_types import Ge, Le

    args = typing.get_args(field.annotation)
    if typing.get_origin(field.annotation) is typing.Literal:
        return [*args, "not-a-choice"]
    if field.annotation is int or (int in args and type(None) in args):
        low = next((m.ge for m in field.metadata if isinstance(m, Ge)), None)
        high = next((m.le for m in field.metadata if isinstance(m, Le)), None)
        values = [] if low is None else [low - 1, low]
        return values + ([high, high + 1] if high is not None else [INT32_MAX, INT32_MAX + 1])
    return []


def _has_required_fields(model) -> bool:
    return any(field.is_required() for field in model.model_fields.values())


def sweep_cases() -> list[tuple[str, tuple, Any, str, Any]]:
    cases = []
    for stack, path, holds in SECTIONS:
        todo = [((), _model_at(path), holds or {})]
        while todo:
            prefix, model, base = todo.pop()
            for field in model.model_fields.values():
                nested = _inner_model(field.annotation)
                if nested is not None and field.alias not in ("workerGroups", "rayClusters", "rayJobs"):
                    # An optional section with required fields is swept where a SECTIONS entry fills them.
                    if field.alias in base or not _has_required_fields(nested):
                        todo.append(((*prefix, field.alias), nested, base.get(field.alias) or {}))
                    continue
                for value in boundary_values(field):
                    cases.append((stack, path, holds, ".".join((*prefix, field.alias)), value))
    return cases


def _set(config: dict[str, Any], path: tuple, dotted: str, value: Any) -> None:
    keys = [*path, *dotted.split(".")]
    node: Any = config
    node = node.setdefault(f"raykube:{keys[0]}", {})
    for key in keys[1:-1]:
        node = node[key] if isinstance(key, int) else node.setdefault(key, {})
    node[keys[-1]] = value


def _key(path: tuple, dotted: str) -> str:
    text = "raykube:"
    for part in [*path, *dotted.split(".")]:
        text += f"[{part}]" if isinstance(part, int) else (("." if text != "raykube:" else "") + part)
    return text


CASES = sweep_cases()


def test_the_sweep_covers_every_bounded_setting():
    swept = {(path, dotted) for _, path, _, dotted, _ in CASES}
    for expected in [(("autoscaling",), "scaleDownStabilizationSeconds"), (("rayClusters", 0, "workerGroups", 0), "hpa.scaleUp.periodSeconds"),
                     (("rayClusters", 0), "autoscaler.idleTimeoutSeconds"), (("rayClusters", 0), "head.serviceType"),
                     (("awsAccess",), "sessionDurationSeconds"), (("rayClusters", 0, "workerGroups", 1), "maxReplicas"),
                     (("rayClusters", 0), "upgradeStrategy"), (("rayClusters", 0), "auth.mode"),
                     (("rayClusters", 0, "workerGroups", 1), "idleTimeoutSeconds"),
                     (("rayClusters", 0, "gcsFaultTolerance"), "storage.deletionPolicy"),
                     (("rayClusters", 0, "gcsFaultTolerance"), "backend"),
                     (("rayJobs", 0), "submissionMode"), (("rayJobs", 0), "backoffLimit"),
                     (("rayServices", 0), "upgradeStrategy"), (("rayServices", 0), "rayClusterDeletionDelaySeconds"),
                     (("rayServices", 0), "readyTimeoutSeconds")]:
        assert expected in swept


@pytest.mark.parametrize("stack, path, holds, dotted, value", CASES,
                         ids=[f"{s}:{_key(p, d)}={v}" + (f"[{h.get('backend')}]" if h else "") for s, p, h, d, v in CASES])
def test_limits_are_refused_clearly_or_accepted_by_the_server(control_plane, stack, path, holds, dotted, value):
    from raykube.settings import SettingsError
    from tests.helpers.program import run_program

    config = copy.deepcopy(stack_file_config(stack))
    for key, held in (holds or {}).items():
        _set(config, path, key, copy.deepcopy(held))
    _set(config, path, dotted, value)
    key = _key(path, dotted)
    try:
        result = run_program(config, stack)
    except SettingsError as error:
        # The error names this setting, the sibling it must agree with, or the
        # section that holds it (an hpa block on a group another mode scales).
        parent = key.rsplit(".", 1)[0]
        assert any(k == key or k.startswith(parent) or key.startswith((f"{k}.", f"{k}[")) for k in error.keys), f"{key}={value!r} gave: {error}"
        assert "Traceback" not in str(error)
        return
    client = control_plane.dynamic()
    objects = stack_objects(result)
    for obj in objects:
        if obj["kind"] == "Namespace":
            server_side_apply(client, obj, "pulumi-kubernetes")
    refused = []
    for obj in objects:
        if obj["kind"] != "Namespace":
            try:
                server_side_apply(client, obj, "pulumi-kubernetes", dry_run=True)
            except ApplyError as error:
                refused.append(str(error))
    assert refused == [], f"{key}={value!r} passed raykube's validation but the server refuses: {refused}"


# --- the HPA pool under a real kube-controller-manager -----------------------

def test_hpa_scales_the_pool_and_its_pods_are_admitted(stack_runs, control_plane):
    from tests.helpers.envtest import wait_for

    result = stack_runs["local"]
    flags = controller_manager_flags(result.outputs["kubeadmConfig"])
    assert "--horizontal-pod-autoscaler-downscale-stabilization=15s" in flags
    control_plane.start_controller_manager(flags)
    client = control_plane.dynamic()
    objects = stack_objects(result)
    for obj in objects:
        _, warnings = server_side_apply(client, obj, "pulumi-kubernetes")
        assert warnings == [], f"{obj['kind']} {obj['metadata']['name']}: {warnings}"  # Pod Security warn=restricted
    (deployment,) = [obj for obj in objects if obj["kind"] == "Deployment"]
    (hpa,) = [obj for obj in objects if obj["kind"] == "HorizontalPodAutoscaler"]
    namespace = deployment["metadata"]["namespace"]
    selector = ",".join(f"{key}={value}" for key, value in deployment["spec"]["selector"]["matchLabels"].items())
    pods = client.resources.get(api_version="v1", kind="Pod")
    created = wait_for(lambda: pods.get(namespace=namespace, label_selector=selector).items, 90,
                       "the pool's ReplicaSet to create pods (default ServiceAccount, Pod Security admission)")
    assert len(created) >= hpa["spec"]["minReplicas"]
    hpas = client.resources.get(api_version="autoscaling/v2", kind="HorizontalPodAutoscaler")

    def able_to_scale():
        status = hpas.get(name=hpa["metadata"]["name"], namespace=namespace).to_dict().get("status") or {}
        return next((c for c in status.get("conditions") or [] if c["type"] == "AbleToScale"), None)

    condition = wait_for(able_to_scale, 90, "the HPA controller to evaluate the pool's HPA")
    assert condition["status"] == "True", condition
    events = client.resources.get(api_version="v1", kind="Event").get(namespace=namespace).items
    failed = [f"{e.involvedObject.kind} {e.involvedObject.name}: {e.message}" for e in events if e.reason == "FailedCreate"]
    assert failed == []
