"""The pull-request preview workflow, judged by actionlint and by what reviewers rely on."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers.program import ROOT, STACKS

WORKFLOW = ROOT / ".github" / "workflows" / "preview.yml"
ACTIONLINT = str(Path(sys.executable).with_name("actionlint"))


def actionlint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([ACTIONLINT, "-no-color", str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_actionlint_accepts_the_workflow():
    done = actionlint(WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_would_catch_a_broken_one(tmp_path):
    broken = tmp_path / ".github" / "workflows" / "preview.yml"
    broken.parent.mkdir(parents=True)
    broken.write_text(WORKFLOW.read_text().replace("matrix.stack", "matrix.stak", 1))
    done = subprocess.run([ACTIONLINT, "-no-color", str(broken)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "stak" in done.stdout


def workflow() -> dict:
    text = yaml.safe_load(WORKFLOW.read_text())
    text["on"] = text.pop(True, text.get("on"))  # YAML 1.1 reads `on` as true
    return text


def test_it_runs_on_pull_requests_with_least_privilege():
    flow = workflow()
    assert "pull_request" in flow["on"]
    assert flow["permissions"] == {"contents": "read"}
    assert "permissions" not in flow["jobs"]["test"]  # the default: read the code, nothing else
    assert flow["jobs"]["preview"]["permissions"] == {"contents": "read", "pull-requests": "write"}


def test_every_action_is_pinned_to_a_release():
    uses = re.findall(r"uses:\s*(\S+)", WORKFLOW.read_text())
    assert uses
    for action in uses:
        assert re.search(r"@(v\d+\.\d+\.\d+|[0-9a-f]{40})$", action), f"{action} is not pinned to a release or commit"


def test_tests_and_renders_then_a_preview_per_stack():
    flow = workflow()
    test_steps = "\n".join(step.get("run", "") for step in flow["jobs"]["test"]["steps"])
    ci_command = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))][-1]
    assert "bash .ci/run" in test_steps and ci_command in (ROOT / "README.md").read_text()
    assert "raykube render --all" in test_steps and "git diff --exit-code -- renders/" in test_steps
    preview = flow["jobs"]["preview"]
    assert preview["needs"] == "test"
    assert sorted(preview["strategy"]["matrix"]["stack"]) == STACKS
    (pulumi,) = [step for step in preview["steps"] if str(step.get("uses", "")).startswith("pulumi/actions@")]
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["diff"] is True and pulumi["with"]["comment-on-pr"] is True
    assert pulumi["if"] == "steps.credentials.outputs.enabled == 'true'"  # only stacks whose credentials exist
