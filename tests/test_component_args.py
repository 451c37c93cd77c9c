"""Components check their own arguments: a typo, a missing field or min > max is one
ComponentArgsError naming the component and the field, before anything is registered,
whoever calls them (raykube's program, a Python consumer, the component package)."""
from __future__ import annotations

import typing

import pulumi
import pytest

from components.args import ComponentArgsError
from components.catalog import public_components
from raykube.offline import OfflineMocks, RecordingMonitor, run_offline

COMPONENTS = public_components()


def args_type(component: type) -> type:
    return typing.get_type_hints(component.__init__, globalns=vars(pulumi) | vars(__import__(component.__module__, fromlist=["x"])))["args"]


def build_alone(component: type, args) -> RecordingMonitor:
    """Build one component under mocks, as a consumer's program would; the monitor records what was registered."""
    monitor = RecordingMonitor(OfflineMocks())

    def program():
        component("consumer", args)
        return {}, {}

    with pytest.raises(ComponentArgsError) as caught:
        run_offline(program, {}, "consumer", project="consumer", monitor=monitor)
    monitor.error = caught.value
    return monitor


def misspelled(name: str) -> str:
    return name[:-1] if len(name) > 3 else name + "x"


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.__name__)
def test_a_misspelled_field_is_one_error_naming_it_and_nothing_is_registered(component):
    fields = list(args_type(component).__annotations__)
    wrong = misspelled(fields[0])
    monitor = build_alone(component, {wrong: "x"})
    message = str(monitor.error)
    assert message.startswith(f"{component.__name__} 'consumer': {wrong}: unknown field"), message
    assert fields[0] in message  # the field meant
    assert monitor.registered == []


@pytest.mark.parametrize("component", COMPONENTS, ids=lambda c: c.__name__)
def test_a_missing_required_field_is_one_error(component):
    required = sorted(args_type(component).__required_keys__)
    if not required:
        pytest.skip(f"{component.__name__} has no required field")
    monitor = build_alone(component, {})
    assert str(monitor.error) == f"{component.__name__} 'consumer': {required[0]}: required field missing"
    assert monitor.registered == []


def test_the_reported_typo_in_a_worker_group():
    from components.ray_cluster import RayCluster

    monitor = build_alone(RayCluster, {"namespace": "ray", "ray_version": "2.60.0", "image": "rayproject/ray:2.60.0-py311",
                                       "worker_groups": [{"name": "cpu", "max_replica": 9, "min_replicas": 9}]})
    assert str(monitor.error) == "RayCluster 'consumer': worker_groups[0].max_replica: unknown field (did you mean max_replicas?)"
    assert monitor.registered == []


@pytest.mark.parametrize("group, field", [
    ({"name": "cpu", "min_replicas": 5, "max_replicas": 2}, "worker_groups[0].max_replicas"),
    ({"name": "cpu", "autoscaling": "hpa"}, "worker_groups[0].autoscaling"),
    ({"name": "cpu", "replicas": -1, "autoscaling": "fixed"}, "worker_groups[0].replicas"),
])
def test_ray_cluster_groups_that_cannot_work_are_refused(group, field):
    from components.ray_cluster import RayCluster

    monitor = build_alone(RayCluster, {"namespace": "ray", "ray_version": "2.60.0", "image": "img", "worker_groups": [group]})
    assert monitor.error.field == field and monitor.error.component == "RayCluster 'consumer'"
    assert monitor.registered == []


@pytest.mark.parametrize("group, field", [
    ({"name": "cpu", "min_replicas": 4, "max_replicas": 2, "resources": {"requests": {"cpu": "1"}}}, "group.max_replicas"),
    ({"name": "cpu", "min_replicas": 0, "resources": {"requests": {"cpu": "1"}}}, "group.min_replicas"),
    ({"name": "cpu"}, "group.resources.requests"),
])
def test_worker_pools_that_cannot_work_are_refused(group, field):
    from components.ray_worker_pool import RayWorkerPool

    monitor = build_alone(RayWorkerPool, {"namespace": "ray", "cluster_name": "rc", "image": "img", "ray_version": "2.60.0", "group": group})
    assert monitor.error.field == field
    assert monitor.registered == []


