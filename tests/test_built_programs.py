"""The real programs the tests run are the project's own build at its pins (tools/go/*/go.mod):
each reports the pinned version, each family's go.sum covers its pins, and the KubeRay
operator is the release the program deploys, or a stand-in that says so."""
from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.helpers.built_operator import OPERATOR_MODULE, built_version, deployed_version, stand_in_reason
from tests.helpers.cluster_processes import ROOT, binary

GO_MODULES = ROOT / "tools" / "go"
# program -> (family, module whose version it must report, the command that prints its version)
PROGRAMS = {
    "kube-apiserver": ("kubernetes", "k8s.io/kubernetes", ["--version"]),
    "kube-controller-manager": ("kubernetes", "k8s.io/kubernetes", ["--version"]),
    "kube-scheduler": ("kubernetes", "k8s.io/kubernetes", ["--version"]),
    "kubeadm": ("kubernetes", "k8s.io/kubernetes", ["version", "-o", "short"]),
    "etcd": ("etcd", "go.etcd.io/etcd/server/v3", ["--version"]),
    "kwok": ("kwok", "sigs.k8s.io/kwok", ["--version"]),
    "metrics-server": ("metrics-server", "sigs.k8s.io/metrics-server", ["--version"]),
}


def pinned(family: str, module: str) -> str:
    """The version family's go.mod pins for module, as Go reads it."""
    done = subprocess.run(["go", "list", "-m", "-f", "{{.Version}}", module], cwd=GO_MODULES / family,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_each_program_reports_its_pinned_version(program):
    """kubeadm and the apiserver compare versions (skew checks): an unstamped build says v0.0.0."""
    family, module, command = PROGRAMS[program]
    done = subprocess.run([binary(program), *command], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    version = pinned(family, module).lstrip("v")
    printed = (done.stdout + done.stderr).split()
    assert version in {word.lstrip("v") for word in printed}, f"{program} printed {printed}, pinned v{version}"


def test_the_operator_binary_is_the_pinned_release():
    assert built_version() == pinned("kuberay", OPERATOR_MODULE).lstrip("v")


def test_the_operator_is_the_release_whose_chart_the_program_installs():
    """The chart has no appVersion: the operator it runs is its values' image tag."""
    from tests.helpers.upstream import upstream_path

    chart = yaml.safe_load(upstream_path("charts/kuberay-operator/Chart.yaml").read_text())
    values = yaml.safe_load(upstream_path("charts/kuberay-operator/values.yaml").read_text())
    assert chart["version"] == deployed_version()
    operator = values["image"]["tag"].lstrip("v")
    assert operator == deployed_version()
    reason = stand_in_reason()
    if reason:
        pytest.skip(reason)
    assert built_version() == operator


@pytest.mark.parametrize("family", sorted(path.name for path in GO_MODULES.iterdir() if (path / "go.mod").exists()))
def test_every_pin_has_its_go_sum(family):
    """A pin changed in go.mod without `go mod tidy` leaves go.sum without its hashes: the build
    (read-only modules, as `go build` runs by default) refuses it, and so does this test."""
    done = subprocess.run(["go", "list", "-mod=readonly", "-deps", "tool"], cwd=GO_MODULES / family,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
