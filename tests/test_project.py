"""The Pulumi project, the stacks and the offline render, as users meet them."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from raykube.settings import Settings
from tests.helpers.program import ROOT, STACKS
from tests.helpers.upstream import is_custom_resource, validate_kubernetes, validate_object


def test_project_file_declares_python_pip_venv_and_stack_dir():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "raykube"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "venv"}}
    assert project["stackConfigDir"] == "stacks"


def test_project_config_defaults_equal_the_settings_model():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    fields = {field.alias: field for field in Settings.model_fields.values()}
    for key, declaration in declared.items():
        assert key in fields, f"Pulumi.yaml declares {key}, which the settings model (raykube/settings/) does not know"
        assert declaration["description"]
        assert declaration["default"] == fields[key].default


def test_every_target_has_a_stack_file():
    assert set(STACKS) >= {"local", "eks", "aks", "gke"}


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_renders_valid_objects(stack_runs, stack):
    result = stack_runs[stack]
    version = Settings.model_validate({"kubernetesVersion": "1.33"}).kubernetes_minor
    objects = result.kubernetes_objects()
    assert objects, "a stack creates Kubernetes objects"
    for resource in objects:
        validate_object(resource.revealed_inputs, version)


@pytest.mark.parametrize("version", ["1.25", "1.30", "1.37"])
def test_local_objects_valid_across_kubernetes_versions(run, version):
    result = run({"raykube:kubernetesVersion": version}, "local")
    for resource in result.kubernetes_objects():
        if not is_custom_resource(resource.revealed_inputs):
            validate_kubernetes(resource.revealed_inputs, version)


def test_render_cli_writes_deterministic_files(tmp_path):
    outputs = []
    for attempt in ("a", "b"):
        out = tmp_path / attempt
        done = subprocess.run(
            [sys.executable, "-m", "raykube.render", "--stack", "local", "--out", str(out)],
            cwd=ROOT, capture_output=True, text=True, timeout=180,
        )
        assert done.returncode == 0, done.stderr
        assert "kubernetes:ray.io/v1:RayCluster" in done.stdout
        outputs.append({path.relative_to(out): path.read_text() for path in out.rglob("*") if path.is_file()})
    assert outputs[0] == outputs[1]
    files = outputs[0]
    cluster = yaml.safe_load(files[next(p for p in files if str(p) == "kubernetes/ray/raycluster-raycluster.yaml")])
    assert cluster["kind"] == "RayCluster"
    chart = yaml.safe_load(files[next(p for p in files if str(p).startswith("helm/kuberay-operator"))])
    assert chart["chart"] == "kuberay-operator" and chart["repository"].startswith("https://")
    assert "outputs.yaml" in {str(p) for p in files}


def test_every_component_registers_outputs_and_parents_its_children(stack_runs):
    result = stack_runs["local"]
    components = {r.urn: r for r in result.resources if r.type.startswith("raykube:index:")}
    assert components
    for urn, component in components.items():
        children = [r for r in result.resources if r.parent == urn]
        assert children, f"{component.type} has no children"
        for child in children:
            assert child.name.startswith(f"{component.name}-"), f"{child.name} is not named after {component.name}"


def test_components_import_without_the_program():
    """The library stands alone: other Pulumi projects import it without raykube's program."""
    code = (
        "import sys, pkgutil, importlib, components\n"
        "for info in pkgutil.iter_modules(components.__path__):\n"
        "    importlib.import_module(f'components.{info.name}')\n"
        "print(sorted(name for name in sys.modules if name == 'raykube' or name.startswith('raykube.')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_settings_errors_reach_pulumi_as_run_errors():
    """Pulumi prints a RunError's message without a traceback."""
    import pulumi

    from raykube.settings import SettingsError

    assert issubclass(SettingsError, pulumi.RunError)
