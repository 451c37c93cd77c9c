"""The pull-request preview workflow, judged by actionlint and by what reviewers rely on."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers.program import ROOT, STACKS

WORKFLOW = ROOT / ".github" / "workflows" / "preview.yml"
ACTIONLINT = str(Path(sys.executable).with_name("actionlint"))
ZIZMOR = str(Path(sys.executable).with_name("zizmor"))


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


def jobs_steps(flow: dict):
    for job_name, job in flow["jobs"].items():
        for step in job["steps"]:
            yield job_name, step


def test_zizmor_finds_nothing_in_any_workflow():
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
    assert workflows
    for persona in ("regular", "pedantic"):
        done = subprocess.run([ZIZMOR, "--offline", "--no-progress", "--persona", persona, "--format", "json", *map(str, workflows)],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and json.loads(done.stdout) == [], f"zizmor ({persona}): {done.stdout}{done.stderr}"


def test_zizmor_would_catch_what_the_workflow_avoids(tmp_path):
    """The audit is live: the old workflow's mistakes are findings."""
    bad = tmp_path / "preview.yml"
    bad.write_text(WORKFLOW.read_text().replace("secrets.KUBECONFIG }}", "secrets[format('KUBECONFIG_{0}', matrix.stack)] }}")
                   .replace("actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1", "actions/checkout@v7.0.1", 1)
                   .replace("      - uses: actions/checkout@v7.0.1  # v7.0.1\n        with:\n          persist-credentials: false\n", "      - uses: actions/checkout@v7.0.1\n", 1))
    done = subprocess.run([ZIZMOR, "--offline", "--no-progress", "--format", "json", str(bad)], capture_output=True, text=True, timeout=120)
    found = {finding["ident"] for finding in json.loads(done.stdout)}
    assert {"overprovisioned-secrets", "unpinned-uses", "artipacked"} <= found, found


def test_it_runs_on_pull_requests_with_least_privilege():
    flow = workflow()
    assert list(flow["on"]) == ["pull_request"]  # never pull_request_target: a fork's code never sees a secret
    assert flow["permissions"] == {}
    assert flow["jobs"]["test"]["permissions"] == {"contents": "read"}
    assert flow["jobs"]["preview"]["permissions"] == {"contents": "read", "id-token": "write", "pull-requests": "write"}


def test_previews_run_only_for_the_repository_own_branches_behind_an_environment():
    preview = workflow()["jobs"]["preview"]
    assert preview["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    # One environment per stack: its reviewers approve each run before its secrets reach the job.
    assert preview["environment"] == "preview-${{ matrix.stack }}"
    text = WORKFLOW.read_text()
    assert "secrets[" not in text  # only named secrets, never the whole context
    assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text  # OIDC, no static keys
    (aws,) = [step for _, step in jobs_steps(workflow()) if str(step.get("uses", "")).startswith("aws-actions/configure-aws-credentials@")]
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_PREVIEW_ROLE_ARN }}" and "aws-access-key-id" not in aws["with"]


def test_every_checkout_drops_its_credentials():
    checkouts = [step for _, step in jobs_steps(workflow()) if str(step.get("uses", "")).startswith("actions/checkout@")]
    assert len(checkouts) == 2
    assert all(step["with"]["persist-credentials"] is False for step in checkouts)


def test_every_action_is_pinned_to_a_commit_with_its_version_named():
    uses = re.findall(r"uses:\s*(\S+)(.*)", WORKFLOW.read_text())
    assert uses
    for action, comment in uses:
        assert re.search(r"@[0-9a-f]{40}$", action), f"{action} is not pinned to a full commit SHA"
        assert re.fullmatch(r"\s+# v\d+\.\d+\.\d+", comment), f"{action}: name the release in a comment, e.g. '# v1.2.3'"


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
    assert pulumi["with"]["upsert"] is False  # a preview never creates a stack
    assert pulumi["if"] == "steps.access.outputs.enabled == 'true'"  # only stacks whose environment has access
