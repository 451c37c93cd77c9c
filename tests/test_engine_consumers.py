"""raykube's components reused from other projects, deployed by the real Pulumi engine and the
pulumi-kubernetes provider on the session's simulated cluster (real scheduler, kwok nodes, the
real KubeRay operator run for the operator Deployment each example's chart creates).

- examples/consumer (Python) as its user runs it, with the example's own optional air-gapped
  settings (analytics:kuberayCrds, analytics:kuberayChart, analytics:imageRegistry) pointing at the
  upstream chart folders in ../shared/upstream/charts (read where they lie);
- examples/consumer-yaml (Pulumi YAML, through raykube's component package: the YAML language host
  and components/ run as a Python plugin) as a variant the test writes: `packages:` naming
  components/ by its absolute path, and the CRDs and chart given the same local sources as
  properties (Pulumi YAML has no optional object config to make that a setting).

Each: `pulumi up` returns once its RayCluster is ready (the engine waits on pulumi.com/waitFor),
the outputs are addresses that work on the cluster, and `pulumi destroy` removes the namespace
and keeps the shared CRDs. (A second, no-change preview is left to tests/test_engine_scenarios.py,
which runs the same components in raykube's stacks: here it would double each test's time.) Both examples use the namespace `analytics` (no other test does), one
after the other. The session's CRDs are already installed (tests/helpers/envtest.py): the provider
applies the examples' KubeRayCrds over them. Neither example installs metrics-server: the
harness's keeps metrics.k8s.io.
"""
from __future__ import annotations

import contextlib
import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.helpers.engine import ROOT, Engine, EngineError, OperatorPods, Project
from tests.helpers.envtest import wait_for
from tests.helpers.upstream import upstream_path

NAMESPACE = "analytics"  # hard-coded by both examples
CLUSTER = "analytics-ray"
MIRROR = "mirror.internal.example:5000/raykube"
CRD_NAMES = {"rayclusters.ray.io", "rayjobs.ray.io", "rayservices.ray.io", "raycronjobs.ray.io"}
STACK = "dev"


@pytest.fixture(scope="module")
def engine(simulated_cluster, tmp_path_factory):
    """The CLI with one backend; the operator Deployment each example's chart creates runs as the real operator."""
    engine = Engine(tmp_path_factory.mktemp("consumers"), simulated_cluster.plane.kubeconfig)
    pods = OperatorPods(simulated_cluster, namespace_prefix=NAMESPACE)
    try:
        yield engine
    finally:
        pods.stop()
        simulated_cluster.delete_namespace(NAMESPACE)  # whatever a failed test left


def example_project(engine: Engine, example: Path, name: str) -> Project:
    """The example's files in a folder of their own, with the project's virtualenv (the example's requirements)."""
    directory = engine.directory / name
    directory.mkdir()
    for file in example.iterdir():
        if file.is_file() and file.name != "requirements.txt":
            shutil.copy(file, directory / file.name)
    (directory / "venv").symlink_to(ROOT / "venv")
    return Project(directory)


def live(sim, kind: str, api_version: str, name: str) -> dict:
    return sim.dynamic.resources.get(api_version=api_version, kind=kind).get(name=name, namespace=NAMESPACE).to_dict()


def namespace_exists(sim) -> bool:
    return sim.has_namespace(NAMESPACE)


def crds(sim) -> set[str]:
    return sim.crd_names() & CRD_NAMES


@contextlib.contextmanager
def cleaned_up(sim, engine: Engine, project: Project):
    """Whatever fails in the block, the next test finds no `analytics` namespace (and no state left)."""
    try:
        yield
    finally:
        try:
            left = engine.state(project, STACK)
        except EngineError:  # no stack: `stack init` never ran
            left = []
        if left:  # the test failed before its own destroy
            engine.destroy(project, STACK, check=False)
        sim.delete_namespace(NAMESPACE)


