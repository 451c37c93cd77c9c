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


# --- numbers from other languages: every consumer but Python's sends its numbers as floats ------

def test_whole_number_floats_for_int_fields_are_accepted_and_made_ints_before_the_builders_read_them():
    from components.args import check_args
    from components.ray_cluster import RayClusterArgs

    # What the component package receives from the YAML example (minReplicas: 0, maxReplicas: 6).
    args = {**RAY_CLUSTER, "ready_timeout_seconds": 900.0,
            "worker_groups": [{"name": "cpu", "autoscaling": "ray", "min_replicas": 0.0, "max_replicas": 6.0}]}
    check_args("RayCluster 'analyticsRay'", RayClusterArgs, args)
    group = args["worker_groups"][0]
    assert (group["min_replicas"], group["max_replicas"], args["ready_timeout_seconds"]) == (0, 6, 900)
    assert {type(group["min_replicas"]), type(group["max_replicas"]), type(args["ready_timeout_seconds"])} == {int}


def test_a_ray_cluster_given_whole_number_floats_registers_its_groups_with_those_counts():
    from components.ray_cluster import RayCluster

    monitor = RecordingMonitor(OfflineMocks())

    def program():
        RayCluster("analyticsRay", {**RAY_CLUSTER, "worker_groups": [
            {"name": "cpu", "autoscaling": "ray", "min_replicas": 1.0, "max_replicas": 6.0}]})
        return {}, {}

    run_offline(program, {}, "consumer", project="consumer", monitor=monitor)
    (cluster,) = [r for r in monitor.registered if r.type == "kubernetes:ray.io/v1:RayCluster"]
    (group,) = cluster.inputs["spec"]["workerGroupSpecs"]
    assert (group["minReplicas"], group["maxReplicas"]) == (1, 6)


@pytest.mark.parametrize("field, group", [
    ("worker_groups[0].min_replicas", {"name": "cpu", "min_replicas": 1.5, "max_replicas": 6}),
    ("worker_groups[0].max_replicas", {"name": "cpu", "min_replicas": 0, "max_replicas": 6.25}),
])
def test_a_fractional_number_for_an_int_field_is_still_refused_by_name(field, group):
    from components.ray_cluster import RayCluster

    monitor = build_alone(RayCluster, {**RAY_CLUSTER, "worker_groups": [group]})
    value = group[field.rsplit(".", 1)[1]]
    assert str(monitor.error) == f"RayCluster 'consumer': {field}: must be a whole number, not float {value}"
    assert monitor.registered == []


def test_the_component_package_reports_bad_arguments_as_the_consumers_input_error_without_a_traceback():
    """Pulumi's ComponentProvider would wrap the error into `Unexpected <class 'Exception'>` and the
    provider's traceback; the package's provider hands it back as an InputPropertiesError (the
    engine shows its message alone). Nothing reaches the engine: the check runs before registering."""
    from pulumi.errors import InputPropertiesError

    from components.package_provider import PackageProvider

    provider = PackageProvider(COMPONENTS, "raykube", None, "0.0.0")
    inputs = {"namespace": "analytics", "rayVersion": "2.60.0", "image": "rayproject/ray:2.60.0-py311",
              "workerGroups": [{"name": "cpu", "minReplicas": 1.5, "maxReplicas": 6.0}]}  # as the YAML host sends them
    with pytest.raises(InputPropertiesError) as caught:
        provider.construct("analyticsRay", "raykube:index:RayCluster", inputs)
    assert caught.value.message == "RayCluster 'analyticsRay': worker_groups[0].min_replicas: must be a whole number, not float 1.5"
    assert caught.value.errors == []  # a list: the SDK's server fails on None (tests/test_language_host.py runs it)
    assert caught.value.__suppress_context__ and caught.value.__cause__ is None  # no chained traceback