def plain_types(component: type) -> list[tuple[str, object]]:
    """(field, its plain type) of every top-level field a wrong value can be given for."""
    from components.args import _plain_types

    fields = []
    for field, hint in args_type(component).__annotations__.items():
        types = [tp for tp in _plain_types(hint) if tp is not typing.Any]
        if types:
            fields.append((field, types[0]))
    return fields


def wrong_value(tp) -> object:
    """A value of another type: what a consumer's typo or a YAML string gives."""
    if tp is int:
        return "3"
    if tp is bool:
        return "yes"
    if tp is str:
        return 3
    return "x"  # a mapping or a list


@pytest.mark.parametrize("component, field, tp", [(c, f, tp) for c in COMPONENTS for f, tp in plain_types(c)],
                         ids=lambda x: getattr(x, "__name__", str(x)))
def test_a_value_of_the_wrong_type_is_one_error_naming_its_field_and_nothing_is_registered(component, field, tp):
    value = wrong_value(tp)
    monitor = build_alone(component, {field: value})
    assert monitor.error.field == field and monitor.error.component == f"{component.__name__} 'consumer'", str(monitor.error)
    assert "must be" in str(monitor.error) and repr(value) in str(monitor.error)
    assert monitor.registered == []


@pytest.mark.parametrize("component, field", [(c, f) for c in COMPONENTS for f, tp in plain_types(c) if tp is int],
                         ids=lambda x: getattr(x, "__name__", str(x)))
def test_a_negative_count_or_duration_is_one_error_and_nothing_is_registered(component, field):
    monitor = build_alone(component, {field: -1})
    assert monitor.error.field == field, str(monitor.error)
    assert "must be between" in str(monitor.error)
    assert monitor.registered == []


RAY_CLUSTER = {"namespace": "ray", "ray_version": "2.60.0", "image": "rayproject/ray:2.60.0-py311"}


@pytest.mark.parametrize("component, args, field", [
    # Each once raised a raw ValueError from inside an apply, after the component was registered.
    ("RayCluster", {**RAY_CLUSTER, "worker_groups": [{"name": "cpu", "resources": {"requests": {"cpu": "two"}}}]},
     "worker_groups[0].resources.requests.cpu"),
    ("RayCluster", {**RAY_CLUSTER, "head": {"resources": {"limits": {"memory": "2"}}}}, "head.resources.limits.memory"),
    ("RayJob", {**RAY_CLUSTER, "entrypoint": "python x.py", "worker_groups": [{"name": "cpu", "min_replicas": 3, "max_replicas": 1}]},
     "worker_groups[0].max_replicas"),
    ("RayWorkerPool", {"namespace": "ray", "cluster_name": "rc", "image": "img", "ray_version": "2.60.0",
                       "group": {"name": "cpu", "resources": {"requests": {"cpu": "1"}, "limits": {"memory": "lots"}}}}, "group.resources.limits.memory"),
    ("KubeRayOperator", {"namespace": "ray", "resources": {"limits": {"nvidia.com/gpu": "0.5"}}}, "resources.limits.nvidia.com/gpu"),
    ("RayCluster", {**RAY_CLUSTER, "worker_groups": [{"name": "gpu", "ray_resources": {"GPU": 0.5}}]}, "worker_groups[0].ray_resources.GPU"),
    ("MetricsServer", {"resolution_seconds": 5}, "resolution_seconds"),
    ("KubeadmConfig", {"kubernetes_version": "1.21"}, "kubernetes_version"),
])
def test_values_the_api_refuses_stop_the_component_before_it_registers_anything(component, args, field):
    found = {c.__name__: c for c in COMPONENTS}[component]
    monitor = build_alone(found, args)
    assert monitor.error.field == field, str(monitor.error)
    assert monitor.registered == []
