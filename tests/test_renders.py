"""The committed renders (renders/<stack>/): what a pull request shows reviewers.
They must match what the code renders now, and hold no secret value."""
from __future__ import annotations

import pytest
import yaml

from raykube.offline import SECRET
from raykube.render import RENDERS, render
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
