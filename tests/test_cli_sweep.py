"""A generated corpus of wrong stack files and wrong CLI calls: each one is refused with the exit
status `--help` documents (2 for input raykube cannot use, 3 for a kubeconfig it cannot load),
exactly one line on stderr, no traceback, and nothing written or deleted anywhere."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.program import ROOT

RAYKUBE = str(Path(sys.executable).with_name("raykube"))
BASE = "config:\n  raykube:target: aks\n"
EKS = (ROOT / "stacks" / "Pulumi.eks.yaml").read_text()


def _duplicated_lines() -> dict[str, str]:
    """The EKS stack file with one `key: value` line written twice, at each depth it has keys."""
    lines = EKS.splitlines(keepends=True)
    cases = {}
    for index, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z][\w.:/-]*): \S", line)
        if not match or line.lstrip().startswith("-") or lines[index - 1].lstrip().startswith("-"):
            continue  # a list item's first key: a copy of it would start a new item, not repeat a key
        depth = len(match.group(1))
        if f"twice at depth {depth}" not in cases:
            cases[f"twice at depth {depth}"] = "".join(lines[:index + 1] + [line] + lines[index + 1:])
    assert len(cases) >= 4, "the EKS stack file has keys at four depths or more"
    return cases


def _misspelled_namespaces() -> dict[str, str]:
    """Each namespace raykube reads, misspelled (a letter dropped, two swapped), and foreign ones."""
    cases = {}
    for namespace in ("raykube", "kubernetes", "aws", "pulumi"):
        for wrong in {namespace[1:], namespace[1] + namespace[0] + namespace[2:], namespace + "s"}:
            cases[f"namespace {wrong}:"] = f"config:\n  raykube:target: aks\n  {wrong}:region: x\n"
    cases["namespace gcp:"] = "config:\n  gcp:project: x\n"
    cases["key with two colons"] = "config:\n  raykube:target:local: aks\n"
    cases["key without a name"] = "config:\n  'raykube:': aks\n"
    return cases


STACK_FILES: dict[str, str | bytes] = {
    "empty": "",
    "blank lines": "\n\n",
    "only a comment": "# config:\n#   raykube:target: eks\n",
    "an empty document": "---\n",
    "a list": "- config\n",
    "a string": "config\n",
    "a number": "42\n",
    "settings at the top level": "raykube:target: eks\n",
    "an unknown top-level key": "configs:\n  raykube:target: eks\n",
    "no config, only a secrets provider": "secretsprovider: passphrase\n",
    "config empty": "config:\n",
    "config a list": "config:\n  - raykube:target: eks\n",
    "config a string": "config: raykube:target=eks\n",
    "config a number": "config: 3\n",
    "config a boolean": "config: true\n",
    "a non-string key": "config:\n  1: eks\n",
    "not UTF-8": b"config:\n  raykube:target: \xe9ks\n",
    "UTF-16": BASE.encode("utf-16"),
    "binary": bytes(range(256)),
    "not YAML": "config: {raykube:target: [}\n",
    "a tab for indentation": "config:\n\traykube:target: eks\n",
    "config twice": BASE + BASE,
    **_duplicated_lines(),
    **_misspelled_namespaces(),
}


def snapshot(folder: Path) -> dict[str, str]:
    found = {}
    for path in sorted(folder.rglob("*")):
        relative = str(path.relative_to(folder))
        found[relative] = (f"-> {os.readlink(path)}" if path.is_symlink() else
                           hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "folder")
    return found


def run(argv: list[str], tmp_path: Path, status: int, wrap: list[str] | None = None) -> str:
    """Run `raykube ARGV` from tmp_path; assert the refusal; the one line it printed."""
    before = snapshot(tmp_path)
    project_before = snapshot(ROOT / "renders")
    done = subprocess.run([*(wrap or []), RAYKUBE, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, env={**os.environ, "KUBECONFIG": str(tmp_path / "no-kubeconfig")})
    assert done.returncode == status, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert snapshot(tmp_path) == before, "nothing written or deleted"
    assert snapshot(ROOT / "renders") == project_before
    return lines[0]


@pytest.mark.parametrize("name", sorted(STACK_FILES))
def test_a_wrong_stack_file_is_one_line_naming_it(tmp_path, name):
    text = STACK_FILES[name]
    path = tmp_path / "Pulumi.mine.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    line = run(["render", "--config", str(path), "--out", str(tmp_path / "out")], tmp_path, 2)
    assert str(path) in line


@pytest.mark.parametrize("command", [["status"], ["jobs", "list"], ["credentials", "status"]])
@pytest.mark.parametrize("name", ["config a list", "twice at depth 4", "namespace raykubes:", "not UTF-8"])
def test_every_command_reads_stack_files_the_same_way(tmp_path, command, name):
    text = STACK_FILES[name]
    path = tmp_path / "Pulumi.mine.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert str(path) in run([*command, "--config", str(path)], tmp_path, 2)


def _prepare(tmp_path: Path, name: str) -> list[str]:
    """The CLI call of one wrong-call case, with whatever it needs put in tmp_path."""
    (tmp_path / "a-file").write_text("mine")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("mine")
    long_part = "x" * 300
    long_path = "/".join(["deep"] * 2100)
    render = ["render", "--stack", "aks", "--out"]
    return {
        "--config a folder": ["render", "--config", str(tmp_path), "--out", "out"],
        "--config /dev/null": ["render", "--config", "/dev/null", "--out", "out"],
        "--config missing": ["render", "--config", "Pulumi.none.yaml", "--out", "out"],
        "--config too long a name": ["render", "--config", long_part, "--out", "out"],
        "--config too long a path": ["render", "--config", long_path, "--out", "out"],
        "--stack and --config apart": ["render", "--stack", "local", "--config", str(ROOT / "stacks" / "Pulumi.eks.yaml"), "--out", "out"],
        "--stack missing": ["render", "--stack", "nosuchstack", "--out", "out"],
        "--out under a file": [*render, "a-file/out"],
        "--out a file": [*render, "a-file"],
        "--out under /proc": [*render, "/proc/raykube-render"],
        "--out under /sys": [*render, "/sys/kernel/raykube-render"],
        "--out under /dev": [*render, "/dev/raykube-render"],
        "--out too long a name": [*render, long_part],
        "--out too long a path": [*render, long_path],
        "--out a symlink": [*render, "link"],
        "--out a folder of the user's": [*render, "theirs"],
        "--out the working folder": [*render, "."],
        "--all with --out": ["render", "--all", "--out", "out"],
    }[name]


CALLS = ["--config a folder", "--config /dev/null", "--config missing", "--config too long a name", "--config too long a path",
         "--stack and --config apart", "--stack missing", "--out under a file", "--out a file", "--out under /proc",
         "--out under /sys", "--out under /dev", "--out too long a name", "--out too long a path", "--out a symlink",
         "--out a folder of the user's", "--out the working folder", "--all with --out"]


@pytest.mark.parametrize("name", CALLS)
def test_a_wrong_call_is_one_line(tmp_path, name):
    run(_prepare(tmp_path, name), tmp_path, 2)


def _read_only_mount() -> list[str] | None:
    """A command prefix that runs its command with a read-only file system at /mnt (a mount namespace of its own)."""
    for prefix in (["unshare", "-m"], ["unshare", "-rm"]):
        if shutil.which(prefix[0]) and subprocess.run([*prefix, "sh", "-c", "mount -t tmpfs -o ro none /mnt"],
                                                      capture_output=True).returncode == 0:
            return [*prefix, "sh", "-c", 'mount -t tmpfs -o ro none /mnt && exec "$0" "$@"']
    return None


def test_render_on_a_read_only_mount_is_one_line(tmp_path):
    prefix = _read_only_mount()
    if prefix is None:
        pytest.skip("no mount namespace here (needs root or unprivileged user namespaces)")
    line = run(["render", "--stack", "aks", "--out", "/mnt/render"], tmp_path, 2, wrap=prefix)
    assert "/mnt" in line and "not writable" in line


KUBECONFIGS: dict[str, str | bytes] = {
    "not YAML": "clusters: [\n",
    "a string": "just text\n",
    "a list": "- a\n- b\n",
    "not UTF-8": b"\xff\xfeclusters: []\n",
    "clusters a number": "apiVersion: v1\nclusters: 5\n",
    "bad base64": ("apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: x, user: u}}]\n"
                   "clusters: [{name: x, cluster: {server: 'https://127.0.0.1:1', certificate-authority-data: '!!!'}}]\n"
                   "users: [{name: u, user: {token: t}}]\n"),
    "empty": "",
    "a folder": None,
}


@pytest.mark.parametrize("name", sorted(KUBECONFIGS))
def test_status_with_a_garbage_kubeconfig_is_one_line(tmp_path, name):
    """Documented in `raykube status --help`: 3 when the cluster cannot be used, the kubeconfig named."""
    kubeconfig = tmp_path / "kubeconfig"
    text = KUBECONFIGS[name]
    if text is None:
        kubeconfig.mkdir()
    else:
        kubeconfig.write_bytes(text if isinstance(text, bytes) else text.encode())
    stack = tmp_path / "Pulumi.mine.yaml"
    stack.write_text(f"config:\n  raykube:target: aks\n  raykube:kubeconfig: {kubeconfig}\n")
    assert "kubeconfig" in run(["status", "--config", str(stack)], tmp_path, 3)
