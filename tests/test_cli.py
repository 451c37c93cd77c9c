"""The `raykube` console command that pyproject.toml installs, and its subcommands."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers.program import ROOT

RAYKUBE = str(Path(sys.executable).with_name("raykube"))


def raykube(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([RAYKUBE, *argv], cwd=ROOT, capture_output=True, text=True, timeout=180)


def test_raykube_lists_its_commands():
    done = raykube("--help")
    assert done.returncode == 0
    for command in ("render", "jobs", "credentials"):
        assert f"raykube {command}" in done.stdout


@pytest.mark.parametrize("argv, shows", [
    (["render", "--help"], "--out"),
    (["jobs", "--help"], "submit"),
    (["jobs", "submit", "--help"], "--working-dir"),
    (["credentials", "--help"], "renew"),
    (["credentials", "renew", "--help"], "--role-arn"),
    (["credentials", "status", "--help"], "--stack"),
])
def test_every_subcommand_has_help(argv, shows):
    done = raykube(*argv)
    assert done.returncode == 0, done.stderr
    assert shows in done.stdout and done.stdout.startswith("usage: raykube ")


def test_raykube_render_writes_the_same_as_python_m(tmp_path):
    via_command = raykube("render", "--stack", "gke", "--out", str(tmp_path / "a"))
    via_module = subprocess.run([sys.executable, "-m", "raykube.render", "--stack", "gke", "--out", str(tmp_path / "b")],
                                cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert via_command.returncode == via_module.returncode == 0, via_command.stderr
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    cluster = yaml.safe_load((tmp_path / "a" / "kubernetes" / "ray-training" / "raycluster-training.yaml").read_text())
    assert cluster["kind"] == "RayCluster"


def test_unknown_commands_and_bad_stacks_are_clear_errors():
    unknown = raykube("deploy")
    assert unknown.returncode == 2 and "unknown command 'deploy'" in unknown.stderr
    missing = raykube("jobs", "list", "--stack", "no-such-stack")
    assert missing.returncode == 2 and "no stack file" in missing.stderr and "Traceback" not in missing.stderr
