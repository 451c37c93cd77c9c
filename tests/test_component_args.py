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
