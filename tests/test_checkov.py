"""checkov over every stack's committed render, and over the Pods KubeRay makes from each
RayCluster and RayJob template (checkov reads Pod specs, not custom resources): the only
failed checks are the ones docs/security.md justifies."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers.program import ROOT, STACKS, run_program, stack_file_config

CHECKOV = ROOT / "venv-checkov" / "bin" / "checkov"
# Each stays failed on purpose; docs/security.md says why, under the same ID.
JUSTIFIED = {
    "CKV_K8S_43": "images are pinned by tag by default; rayClusters[].imageDigest pins by digest",
    "CKV_K8S_15": "imagePullPolicy stays IfNotPresent: a pinned tag or digest, and no registry round trip per pod start",
    "CKV_K8S_40": "the Ray images' user is uid 1000; another uid cannot use the image's home and Python",
    "CKV_K8S_8": "KubeRay adds the liveness probe to every Ray container when it creates the pod",
    "CKV_K8S_9": "KubeRay adds the readiness probe to every Ray container when it creates the pod",
    "CKV_K8S_38": "a head with the autoscaler sidecar mounts its ServiceAccount token: the sidecar calls the Kubernetes API",
}


def is_renewer(resource: str) -> bool:
    """The in-cluster credentials renewer's CronJob (CronJob.<its namespace>.credentials-renewer): it patches the credentials Secrets with its token."""
    return resource.startswith("CronJob.") and resource.endswith(".credentials-renewer")


def justified(check: str, resource: str, autoscaled_heads: set[str]) -> bool:
    if check == "CKV_K8S_38":  # only where the token is used
        return resource in autoscaled_heads or is_renewer(resource)
    return check in JUSTIFIED


def autoscaled_heads(folder: Path) -> set[str]:
    """checkov's names (Pod.<namespace>.<name>) of the head Pods whose cluster runs the autoscaler."""
    heads = set()
    for path in folder.glob("*/kubernetes/*/*.yaml"):
        obj = yaml.safe_load(path.read_text())
        spec = obj.get("spec", {}).get("rayClusterSpec") if obj.get("kind") == "RayJob" else obj.get("spec") if obj.get("kind") == "RayCluster" else None
        if spec and spec.get("enableInTreeAutoscaling"):
            heads.add(f"Pod.{obj['metadata']['namespace']}.{obj['metadata']['name']}-head")
    return heads


def kuberay_pods(render: Path, into: Path) -> None:
    """One Pod per group of every RayCluster and RayJob cluster: the template KubeRay starts from."""
    into.mkdir(parents=True, exist_ok=True)
    for path in sorted(render.glob("kubernetes/*/*.yaml")):
        obj = yaml.safe_load(path.read_text())
        if obj["kind"] not in ("RayCluster", "RayJob"):
            continue
        spec = obj["spec"] if obj["kind"] == "RayCluster" else obj["spec"].get("rayClusterSpec")
        if spec is None:
            continue
        name, namespace = obj["metadata"]["name"], obj["metadata"]["namespace"]
        groups = [("head", spec["headGroupSpec"]["template"])] + [(group["groupName"], group["template"]) for group in spec.get("workerGroupSpecs") or ()]
        for group, template in groups:
            pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"{name}-{group}", "namespace": namespace,
                   **(template.get("metadata") or {})}, "spec": template["spec"]}
            (into / f"pod-{name}-{group}.yaml").write_text(yaml.safe_dump(pod))


