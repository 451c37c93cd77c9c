"""The committed renders (renders/<stack>/): what a pull request shows reviewers.
They must match what the code renders now, and hold no secret value."""
from __future__ import annotations

import pytest
import yaml

from raykube.offline import SECRET
from raykube.cli.render import RENDERS, render
from raykube.stack_file import read_stack_file
from tests.helpers.program import ROOT, STACKS

REFRESH = "venv/bin/raykube render --all"


def tree(folder) -> dict[str, str]:
    return {str(path.relative_to(folder)): path.read_text() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_every_stack_has_a_committed_render():
    assert STACKS, "stacks/ has stack files"
    assert sorted(path.name for path in RENDERS.iterdir() if path.is_dir()) == STACKS, f"run `{REFRESH}`"


@pytest.mark.parametrize("stack", STACKS)
def test_committed_render_is_fresh(stack, tmp_path, capsys):
    assert render(read_stack_file(stack, None), tmp_path / stack) == 0
    capsys.readouterr()
    fresh, committed = tree(tmp_path / stack), tree(RENDERS / stack)
    stale = sorted(name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name))
    assert not stale, f"renders/{stack} is stale ({', '.join(stale[:5])}): run `{REFRESH}` and commit renders/"


@pytest.mark.parametrize("stack", STACKS)
def test_committed_render_holds_no_secret(stack):
    text = "\n".join(tree(RENDERS / stack).values())
    for value in ("MOCKACCESSKEYID", "mock-secret-access-key", "mock-session-token", "aws_secret_access_key", "SecretAccessKey"):
        assert value not in text
    for path in (RENDERS / stack / "kubernetes").rglob("secret-*.yaml"):
        secret = yaml.safe_load(path.read_text())
        assert set(secret.get("stringData", {}).values()) | set(secret.get("data", {}).values()) <= {SECRET}


def test_the_readme_main_command_refreshes_the_committed_renders():
    readme = (ROOT / "README.md").read_text()
    assert "raykube render --all" in readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    assert "/renders/" not in (ROOT / ".gitignore").read_text().split()


def test_no_render_file_is_ignored_by_git():
    """A render file .gitignore swallows would be missing from every clone (and every review)."""
    import subprocess

    files = [str(path.relative_to(ROOT)) for path in RENDERS.rglob("*") if path.is_file()]
    done = subprocess.run(["git", "check-ignore", "--no-index", *files], cwd=ROOT, capture_output=True, text=True)
    assert done.stdout.split() == [], "ignored by .gitignore"


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("python", [(3, 10), (3, 12), (3, 13)])
def test_a_teammate_on_another_python_renders_the_same_bytes(stack, python, tmp_path, capsys, monkeypatch):
    """The render (and so every RayCluster pulumi up sends) must not follow the interpreter:
    a changed image would make KubeRay (upgradeStrategy Recreate) delete every pod."""
    import collections
    import sys

    version = collections.namedtuple("version_info", "major minor micro releaselevel serial")
    monkeypatch.setattr(sys, "version_info", version(*python, 0, "final", 0))
    assert render(read_stack_file(stack, None), tmp_path / stack) == 0
    capsys.readouterr()
    assert tree(tmp_path / stack) == tree(RENDERS / stack)


# --- where render may write: never a file of the user's ---------------------------------

def render_cli(*argv: str, cwd=ROOT):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "raykube.render", *argv], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_a_folder_with_a_foreign_file_is_refused_and_nothing_is_deleted(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    done = render_cli("--stack", "aks", "--out", str(tmp_path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "notes.txt" in done.stderr and str(tmp_path) in done.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("where", ["working folder", "project root", "a parent of the project"])
def test_the_working_folder_and_the_project_are_refused(tmp_path, where):
    cwd, out = {"working folder": (tmp_path, "."), "project root": (ROOT, str(ROOT)), "a parent of the project": (ROOT, str(ROOT.parent))}[where]
    (tmp_path / "keep.txt").write_text("mine")
    before = sorted(path.name for path in ROOT.iterdir())
    done = render_cli("--stack", "aks", "--out", out, cwd=cwd)
    assert done.returncode == 2 and "refusing to render into" in done.stderr and "Traceback" not in done.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"
    assert sorted(path.name for path in ROOT.iterdir()) == before


def test_a_render_replaces_its_own_files_and_keeps_the_users(tmp_path):
    out = tmp_path / "render"
    assert render_cli("--stack", "eks", "--out", str(out)).returncode == 0
    (out / "my-notes.md").write_text("mine")
    # A file the previous render wrote and the next one no longer writes goes.
    (out / "kubernetes" / "ray" / "old-object.yaml").write_text("stale")
    with open(out / ".raykube-render", "a") as marker:
        marker.write("kubernetes/ray/old-object.yaml\n")
    (out / "outputs.yaml").write_text("edited")
    done = render_cli("--stack", "eks", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "my-notes.md").read_text() == "mine"
    assert not (out / "kubernetes" / "ray" / "old-object.yaml").exists()
    assert tree(out) == {**tree(RENDERS / "eks"), "my-notes.md": "mine"}


def test_all_takes_no_stack_or_out():
    done = render_cli("--all", "--stack", "eks", "--out", "elsewhere")
    assert done.returncode == 2 and "--all" in done.stderr and "--stack" in done.stderr and "--out" in done.stderr
