"""The real Pulumi CLI runs Python programs and raykube's component package through the Python
language host in tools/pulumi-plugins (a stand-in: the Go module proxy does not serve the CLI's
own, see docs/testing.md): a program's virtualenv, config, dynamic resources, outputs and secrets,
no-change previews, diffs, destroys and failures; the schema `pulumi package get-schema` reads from
components/ as a Python plugin; and the YAML consumer example using that package (its children, its whole
numbers, and a fraction given for a count refused in one line naming the component and field).

Each command runs the CLI built by `tools/build-go` against a file backend in a temporary folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from components.catalog import public_components
from tests.helpers.cluster_processes import require_built
from tests.helpers.upstream import upstream_path

ROOT = Path(__file__).resolve().parents[1]
PULUMI = ROOT / ".tools" / "bin" / "pulumi"
PLUGINS = ROOT / "tools" / "pulumi-plugins"
YAML_EXAMPLE = ROOT / "examples" / "consumer-yaml" / "Pulumi.yaml"
SECRET = "s3cr3t-token-value"
TIMEOUT = 180


def program_text(body: str) -> str:
    return f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + textwrap.dedent(body)


GREETING_PROGRAM = program_text("""
    import pulumi
    from components.local_file import LocalFile

    config = pulumi.Config()
    greeting = config.require("greeting")
    print(f"writing {greeting!r} for stack {pulumi.get_stack()}")
    note = LocalFile("note", path=config.require("path"), content=greeting)
    pulumi.export("greeting", greeting)
    pulumi.export("path", note.path)
    pulumi.export("sha256", note.sha256)
    pulumi.export("token", config.require_secret("token"))
    pulumi.export("python", sys.executable)
""")

FAILING_PROGRAM = program_text("""
    import pulumi

    pulumi.export("never", "exported")
    raise ValueError("the greeting has no audience")
""")

# How raykube reports bad settings (raykube.settings.SettingsError is a RunError): the message alone.
RUN_ERROR_PROGRAM = program_text("""
    import pulumi

    raise pulumi.RunError("greeting: must not be empty (Pulumi.dev.yaml)")
