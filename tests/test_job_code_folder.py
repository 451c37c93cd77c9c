"""`rayJobs[].code` uploads a folder of the project, as git would commit it, within a size limit:
`code: .` used to zip the project with its 870 MB virtualenv, and `../shared` or an absolute path
shipped files that are not the project's to a bucket the Ray pods read."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from raykube.code_folder import MAX_CODE_BYTES
from raykube.job_code import code_files  # what the uploaded archive holds
from raykube.settings import SettingsError, config_values, parse_settings
from raykube.stack_file import stack_config_values
from tests.helpers.program import ROOT, stack_file_config

PROJECT_CONFIG = yaml.safe_load((ROOT / "Pulumi.yaml").read_text()).get("config", {})


def settings_with_code(code: str):
    """The EKS stack (its RayJob uploads `code`) with another `code`, as `pulumi up` would validate it."""
    config = copy.deepcopy(stack_file_config("eks"))
    config["raykube:rayJobs"][0]["code"] = code
    config.pop("raykube:rayServices", None)  # its code is a folder of this project, not of the test's
    return parse_settings(config_values(stack_config_values(config, PROJECT_CONFIG)), "stacks/Pulumi.eks.yaml")


def refused(code: str) -> str:
    with pytest.raises(SettingsError) as raised:
        settings_with_code(code)
    assert raised.value.keys == ["raykube:rayJobs[0].code"], str(raised.value)
    assert len(raised.value.problems[0][1].splitlines()) == 1
    return raised.value.problems[0][1]


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder (the working folder, as under `pulumi up`) with a job's code in job/."""
    root = tmp_path / "project"
    (root / "job").mkdir(parents=True)
    (root / "job" / "job.py").write_text("print('hi')\n")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "secret.txt").write_text("not the project's")
    monkeypatch.chdir(root)
    return root


@pytest.mark.parametrize("code", ["../shared", "job/../../shared", "{tmp}/shared", "{tmp}/project/job", "link-out"])
def test_code_outside_the_project_is_refused(project, code):
    (project / "link-out").symlink_to(project.parent / "shared")
    message = refused(code.format(tmp=project.parent))
    assert "outside the project" in message or "absolute path" in message
    settings_with_code("job")  # the project's own folder is fine


def test_a_symlink_inside_the_code_is_refused(project):
    (project / "job" / "data").symlink_to(project.parent / "shared" / "secret.txt")
    assert "symlink" in refused("job") and "data" in refused("job")


def test_code_leaves_out_what_git_would_not_commit(project):
    """.git, virtualenvs (by their pyvenv.cfg, whatever the name), caches and the .gitignore files' patterns."""
    (project / ".gitignore").write_text("*.csv\n!keep.csv\n/job/build/\n")
    files = {
        "job/job.py": True,
        "job/data.csv": False,                        # the project's .gitignore
        "job/keep.csv": True,                         # ... and its negation
        "job/build/out.bin": False,                   # anchored at the project root
        "job/.git/config": False,
        "job/__pycache__/job.cpython-311.pyc": False,
        "job/tool.pyc": False,
        "job/.pytest_cache/v": False,
        "job/myenv/pyvenv.cfg": False,                # a virtualenv of any name
        "job/myenv/lib/python3.11/site-packages/big.py": False,
        "job/venv/bin/python": False,
        "job/sub/.gitignore": True,
        "job/sub/scratch.txt": False,                 # a nested .gitignore
        "job/sub/code.py": True,
    }
    for name in files:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text("x")
    (project / "job" / "sub" / ".gitignore").write_text("scratch.txt\n")
    kept = {str(path) for path in code_files(Path("job"))}  # spelled as given: relative to the project
    assert kept == {name for name, taken in files.items() if taken}
    settings_with_code("job")


def test_code_above_the_limit_is_refused_naming_the_size(project):
    with open(project / "job" / "weights.bin", "wb") as big:
        big.truncate(MAX_CODE_BYTES + 1)  # sparse: no disk used
    message = refused("job")
    assert f"{MAX_CODE_BYTES // 2**20}.0 MiB" in message and ".gitignore" in message
    # What .gitignore leaves out does not count.
    (project / ".gitignore").write_text("*.bin\n")
    settings_with_code("job")


def test_the_whole_project_as_code_leaves_out_its_virtualenv(project):
    """`code: .` takes the project's sources, not the environment it runs in."""
    (project / "venv").mkdir()
    (project / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    with open(project / "venv" / "huge.so", "wb") as big:
        big.truncate(2 * MAX_CODE_BYTES)
    settings_with_code(".")
    assert {str(path) for path in code_files(Path("."))} == {"job/job.py"}
