"""Reuse from other projects: the Python consumer runs under Pulumi's mocks; the
YAML consumer uses only types and properties the component package's schema has."""
from __future__ import annotations

import re
import runpy

import yaml

from raykube.component_docs import package_schema
from raykube.offline import run_offline
from tests.helpers.program import ROOT
from tests.helpers.upstream import validate_object, validate_raycluster

CONSUMER = ROOT / "examples" / "consumer"
CONSUMER_YAML = ROOT / "examples" / "consumer-yaml" / "Pulumi.yaml"


def run_consumer(config: dict[str, str]):
    project = yaml.safe_load((CONSUMER / "Pulumi.yaml").read_text())["name"]

    def program():
        runpy.run_path(str(CONSUMER / "__main__.py"), run_name="__main__")
        return {}, {}

    return run_offline(program, config, "dev", project=project)


def test_python_consumer_adds_a_ray_cluster_to_its_namespace():
    result = run_consumer({})
    (cluster,) = result.of_type("kubernetes:ray.io/v1:RayCluster")
    validate_raycluster(cluster.revealed_inputs)
    assert cluster.inputs["metadata"]["namespace"] == "analytics"
    (chart,) = result.of_type("kubernetes:helm.sh/v4:Chart")
    assert chart.inputs["values"]["watchNamespace"] == ["analytics"] and chart.inputs["values"]["singleNamespaceInstall"] is True
    assert result.of_type("kubernetes:yaml/v2:ConfigGroup"), "the CRDs, by default"
    for resource in result.kubernetes_objects():
        validate_object(resource.revealed_inputs, "1.33")
    # The project's own resources stay as they were: top level, not inside raykube's components.
    (app,) = result.of_type("kubernetes:core/v1:ConfigMap")
    assert app.parent.rsplit("::", 2)[-2].endswith("pulumi:pulumi:Stack") and "raykube:index:" not in app.parent


def test_python_consumer_can_leave_the_crds_to_another_stack():
    result = run_consumer({"analytics:installCrds": "false"})
    assert result.of_type("kubernetes:yaml/v2:ConfigGroup") == []
    assert result.of_type("kubernetes:ray.io/v1:RayCluster")


def _check(value, spec: dict, schema: dict, where: str, problems: list[str]) -> None:
    """Does `value` fit the schema property `spec` (following $refs into types)?"""
    if isinstance(value, str) and value.startswith("${"):
        return  # an output of another resource: typed by the engine
    ref = spec.get("$ref", "")
    if ref.startswith("#/types/"):
        type_spec = schema["types"][ref.removeprefix("#/types/")]
        if not isinstance(value, dict):
            problems.append(f"{where}: expected an object")
            return
        for key, item in value.items():
            if key not in type_spec.get("properties", {}):
                problems.append(f"{where}.{key}: no such property in {ref.rsplit(':', 1)[-1]}")
            else:
                _check(item, type_spec["properties"][key], schema, f"{where}.{key}", problems)
        for key in type_spec.get("required", []):
            if key not in value:
                problems.append(f"{where}.{key}: required")
    elif spec.get("type") == "array":
        if not isinstance(value, list):
            problems.append(f"{where}: expected a list")
            return
        for index, item in enumerate(value):
            _check(item, spec.get("items", {}), schema, f"{where}[{index}]", problems)
    elif spec.get("type") == "object" and "additionalProperties" in spec and isinstance(value, dict):
        for key, item in value.items():
            _check(item, spec["additionalProperties"], schema, f"{where}.{key}", problems)


def test_yaml_consumer_uses_only_what_the_package_schema_has():
    schema = package_schema()
    project = yaml.safe_load(CONSUMER_YAML.read_text())
    assert project["packages"]["raykube"] == "../../components"
    assert (CONSUMER_YAML.parent / project["packages"]["raykube"] / "PulumiPlugin.yaml").exists()
    problems: list[str] = []
    raykube_resources = {}
    for name, resource in project["resources"].items():
        if not resource["type"].startswith("raykube:"):
            continue
        spec = schema["resources"].get(resource["type"])
        if spec is None:
            problems.append(f"{name}: no resource type {resource['type']}")
            continue
        raykube_resources[name] = spec
        properties = resource.get("properties", {})
        for key, value in properties.items():
            if key not in spec["inputProperties"]:
                problems.append(f"{name}.{key}: no such input")
            else:
                _check(value, spec["inputProperties"][key], schema, f"{name}.{key}", problems)
        for key in spec.get("requiredInputs", []):
            if key not in properties:
                problems.append(f"{name}.{key}: required input missing")
    for output, expression in project["outputs"].items():
        resource, prop = re.fullmatch(r"\$\{(\w+)\.(\w+)\}", expression).groups()
        if prop not in raykube_resources[resource]["properties"]:
            problems.append(f"outputs.{output}: {resource} has no output {prop}")
    assert problems == []
    assert {"analyticsRay", "kuberayAnalytics", "kuberay"} == set(raykube_resources)


def test_the_yaml_check_catches_a_misspelled_property():
    schema = package_schema()
    problems: list[str] = []
    spec = schema["resources"]["raykube:index:RayCluster"]["inputProperties"]["workerGroups"]
    _check([{"name": "cpu", "maxReplica": 4}], spec, schema, "ray.workerGroups", problems)
    assert problems == ["ray.workerGroups[0].maxReplica: no such property in WorkerGroupArgs"]