def up_ready(sim, engine: Engine, project: Project) -> dict:
    """`pulumi up`: the RayCluster is ready when it returns and the addresses it outputs are real. The outputs."""
    assert not namespace_exists(sim), f"namespace {NAMESPACE} is left from before"
    engine.init(project, STACK)
    engine.up(project, STACK)
    cluster = live(sim, "RayCluster", "ray.io/v1", CLUSTER)
    assert cluster["status"]["state"] == "ready", cluster.get("status")  # up returned: the engine waited for it
    outputs = engine.outputs(project, STACK)
    # The Jobs API the example exports is the head Service the operator made.
    head_service = f"{CLUSTER}-head-svc"
    assert outputs["jobsApi"] == f"http://{head_service}.{NAMESPACE}.svc.cluster.local:8265"
    sim.core.read_namespaced_service(head_service, NAMESPACE)
    assert live(sim, "Deployment", "apps/v1", "kuberay-operator")["status"].get("availableReplicas") == 1
    assert crds(sim) == CRD_NAMES
    return outputs


def destroyed(sim, engine: Engine, project: Project) -> None:
    """`pulumi destroy`: the namespace goes with everything the example made; the CRDs stay."""
    engine.destroy(project, STACK)
    wait_for(lambda: not namespace_exists(sim), 60, f"namespace {NAMESPACE} to go")
    assert crds(sim) == CRD_NAMES  # kept: other stacks' RayClusters depend on them
    assert engine.outputs(project, STACK) == {}


def test_the_python_consumer_example_brings_up_a_ready_ray_cluster_and_destroys_it(simulated_cluster, engine):
    sim = simulated_cluster
    project = example_project(engine, ROOT / "examples" / "consumer", "consumer")
    # The example's optional air-gapped settings (its docstring), as its user writes them.
    (project.directory / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump({"config": {
        "analytics:kuberayCrds": {"path": str(upstream_path("charts/kuberay-operator/crds"))},
        "analytics:kuberayChart": {"path": str(upstream_path("charts/kuberay-operator"))},
        "analytics:imageRegistry": MIRROR,
    }}))
    with cleaned_up(sim, engine, project):
        outputs = up_ready(sim, engine, project)
        # The project's own app points at the cluster raykube added.
        assert sim.core.read_namespaced_config_map("analytics-settings", NAMESPACE).data["RAY_JOBS_API"] == outputs["jobsApi"]
        operator = live(sim, "Deployment", "apps/v1", "kuberay-operator")["spec"]["template"]["spec"]["containers"][0]["image"]
        head = live(sim, "RayCluster", "ray.io/v1", CLUSTER)["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["image"]
        assert operator.startswith(f"{MIRROR}/") and head.startswith(f"{MIRROR}/"), (operator, head)
        destroyed(sim, engine, project)


def yaml_variant(project: Project) -> None:
    """examples/consumer-yaml with components/ by absolute path and the CRDs, the chart and the operator's image from air-gapped sources."""
    program = yaml.safe_load((project.directory / "Pulumi.yaml").read_text())
    program["packages"]["raykube"] = str(ROOT / "components")
    resources = program["resources"]
    resources["kuberay"]["properties"]["path"] = str(upstream_path("charts/kuberay-operator/crds"))
    resources["kuberayAnalytics"]["properties"]["source"] = {"path": str(upstream_path("charts/kuberay-operator"))}
    resources["kuberayAnalytics"]["properties"]["imageRegistry"] = MIRROR
    (project.directory / "Pulumi.yaml").write_text(yaml.safe_dump(program, sort_keys=False))


def test_the_yaml_consumer_example_brings_up_a_ready_ray_cluster_through_the_component_package(simulated_cluster, engine):
    sim = simulated_cluster
    project = example_project(engine, ROOT / "examples" / "consumer-yaml", "consumer-yaml")
    yaml_variant(project)
    written = yaml.safe_load((ROOT / "examples" / "consumer-yaml" / "Pulumi.yaml").read_text())["resources"]["analyticsRay"]["properties"]
    with cleaned_up(sim, engine, project):
        outputs = up_ready(sim, engine, project)
        spec = live(sim, "RayCluster", "ray.io/v1", CLUSTER)["spec"]
        group = written["workerGroups"][0]  # YAML sends these as floats: the cluster has the counts written
        assert (spec["workerGroupSpecs"][0]["minReplicas"], spec["workerGroupSpecs"][0]["maxReplicas"]) == (group["minReplicas"], group["maxReplicas"])
        assert spec.get("authOptions") == {"mode": written["authMode"]}
        # authTokenCommand names the Secret holding the token (the command, never the token).
        secret = re.search(r"get secret (\S+)", outputs["authTokenCommand"]).group(1)
        sim.core.read_namespaced_secret(secret, NAMESPACE)
        destroyed(sim, engine, project)
