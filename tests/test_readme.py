"""The README works as written: every command of its quickstarts that runs offline runs and
succeeds, every other one is one the tests know needs a cluster or a cloud, and every link and
path it names exists, as does every link of docs/*.md (anchors included)."""
from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.program import ROOT

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
VENV_BIN = Path(sys.executable).parent

# Commands the quickstarts show that need something a test does not have, by their first word
# (or first two): each is named here, so a new command is either run below or added with its reason.
NOT_OFFLINE = {
    "curl": "downloads and installs the Pulumi CLI",
    "pulumi": "needs the Pulumi CLI, a state backend and a cluster",
    "export": "sets the passphrase of the user's Pulumi state",
    "sudo": "changes the host (kubeadm init, the admin kubeconfig)",
    "mkdir": "the user's ~/.kube",
    "kubectl": "needs a cluster",
    "aws": "needs an AWS account and an EKS cluster",
    "az": "needs an Azure account and an AKS cluster",
    "venv/bin/raykube jobs": "needs a running Ray cluster",
    "venv/bin/raykube status": "needs a running cluster",
    "venv/bin/raykube credentials": "needs a cluster and AWS",
}
# What the README names that is made by the commands it shows, not committed:
# the file the first `pulumi up` writes (the render's copy is checked after the render runs).
MADE_BY_COMMANDS = {"kubeadm-config.yaml"}


def section(text: str, start: str, end: str) -> str:
    return text[text.index(start): text.index(end, text.index(start))]


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def commands(block: str) -> list[list[str]]:
    """Each simple command of a shell block, as words: continuation lines joined, comments
    dropped, `&&` chains split."""
    joined = block.replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        current: list[str] = []
        for word in words + ["&&"]:
            if word in ("&&", ";", "||"):
                if current:
                    found.append(current)
                current = []
            else:
                current.append(word)
    return found


def quickstart_commands() -> list[list[str]]:
    quickstarts = section(README.read_text(), "## Quickstarts", "\n## Documentation")
    return [command for block in shell_blocks(quickstarts) for command in commands(block)]


def why_not_offline(command: list[str]) -> str | None:
    for words in (" ".join(command[:2]), command[0]):
        if words in NOT_OFFLINE:
            return NOT_OFFLINE[words]
    return None


def offline(command: list[str]) -> bool:
    return command[0] == "venv/bin/raykube" or command[:3] == ["venv/bin/python", "-m", "raykube.render"]


def test_the_quickstarts_show_offline_commands():
    runnable = [command for command in quickstart_commands() if offline(command) and not why_not_offline(command)]
    assert any("render" in command for command in runnable), "the quickstarts should show the offline render"


def test_every_quickstart_command_runs_here_or_is_known_to_need_a_cluster():
    for command in quickstart_commands():
        assert offline(command) or why_not_offline(command), (
            f"{shlex.join(command)}: run it in tests/test_readme.py, or name why it cannot run offline in NOT_OFFLINE"
        )


def test_the_offline_quickstart_commands_run(tmp_path):
    """In a folder of their own, as a user would from a checkout (venv/bin is the project's)."""
    ran = []
    for command in quickstart_commands():
        if not offline(command) or why_not_offline(command):
            continue
        argv = [str(VENV_BIN / Path(command[0]).name), *command[1:]]
        done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{shlex.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        assert "Traceback" not in done.stderr, done.stderr
        ran.append(command)
    assert len(ran) >= 3
    # What the README then does with the render's output exists there.
    for path in re.findall(r"\brender/[\w./-]+", section(README.read_text(), "## Quickstarts", "\n## Documentation")):
        assert (tmp_path / path).exists(), f"the README names {path}, which the render it shows did not write"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {_slug(match) for match in re.findall(r"^#{1,6} (.+)$", text, flags=re.M)}


def links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", [README, *DOCS], ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_and_anchor_exists(page):
    checked = 0
    for target in links(page):
        if re.match(r"^[a-z]+://", target) or target.startswith("mailto:"):
            continue
        file, _, anchor = target.partition("#")
        resolved = (page.parent / file).resolve() if file else page
        assert resolved.exists(), f"{page.relative_to(ROOT)} links to {target}, which does not exist"
        if anchor:
            assert anchor in anchors(resolved), f"{page.relative_to(ROOT)} links to {target}: no heading with that anchor"
        checked += 1
    assert page != README or checked >= 10


# A path of this repository as the pages write it: a top-level folder of the project, then more.
REPO_FOLDERS = ("components", "raykube", "tests", "tools", "examples", "stacks", "benchmarks", "docs", "renders", ".github", ".ci")


def named_paths(text: str) -> set[str]:
    """Paths in inline code and shell words that start with a folder of this project."""
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    words = [word for block in re.findall(r"```\w*\n(.*?)```", text, flags=re.S) for word in block.split()]
    found = set()
    for token in [*spans, *words]:
        for word in token.split():
            word = word.strip("'\",;:()")
            if re.match(rf"^(\./)?({'|'.join(map(re.escape, REPO_FOLDERS))})/", word) or word in MADE_BY_COMMANDS:
                found.add(word)
            elif re.fullmatch(r"[\w.-]+\.(txt|toml|yaml|yml|py|md|cfg)", word) and (ROOT / word).exists():
                found.add(word)
    return found


def _exists(path: str) -> bool:
    if path in MADE_BY_COMMANDS:
        return True
    pattern = re.sub(r"<[^>]+>", "*", path.removeprefix("./").rstrip("/"))
    return any(ROOT.glob(pattern)) if "*" in pattern else (ROOT / pattern).exists()


def test_every_path_the_readme_names_exists():
    paths = named_paths(README.read_text())
    assert {"stacks/Pulumi.<stack>.yaml", "examples/wine_shap", "examples/consumer/", "kubeadm-config.yaml"} <= paths
    missing = sorted(path for path in paths if not _exists(path))
    assert missing == [], f"the README names paths that do not exist: {missing}"


@pytest.mark.parametrize("page", DOCS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_project_path_a_doc_page_names_exists(page):
    missing = sorted(path for path in named_paths(page.read_text()) if not _exists(path))
    assert missing == [], f"{page.relative_to(ROOT)} names paths that do not exist: {missing}"
