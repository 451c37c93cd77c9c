"""The components as a Pulumi component package: the schema Pulumi's analyzer infers
is complete and documented, docs/components.md's reference is generated from it, and the
plugin starts from its own folder."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from components.catalog import public_components
from raykube.component_docs import main as component_docs, package_schema
from tests.helpers.program import ROOT, STACKS


@pytest.fixture(scope="module")
def schema():
    return package_schema()


def test_every_public_component_is_in_the_schema_and_documented(schema):
    components = public_components()
    assert len(components) >= 11  # found by walking the package: a new one is covered by itself
    for component in components:
        resource = schema["resources"].get(f"raykube:index:{component.__name__}")
        assert resource is not None, f"{component.__name__} is not in the schema"
        assert resource.get("isComponent") is True
        assert resource.get("description"), f"{component.__name__} has no description"
        assert resource.get("inputProperties"), f"{component.__name__} has no inputs"
        assert resource.get("properties"), f"{component.__name__} has no outputs"
        for kind in ("inputProperties", "properties"):
            for name, prop in resource[kind].items():
                assert prop.get("description"), f"{component.__name__}.{name} ({kind}) is not described"


def test_every_nested_type_is_documented(schema):
    assert schema["types"], "structured inputs are typed, not opaque maps"
    for token, spec in schema["types"].items():
        assert spec.get("description"), f"{token} has no description"
        for name, prop in spec.get("properties", {}).items():
            assert prop.get("description"), f"{token}.{name} is not described"


def test_required_inputs_are_marked(schema):
    cluster = schema["resources"]["raykube:index:RayCluster"]
    assert {"namespace", "rayVersion", "image"} <= set(cluster["requiredInputs"])
    # The escape hatches take any JSON: a raw pod template, any other chart value.
    pod_template = schema["types"]["raykube:index:HeadGroupArgs"]["properties"]["podTemplate"]
    chart_values = schema["resources"]["raykube:index:KubeRayOperator"]["inputProperties"]["values"]
    for hatch in (pod_template, chart_values):
        assert "pulumi.json#/Any" in (hatch.get("$ref"), hatch.get("additionalProperties", {}).get("$ref"))


def test_the_type_tokens_the_program_registers_are_the_schemas(stack_runs, schema):
    registered = {r.type for stack in STACKS for r in stack_runs[stack].resources if r.type.startswith("raykube:index:")}
    assert registered and registered <= set(schema["resources"])


def test_the_component_reference_is_fresh():
    assert component_docs(["--check"]) == 0, "run `venv/bin/python -m raykube.component_docs`"


def test_the_plugin_loads_its_components_from_its_own_folder():
    plugin = yaml.safe_load((ROOT / "components" / "PulumiPlugin.yaml").read_text())
    assert plugin["runtime"]["name"] == "python"
    code = ("import runpy; namespace = runpy.run_path('__main__.py', run_name='plugin_check'); "
            "print(sorted(c.__name__ for c in namespace['public_components']()))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "components", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "RayCluster" in done.stdout and "RayJob" in done.stdout
