"""`raykube render --out` deletes and replaces only files it wrote in that folder, judged by itself:
renders/ is committed and the preview workflow renders pull requests, so a line a pull request adds
to a `.raykube-render` marker, or a symlink it commits, must never cost anyone a file. And a render
reports success only for objects Kubernetes' official schema accepts."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from raykube.render_output import MARKER
from tests.helpers.program import ROOT


def render_cli(*argv: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raykube.render", *argv], cwd=cwd, capture_output=True, text=True, timeout=180)


def snapshot(folder) -> dict[str, str]:
    """Every file, folder and symlink under `folder`, with what it holds: any deletion or write shows."""
    found = {}
    for path in sorted(folder.rglob("*")):
        relative = str(path.relative_to(folder))
        if path.is_symlink():
            found[relative] = f"-> {os.readlink(path)}"
        elif path.is_file():
            found[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[relative] = "folder"
    return found


def assert_one_line_refusal(done: subprocess.CompletedProcess, *named: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    for text in named:
        assert text in done.stderr, done.stderr


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """One render of the AKS stack (the smallest), copied into each test's own place."""
    folder = tmp_path_factory.mktemp("aks") / "render"
    done = render_cli("--stack", "aks", "--out", str(folder))
    assert done.returncode == 0, done.stderr
    return folder


def place_render(rendered, tmp_path):
    """A user's checkout: <tmp>/project/renders/aks (a render) beside <tmp>/project/README.md and <tmp>/home/notes/only.txt."""
    import shutil

    out = tmp_path / "project" / "renders" / "aks"
    shutil.copytree(rendered, out)
    (tmp_path / "project" / "README.md").write_text("the project's README")
    (tmp_path / "home" / "notes").mkdir(parents=True)
    (tmp_path / "home" / "notes" / "only.txt").write_text("the only file of its folder")
    return out


@pytest.mark.parametrize("line", [
    "../../README.md",                         # the committed line of the issue: the project's README
    "../../../home/notes/only.txt",            # and its emptied folder went too
    "{tmp}/home/notes/only.txt",               # an absolute path
    "kubernetes/../../../README.md",           # a render-looking start
    "helm/../../../README.md",
    "notes.txt",                               # inside, but not a name render gives a file
])
def test_a_marker_line_render_would_not_have_written_deletes_nothing(rendered, tmp_path, line):
    out = place_render(rendered, tmp_path)
    if "notes.txt" in line:
        (out / "notes.txt").write_text("the user's")
    with open(out / MARKER, "a") as marker:
        marker.write(line.format(tmp=tmp_path) + "\n")
    before = snapshot(tmp_path)
    done = render_cli("--stack", "aks", "--out", str(out))
    assert_one_line_refusal(done, MARKER, str(out))
    assert snapshot(tmp_path) == before  # nothing deleted, replaced or written, in the folder or outside


@pytest.mark.parametrize("where", ["a folder of the render", "a file render replaces", "a file render drops"])
def test_a_symlink_in_the_render_is_never_followed(rendered, tmp_path, where):
    """A pull request can commit a symlink in renders/<stack>: writing or deleting through it lands outside."""
    out = place_render(rendered, tmp_path)
    elsewhere = tmp_path / "project" / "components"
    elsewhere.mkdir()
    (elsewhere / "precious.yaml").write_text("the user's")
    if where == "a folder of the render":
        # renders/aks/helm -> ../../components, and the marker (rightly) lists helm/precious.yaml
        for path in (out / "helm").iterdir():
            path.unlink()
        (out / "helm").rmdir()
        (out / "helm").symlink_to(elsewhere)
        with open(out / MARKER, "a") as marker:
            marker.write("helm/precious.yaml\n")
    elif where == "a file render replaces":
        (out / "outputs.yaml").unlink()
        (out / "outputs.yaml").symlink_to(elsewhere / "precious.yaml")
    else:
        (out / "aws").mkdir()
        (out / "aws" / "role-gone.yaml").symlink_to(elsewhere / "precious.yaml")
        with open(out / MARKER, "a") as marker:
            marker.write("aws/role-gone.yaml\n")
    before = snapshot(tmp_path)
    done = render_cli("--stack", "aks", "--out", str(out))
    assert_one_line_refusal(done, "symlink")
    assert snapshot(tmp_path) == before
    assert (elsewhere / "precious.yaml").read_text() == "the user's"