def failed_checks(folder: Path) -> list[tuple[str, str, str]]:
    """(check id, resource, file) of every failed check, checkov's kubernetes framework."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} is missing: the README's test command installs it (requirements-checkov.txt)")
    done = subprocess.run([str(CHECKOV), "-d", str(folder), "--framework", "kubernetes", "--quiet", "--compact", "-o", "json"],
                          capture_output=True, text=True, timeout=600)
    reports = json.loads(done.stdout)
    failed = []
    for report in reports if isinstance(reports, list) else [reports]:
        assert report["summary"]["parsing_errors"] == 0, report["summary"]
        failed += [(check["check_id"], check["resource"], check["file_path"]) for check in report["results"]["failed_checks"]]
    return failed


@pytest.fixture(scope="module")
def scanned(tmp_path_factory) -> tuple[list[tuple[str, str, str]], Path]:
    folder = tmp_path_factory.mktemp("checkov")
    for stack in STACKS:
        shutil.copytree(ROOT / "renders" / stack, folder / stack, ignore=shutil.ignore_patterns(".raykube-render"))
        kuberay_pods(ROOT / "renders" / stack, folder / stack / "kuberay-pods")
    return failed_checks(folder), folder


def test_only_justified_checks_fail_on_any_stack(scanned):
    failed, folder = scanned
    heads = autoscaled_heads(folder)
    assert heads
    unjustified = sorted({f"{check} {resource} ({path})" for check, resource, path in failed if not justified(check, resource, heads)})
    assert unjustified == []


def test_the_pods_were_scanned_and_the_fixed_checks_pass(scanned):
    failed, folder = scanned
    pods = list(folder.glob("*/kuberay-pods/*.yaml"))
    assert len(pods) >= 8  # heads and groups of every stack's RayClusters and RayJobs
    checks = {check for check, _, _ in failed}
    # What this project fixed stays fixed: NetworkPolicies, token files, read-only images.
    for fixed in ("CKV2_K8S_6", "CKV_K8S_35", "CKV_K8S_22"):
        assert fixed not in checks, fixed
    # ... and a ServiceAccount token only in a head whose autoscaler uses it.
    assert {resource for check, resource, _ in failed if check == "CKV_K8S_38"} <= autoscaled_heads(folder)


def test_every_justified_check_is_explained_in_the_security_page():
    security = (ROOT / "docs" / "security.md").read_text()
    for check in JUSTIFIED:
        assert re.search(rf"`{check}`", security), f"docs/security.md does not explain {check}"


def test_an_image_digest_satisfies_the_digest_check(tmp_path):
    from raykube.cli.render import render
    from raykube.stack_file import read_stack_file

    config = stack_file_config("aks")
    digest = "sha256:" + "ab" * 32
    for cluster in config["raykube:rayClusters"]:
        cluster["imageDigest"] = digest
    stack_file = tmp_path / "Pulumi.aks.yaml"
    stack_file.write_text(yaml.safe_dump({"config": config}))
    out = tmp_path / "render"
    assert render(read_stack_file(None, stack_file), out) == 0
    kuberay_pods(out, out / "kuberay-pods")
    images = {container["image"] for pod in (out / "kuberay-pods").glob("*.yaml")
              for container in yaml.safe_load(pod.read_text())["spec"]["containers"]}
    assert images and all(image.endswith(f"@{digest}") for image in images)
    assert "CKV_K8S_43" not in {check for check, _, _ in failed_checks(out)}
    assert run_program(config, "aks").of_type("kubernetes:ray.io/v1:RayCluster")


def test_the_credentials_renewer_fails_only_justified_checks(tmp_path):
    from raykube.cli.render import render
    from raykube.stack_file import read_stack_file
    from tests.test_credentials_renewer import renewed_stack

    stack_file = tmp_path / "Pulumi.gke.yaml"
    stack_file.write_text(yaml.safe_dump({"config": renewed_stack("gke")}))
    out = tmp_path / "render"
    assert render(read_stack_file(None, stack_file), out) == 0
    folder = out / "kubernetes" / "raykube-credentials-gke"
    assert folder.is_dir()
    failed = [(check, resource) for check, resource, _ in failed_checks(folder)]
    assert all(is_renewer(resource) for _, resource in failed)
    assert [check for check, resource in failed if not justified(check, resource, set())] == []