""")


class Pulumi:
    """The CLI with a file backend of its own, the stand-in plugins first on PATH."""

    def __init__(self, home: Path) -> None:
        self.env = {
            **os.environ,
            "PATH": os.pathsep.join([str(PLUGINS), str(PULUMI.parent), os.environ.get("PATH", "")]),
            "PULUMI_HOME": str(home / "pulumi-home"),
            "PULUMI_BACKEND_URL": f"file://{home / 'backend'}",
            "PULUMI_CONFIG_PASSPHRASE": "language-host-check",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        }
        (home / "backend").mkdir(parents=True, exist_ok=True)

    def __call__(self, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([str(PULUMI), *args, "--non-interactive"], cwd=cwd, env=self.env,
                              capture_output=True, text=True, timeout=TIMEOUT)
        if check:
            assert done.returncode == 0, f"pulumi {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done


def python_project(folder: Path, name: str, program: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "Pulumi.yaml").write_text(textwrap.dedent(f"""\
        name: {name}
        runtime:
          name: python
          options:
            toolchain: pip
            virtualenv: venv
        """))
    (folder / "venv").symlink_to(ROOT / "venv")  # the project's virtualenv, as the README's install makes it
    (folder / "__main__.py").write_text(program)
    return folder


@pytest.fixture(scope="module")
def pulumi(tmp_path_factory) -> Pulumi:
    require_built(PULUMI, "the Pulumi CLI", executable=True)
    return Pulumi(tmp_path_factory.mktemp("pulumi"))


@pytest.fixture(scope="module")
def greeting_stack(pulumi, tmp_path_factory):
    """A stack of the greeting program, brought up once: (project folder, the file it manages)."""
    project = python_project(tmp_path_factory.mktemp("greeting") / "project", "greeting", GREETING_PROGRAM)
    note = project.parent / "out" / "note.txt"
    pulumi("stack", "init", "dev", cwd=project)
    pulumi("config", "set", "greeting", "hello", cwd=project)
    pulumi("config", "set", "path", str(note), cwd=project)
    pulumi("config", "set", "--secret", "token", SECRET, cwd=project)
    up = pulumi("up", "--yes", "--skip-preview", cwd=project)
    return project, note, up


def outputs(pulumi: Pulumi, project: Path, *flags: str) -> dict:
    return json.loads(pulumi("stack", "output", "--json", *flags, cwd=project).stdout)


def test_up_runs_the_program_with_its_config_and_shows_its_output(greeting_stack):
    project, note, up = greeting_stack
    assert note.read_text() == "hello"  # the dynamic resource ran in the provider process
    assert "writing 'hello' for stack dev" in up.stdout  # print() reaches the CLI's output
    assert SECRET not in up.stdout + up.stderr


def test_stack_outputs_keep_the_secret_masked(pulumi, greeting_stack):
    project, note, _ = greeting_stack
    shown = outputs(pulumi, project)
    assert shown == {"greeting": "hello", "path": str(note), "sha256": hashlib.sha256(b"hello").hexdigest(),
                     "token": "[secret]", "python": str(project / "venv" / "bin" / "python")}  # its own virtualenv
    assert outputs(pulumi, project, "--show-secrets")["token"] == SECRET


def test_an_unchanged_program_previews_no_changes_and_a_config_change_a_diff(pulumi, greeting_stack):
    project, note, _ = greeting_stack
    pulumi("preview", "--expect-no-changes", cwd=project)
    pulumi("config", "set", "greeting", "bonjour", cwd=project)
    try:
        changed = pulumi("preview", "--expect-no-changes", "--diff", cwd=project, check=False)
        assert changed.returncode != 0, changed.stdout
        assert "bonjour" in changed.stdout and "update" in changed.stdout, changed.stdout
        assert note.read_text() == "hello"  # a preview writes nothing
    finally:
        pulumi("config", "set", "greeting", "hello", cwd=project)


def test_destroy_removes_what_the_program_made(pulumi, greeting_stack):
    project, note, _ = greeting_stack
    pulumi("destroy", "--yes", "--skip-preview", cwd=project)
    assert not note.exists()
    assert outputs(pulumi, project) == {}


@pytest.mark.parametrize("program, message, traceback", [
    (FAILING_PROGRAM, "ValueError: the greeting has no audience", True),
    (RUN_ERROR_PROGRAM, "greeting: must not be empty (Pulumi.dev.yaml)", False),
], ids=["exception", "run-error"])
def test_a_program_that_raises_fails_the_command_with_its_error(pulumi, tmp_path, program, message, traceback):
    project = python_project(tmp_path / "project", f"failing-{traceback}", program)
    pulumi("stack", "init", "dev", cwd=project)
    failed = pulumi("preview", cwd=project, check=False)
    shown = failed.stdout + failed.stderr
    assert failed.returncode != 0
    diagnostics = shown.partition("Diagnostics:")[2]
    assert diagnostics.count(message) == 1, shown  # once, not again as the CLI's own error
    assert ("Traceback" in shown) is traceback, shown


def test_get_schema_runs_the_component_package_as_a_python_plugin(pulumi, tmp_path):
    done = pulumi("package", "get-schema", str(ROOT / "components"), cwd=tmp_path)
    schema = json.loads(done.stdout)
    assert schema["name"] == "raykube"
    components = {token for token, spec in schema["resources"].items() if spec.get("isComponent")}
    assert components == {f"raykube:index:{component.__name__}" for component in public_components()}


def yaml_example_rendered(folder: Path, rendered: Path) -> Path:
    """examples/consumer-yaml as its user has it after `pulumi package add`, but with `packages:` naming
    components/ by its absolute path, every resource given a Kubernetes provider that renders YAML to
    `rendered` instead of reaching a cluster, and the KubeRay CRDs and chart read from the upstream copies."""
    project = yaml.safe_load(YAML_EXAMPLE.read_text())
    project["packages"]["raykube"] = str(ROOT / "components")
    resources = {"render": {"type": "pulumi:providers:kubernetes", "properties": {"renderYamlToDirectory": str(rendered)}}}
    for name, resource in project["resources"].items():
        options = resource.setdefault("options", {})
        if resource["type"].startswith("raykube:"):
            options["providers"] = ["${render}"]  # for the component's children
        else:
            options["provider"] = "${render}"
        resources[name] = resource
    resources["kuberay"]["properties"]["path"] = str(upstream_path("charts/kuberay-operator/crds"))
    resources["kuberayAnalytics"]["properties"]["source"] = {"path": str(upstream_path("charts/kuberay-operator"))}
    project["resources"] = resources
    folder.mkdir(parents=True)
    (folder / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
    return folder


def descendants(steps: list[dict], urn: str) -> list[dict]:
    parents = {step["urn"]: (step.get("newState") or {}).get("parent") for step in steps}

    def under(candidate: str) -> bool:
        while (candidate := parents.get(candidate)) is not None:
            if candidate == urn:
                return True
        return False

    return [step for step in steps if under(step["urn"])]


def test_the_yaml_example_previews_raykube_components_with_their_children(pulumi, tmp_path):
    for program, what in (("pulumi-language-yaml", "Pulumi's YAML language host"),
                          ("pulumi-resource-kubernetes", "the Kubernetes provider")):
        require_built(PULUMI.parent / program, what, executable=True)
    project = yaml_example_rendered(tmp_path / "consumer-yaml", tmp_path / "rendered")
    pulumi("stack", "init", "dev", cwd=project)
    steps = json.loads(pulumi("preview", "--json", cwd=project).stdout)["steps"]
    by_name = {step["urn"].rsplit("::", 1)[1]: step for step in steps}
    example = yaml.safe_load(YAML_EXAMPLE.read_text())["resources"]
    for name, resource in example.items():
        if resource["type"].startswith("raykube:"):
            assert by_name[name]["newState"]["type"] == resource["type"]
            assert descendants(steps, by_name[name]["urn"]), f"{name} ({resource['type']}) has no children"

    def children_of(name: str, kind: str) -> list[str]:
        return [step["newState"]["inputs"].get("metadata", {}).get("name") for step in descendants(steps, by_name[name]["urn"])
                if step["newState"]["type"] == kind]

    crds = {yaml.safe_load(path.read_text())["metadata"]["name"] for path in upstream_path("charts/kuberay-operator/crds").glob("*.yaml")}
    assert set(children_of("kuberay", "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition")) <= crds
    assert children_of("kuberay", "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition")
    assert example["analyticsRay"]["properties"]["clusterName"] in children_of("analyticsRay", "kubernetes:ray.io/v1:RayCluster")
    assert children_of("kuberayAnalytics", "kubernetes:apps/v1:Deployment")
    # The example's whole numbers reach the RayCluster as the numbers it wrote (YAML sends them as floats).
    (cluster,) = [step["newState"]["inputs"] for step in descendants(steps, by_name["analyticsRay"]["urn"])
                  if step["newState"]["type"] == "kubernetes:ray.io/v1:RayCluster"]
    (group,) = cluster["spec"]["workerGroupSpecs"]
    written = example["analyticsRay"]["properties"]["workerGroups"][0]
    assert (group["minReplicas"], group["maxReplicas"]) == (written["minReplicas"], written["maxReplicas"])
    assert not (tmp_path / "rendered").exists()  # a preview renders nothing


def test_a_yaml_program_giving_a_component_a_fraction_for_a_count_fails_with_one_line_naming_it(pulumi, tmp_path):
    require_built(PULUMI.parent / "pulumi-language-yaml", "Pulumi's YAML language host", executable=True)
    project = yaml_example_rendered(tmp_path / "consumer-yaml", tmp_path / "rendered")
    program = yaml.safe_load((project / "Pulumi.yaml").read_text())
    program["resources"]["analyticsRay"]["properties"]["workerGroups"][0]["minReplicas"] = 1.5
    (project / "Pulumi.yaml").write_text(yaml.safe_dump(program, sort_keys=False))
    pulumi("stack", "init", "fraction", cwd=project)  # the module's backend has the example's "dev" already
    failed = pulumi("preview", "--stack", "fraction", cwd=project, check=False)
    shown = failed.stdout + failed.stderr
    assert failed.returncode != 0
    message = "RayCluster 'analyticsRay': worker_groups[0].min_replicas: must be a whole number, not float 1.5"
    assert shown.partition("Diagnostics:")[2].count(message) == 1, shown
    assert "Traceback" not in shown and "Unexpected" not in shown, shown