def test_a_render_folder_that_is_a_symlink_is_refused(rendered, tmp_path):
    """renders/aks -> ../components (committed): the render would replace and delete files there."""
    import shutil

    project = tmp_path / "project"
    target = project / "components"
    shutil.copytree(rendered, target)  # a marker and render-named files: looks like a render folder
    (project / "renders").mkdir()
    (project / "renders" / "aks").symlink_to(target)
    with open(target / MARKER, "a") as marker:
        marker.write("kubernetes/cluster/namespace-gone.yaml\n")
    (target / "kubernetes" / "cluster" / "namespace-gone.yaml").write_text("the user's")
    before = snapshot(tmp_path)
    done = render_cli("--stack", "aks", "--out", str(project / "renders" / "aks"))
    assert_one_line_refusal(done, "symlink")
    assert snapshot(tmp_path) == before


def test_all_refuses_a_committed_symlink_between_the_project_and_the_render(monkeypatch, tmp_path, capsys):
    """`render --all` writes renders/<stack> of the project: renders/ itself may be a committed symlink."""
    from raykube.cli import render as render_module
    from raykube.stack_file import read_stack_file

    project = tmp_path / "project"
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "aks").mkdir(parents=True)
    (elsewhere / "aks" / "mine.txt").write_text("the user's")
    project.mkdir()
    (project / "renders").symlink_to(elsewhere)
    monkeypatch.setattr(render_module, "ROOT", project)
    before = snapshot(tmp_path)
    assert render_module.render(read_stack_file("aks", None), project / "renders" / "aks") == 2
    assert "symlink" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_an_object_kubernetes_would_refuse_stops_the_render(monkeypatch, tmp_path, capsys):
    """The render checks every Kubernetes object against the official schema (strict) before it writes:
    a field the API server would refuse is one line naming the object and the field, exit 2, nothing written."""
    import raykube.offline
    from raykube.cli import render as render_module
    from raykube.stack_file import read_stack_file

    real = raykube.offline.run_offline

    def with_a_bad_field(*args, **kwargs):
        run = real(*args, **kwargs)
        policy = next(r for r in run.resources if r.is_kubernetes_object and r.inputs["kind"] == "NetworkPolicy")
        for inputs in (policy.inputs, policy.revealed_inputs):
            inputs["spec"] = {**inputs["spec"], "podSelectr": {}}  # misspelled: the strict schema knows no such field
        return run

    monkeypatch.setattr(raykube.offline, "run_offline", with_a_bad_field)
    out = tmp_path / "render"
    assert render_module.render(read_stack_file("aks", None), out) == 2
    captured = capsys.readouterr()
    assert len(captured.err.strip().splitlines()) == 1, captured.err
    assert "NetworkPolicy ray/" in captured.err and "spec:" in captured.err and "podSelectr" in captured.err, captured.err
    assert not out.exists()


def test_custom_resources_are_left_to_their_crds_and_every_committed_render_passes():
    """ray.io and monitoring.coreos.com kinds are not in the official schemas; the rest of every stack is checked."""
    from raykube.composition import build
    from raykube.offline import run_offline
    from raykube.schema_check import check_resources, is_custom_resource
    from raykube.stack_file import read_stack_file
    from tests.helpers.program import STACKS

    for stack in STACKS:
        stack_file = read_stack_file(stack, None)
        settings = stack_file.settings()
        run = run_offline(lambda: build(settings).as_tuple(), stack_file.config, stack)
        objects = run.kubernetes_objects()
        assert check_resources(run.resources, settings.kubernetes_version, lambda r: r.name) == \
            len([r for r in objects if not is_custom_resource(r.inputs)]) > 0
