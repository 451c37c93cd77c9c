"""The real programs the tests run are the project's own build at its pins (tools/go/*/go.mod):
each reports the pinned version, each family's go.sum covers its pins, the Pulumi plugins
tell the engine their pinned versions, and the KubeRay operator is the release the program
deploys, or a stand-in that says so."""
from __future__ import annotations

import contextlib
import json
import subprocess
from typing import Iterator

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2
from pulumi.runtime.proto import language_pb2_grpc, provider_pb2, provider_pb2_grpc

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
    "pulumi": ("pulumi", "github.com/pulumi/pulumi/pkg/v3", ["version"]),
}
PROVIDER_MODULE = "github.com/pulumi/pulumi-kubernetes/provider/v4"
# The proxy serves the Kubernetes provider only as pseudo-versions: the release each commit is
# tagged as in github.com/pulumi/pulumi-kubernetes.
PROVIDER_RELEASES = {"f47bc2d6f199": "4.25.0"}
# What go.sum must cover, by family: its programs (`tool` lines), but the provider's main
# package go:embeds files tools/build-go generates (absent from the module), so Go cannot load it
# here: what it imports, and what its schema generator (generate.go) imports.
GO_SUM_PACKAGES = {
    "pulumi-kubernetes": [f"{PROVIDER_MODULE}/pkg/provider", f"{PROVIDER_MODULE}/pkg/version",
                          "github.com/pulumi/pulumi/pkg/v3/codegen/schema"],
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


@contextlib.contextmanager
def plugin_channel(program: str) -> Iterator[grpc.Channel]:
    """The plugin started as the engine starts it (its argument: the engine's address, which it
    only dials when it logs), and a gRPC channel to the port it prints."""
    process = subprocess.Popen([binary(program), "127.0.0.1:1"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(process.stdout.readline())
        # The engine takes messages of any size: the Kubernetes schema is over 5 MB.
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", -1)]) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            yield channel
    finally:
        process.kill()
        process.wait(timeout=30)


def provider_release() -> str:
    pin = pinned("pulumi-kubernetes", PROVIDER_MODULE)
    commit = pin.rsplit("-", 1)[-1]
    assert commit in PROVIDER_RELEASES, f"{PROVIDER_MODULE} {pin}: which release is commit {commit}?"
    return PROVIDER_RELEASES[commit]


def test_the_kubernetes_provider_tells_the_engine_its_release():
    """The engine picks the ambient plugin by the version its GetPluginInfo reports (an unstamped
    build reports none), and resource types from the schema it serves, which carries the release."""
    release = provider_release()
    with plugin_channel("pulumi-resource-kubernetes") as channel:
        provider = provider_pb2_grpc.ResourceProviderStub(channel)
        assert provider.GetPluginInfo(empty_pb2.Empty(), timeout=60).version == release
        schema = json.loads(provider.GetSchema(provider_pb2.GetSchemaRequest(), timeout=120).schema)
    assert (schema["name"], schema["version"]) == ("kubernetes", release)


def test_the_yaml_language_host_tells_the_engine_its_release():
    with plugin_channel("pulumi-language-yaml") as channel:
        info = language_pb2_grpc.LanguageRuntimeStub(channel).GetPluginInfo(empty_pb2.Empty(), timeout=60)
    assert info.version.lstrip("v") == pinned("pulumi-yaml", "github.com/pulumi/pulumi-yaml").lstrip("v")


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
    packages = GO_SUM_PACKAGES.get(family, ["tool"])
    done = subprocess.run(["go", "list", "-mod=readonly", "-deps", *packages], cwd=GO_MODULES / family,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
