"""The `kubeadm init --config` file: what `pulumi up` writes and the render's copy,
read the way kubeadm reads it, then judged by the real kubeadm (the project's build, tools/go/kubernetes)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from raykube.settings import KUBERNETES_MINOR_RANGE
from tests.helpers.program import ROOT, run_program, stack_file_config
from tests.helpers.cluster_processes import binary

VERSIONS = [f"1.{minor}" for minor in range(KUBERNETES_MINOR_RANGE[0], KUBERNETES_MINOR_RANGE[1] + 1)]
# An exact release inside the built kubeadm's skew (it deploys control planes >= 1.35).
EXACT = "1.36.2"
KUBELET = "kubelet.config.k8s.io/v1beta1"
KUBE_PROXY = "kubeproxy.config.k8s.io/v1alpha1"
KUBEADM_KINDS = {"InitConfiguration", "ClusterConfiguration", "JoinConfiguration"}


def kubeadm_split(text: str) -> list[str]:
    """Documents as kubeadm's YAML reader cuts them: at lines starting with `---`,
    skipping only a separator that has nothing at all before it."""
    documents, current = [], []
    for line in text.splitlines(keepends=True):
        if line.startswith("---"):
            assert not line[3:].strip() or line[3:].strip().startswith("#"), f"bad separator line {line!r}"
            if current:
                documents.append("".join(current))
            current = []
            continue
        current.append(line)
    if current:
        documents.append("".join(current))
    return documents


def assert_kubeadm_reads(text: str, version: str) -> None:
    minor = int(version.split(".")[1])
    kubeadm_api = "kubeadm.k8s.io/v1beta4" if minor >= 31 else "kubeadm.k8s.io/v1beta3"
    kinds = []
    for number, document in enumerate(kubeadm_split(text)):
        decoded = yaml.safe_load(document)
        assert isinstance(decoded, dict) and decoded.get("apiVersion") and decoded.get("kind"), (
            f"document {number} has no apiVersion/kind (kubeadm rejects the whole file):\n{document}"
        )
        api, kind = decoded["apiVersion"], decoded["kind"]
        if kind in KUBEADM_KINDS:
            assert api == kubeadm_api, f"{kind} is {api}; Kubernetes {version} needs {kubeadm_api}"
        else:
            assert (api, kind) in {(KUBELET, "KubeletConfiguration"), (KUBE_PROXY, "KubeProxyConfiguration")}, (api, kind)
        kinds.append(kind)
    assert kinds == ["InitConfiguration", "ClusterConfiguration", "KubeletConfiguration"]


def written_files(version: str, tmp_path: Path) -> dict[str, str]:
    """The file `pulumi up` writes (the LocalFile's content) and the render's copy."""
    from raykube.cli.render import render
    from raykube.stack_file import read_stack_file

    config = {**stack_file_config("local"), "raykube:kubernetesVersion": version}
    result = run_program(config, "local")
    (local_file,) = [r for r in result.of_type("pulumi-python:dynamic:Resource") if r.name == "kubeadm-file"]
    stack_file = tmp_path / "Pulumi.local.yaml"
    stack_file.write_text(yaml.safe_dump({"config": config}))
    out = tmp_path / "render"
    assert render(read_stack_file(None, stack_file), out) == 0
    return {"pulumi up": local_file.inputs["content"], "render": (out / "files" / "kubeadm-config.yaml").read_text()}


@pytest.mark.parametrize("version", [*VERSIONS, EXACT])
def test_kubeadm_reads_every_written_file(version, tmp_path):
    files = written_files(version, tmp_path)
    assert files["pulumi up"] == files["render"]
    for text in files.values():
        assert_kubeadm_reads(text, version)
    # The hint stays, inside the first real document.
    assert "sudo kubeadm init --config" in files["render"]
    # The real judge: kubeadm, built at the pin in tools/go/kubernetes.
    path = tmp_path / "kubeadm-config.yaml"
    path.write_text(files["render"])
    done = subprocess.run([binary("kubeadm"), "config", "validate", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"kubeadm config validate ({version}):\n{done.stdout}{done.stderr}"


def test_readme_local_quickstart_matches_what_the_code_writes():
    """The render the README shows before `kubeadm init`, the file it hands kubeadm, and the path
    `pulumi up` then keeps (tests/test_engine_scenarios.py runs these commands under the engine)."""
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("### Local kubeadm", 1)[1].split("\n### ", 1)[0]
    config_path = stack_file_config("local")["raykube:kubeadm"]["configPath"]
    result = run_program(stack_file_config("local"), "local")
    (local_file,) = [r for r in result.of_type("pulumi-python:dynamic:Resource") if r.name == "kubeadm-file"]
    assert local_file.inputs["path"] == config_path == result.outputs["kubeadmConfigPath"]
    assert "venv/bin/raykube render --stack local --out render" in quickstart
    assert f"`{config_path}`" in quickstart  # what `pulumi up` keeps in step
    assert f"sudo kubeadm init --config render/files/{Path(config_path).name}" in quickstart
