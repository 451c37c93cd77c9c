"""The real Pulumi engine for tests: the `pulumi` CLI and the pulumi-kubernetes provider of the
project's build (.tools/bin, tools/go/pulumi*), a local file backend and a passphrase.

A project here is a folder a user would have: raykube's Pulumi.yaml and __main__.py, the
project's virtualenv, and the stack files a test writes into its stacks/. Every command is the
CLI as a user types it; nothing is emulated. What stands in for what the proxy does not serve:
Pulumi's Python language host and the dynamic-provider launcher (tools/pulumi-plugins/), and the
operator's Pod (see OperatorPods).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import yaml

from tests.helpers.cluster_processes import BIN, require_built

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "tools" / "pulumi-plugins"
PASSPHRASE = "raykube-tests-passphrase"
# The engine programs the tests run (tools/build-go) and the stand-in hosts (tools/pulumi-plugins).
ENGINE_PROGRAMS = ("pulumi", "pulumi-resource-kubernetes")


class EngineError(AssertionError):
    def __init__(self, command: Sequence[str], result: subprocess.CompletedProcess):
        self.result = result
        super().__init__(f"`pulumi {' '.join(command)}` exited {result.returncode}:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}")


def require_engine() -> None:
    for name in ENGINE_PROGRAMS:
        require_built(BIN / name, "the program", executable=True)
    require_built(PLUGINS / "pulumi-language-python", "the Python language host stand-in", executable=True)


@dataclass
class Project:
    """A raykube project folder: the program, the virtualenv, and stack files."""

    directory: Path
    stacks: dict[str, Any] = field(default_factory=dict)
    """Each stack's config as last written (the same object: a test edits it, then writes it again)."""

    def write_stack(self, stack: str, config: Mapping[str, Any]) -> Path:
        self.stacks[stack] = config
        path = self.directory / "stacks" / f"Pulumi.{stack}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump({"config": dict(config)}, sort_keys=False))
        return path


class Engine:
    """The CLI with one file backend, one PULUMI_HOME and one kubeconfig for a test session."""

    def __init__(self, directory: Path, kubeconfig: Path):
        require_engine()
        self.directory = Path(directory)
        self.backend = self.directory / "backend"
        self.home = self.directory / "pulumi-home"
        for folder in (self.backend, self.home):
            folder.mkdir(parents=True, exist_ok=True)
        self.env = {
            **{key: value for key, value in os.environ.items() if not key.startswith(("PULUMI_", "KUBE"))},
            "PATH": os.pathsep.join([str(BIN), str(PLUGINS), str(ROOT / "venv" / "bin"), os.environ.get("PATH", "")]),
            "PULUMI_HOME": str(self.home),
            "PULUMI_BACKEND_URL": f"file://{self.backend}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            # Never download a plugin: what runs is what tools/build-go built.
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "KUBECONFIG": str(kubeconfig),
        }

    def project(self, name: str) -> Project:
        """raykube's program in a folder of its own (Pulumi.yaml, __main__.py, the venv)."""
        directory = self.directory / name
        directory.mkdir()
        for file in ("Pulumi.yaml", "__main__.py"):
            shutil.copy(ROOT / file, directory / file)
        (directory / "venv").symlink_to(ROOT / "venv")
        return Project(directory)

    def run(self, project: Project, *args: str, check: bool = True, timeout: float = 600, env: Optional[Mapping[str, str]] = None) -> subprocess.CompletedProcess:
        result = subprocess.run([str(BIN / "pulumi"), *args, "--non-interactive"], cwd=project.directory, env={**self.env, **(env or {})},
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise EngineError(args, result)
        return result

    def init(self, project: Project, stack: str) -> None:
        self.run(project, "stack", "init", stack)

    def up(self, project: Project, stack: str, *extra: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run(project, "up", "--yes", "--skip-preview", "--stack", stack, *extra, **kwargs)

    def preview(self, project: Project, stack: str, *extra: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run(project, "preview", "--stack", stack, *extra, **kwargs)

    def destroy(self, project: Project, stack: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run(project, "destroy", "--yes", "--skip-preview", "--stack", stack, **kwargs)

    def refresh(self, project: Project, stack: str, *extra: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run(project, "refresh", "--yes", "--skip-preview", "--stack", stack, *extra, **kwargs)

    def destroy_all(self, project: Project, first: Sequence[str] = ()) -> None:
        """Destroy and remove every stack of the project, those named in `first` first (best effort: a test's clean-up)."""
        listed = self.run(project, "stack", "ls", "--json", check=False)
        names = [stack["name"] for stack in json.loads(listed.stdout or "[]")] if listed.returncode == 0 else []
        for name in sorted(names, key=lambda name: name not in first):
            self.destroy(project, name, check=False)
            self.run(project, "stack", "rm", "--yes", name, check=False)

    def outputs(self, project: Project, stack: str, show_secrets: bool = False) -> dict[str, Any]:
        args = ["stack", "output", "--json", "--stack", stack] + (["--show-secrets"] if show_secrets else [])
        return json.loads(self.run(project, *args).stdout)

    def last_update(self, project: Project, stack: str) -> dict[str, Any]:
        """The stack's newest history entry: kind, result and resourceChanges by operation."""
        return json.loads(self.run(project, "stack", "history", "--json", "--stack", stack).stdout)[0]

    def state(self, project: Project, stack: str) -> list[dict[str, Any]]:
        """The stack's resources as its state holds them (`pulumi stack export`)."""
        return json.loads(self.run(project, "stack", "export", "--stack", stack).stdout)["deployment"].get("resources", [])


# --- what the kubelet would run: the operator's Pod -------------------------------------------

OPERATOR_LABEL = "app.kubernetes.io/name=kuberay-operator"
# Flags the chart writes that name things inside the operator's container, or that the harness sets
# itself out of cluster (tests/helpers/cluster_processes.py: no leader election, loopback metrics).
_IN_CONTAINER_FLAGS = ("--log-file-path", "--enable-leader-election", "--metrics-addr", "--health-probe-bind-address")


def operator_flags(container: Mapping[str, Any]) -> list[str]:
    """The operator container's args as flags the out-of-cluster operator takes ("--flag value" joined)."""
    args = list(container.get("args") or [])
    flags, index = [], 0
    while index < len(args):
        arg = str(args[index])
        takes_value = arg.startswith("--") and "=" not in arg and index + 1 < len(args) and not str(args[index + 1]).startswith("--")
        flag = f"{arg}={args[index + 1]}" if takes_value else arg
        index += 2 if takes_value else 1
        if not flag.split("=", 1)[0] in _IN_CONTAINER_FLAGS:
            flags.append(flag)
    return flags


class OperatorPods:
    """Runs the real KubeRay operator for every operator Deployment that `pulumi up` creates, with
    the args and env the chart rendered into it, as the kubelet would run its Pod; restarts it
    when they change (a chart upgrade) and stops it when the Deployment goes (a destroy). kwok
    runs the Deployment's Pod itself; the process here is the operator that acts."""

    def __init__(self, cluster, namespace_prefix: str = "", interval: float = 0.5):
        from kubernetes import client

        self.cluster = cluster
        self.namespace_prefix = namespace_prefix
        self.apps = client.AppsV1Api(cluster.api_client)
        self.interval = interval
        self.errors: list[str] = []
        self._running: dict[str, tuple] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="operator-pods", daemon=True)
        self._thread.start()

    def _wanted(self) -> dict[str, tuple]:
        wanted = {}
        for deployment in self.apps.list_deployment_for_all_namespaces(label_selector=OPERATOR_LABEL).items:
            if deployment.metadata.deletion_timestamp or not deployment.metadata.namespace.startswith(self.namespace_prefix):
                continue
            container = self.apps.api_client.sanitize_for_serialization(deployment.spec.template.spec.containers[0])
            env = {item["name"]: str(item["value"]) for item in container.get("env") or [] if "value" in item}
            wanted[deployment.metadata.namespace] = (tuple(operator_flags(container)), tuple(sorted(env.items())))
        return wanted

    def _watch(self) -> None:
        from tests.helpers.built_operator import adapt_flags

        while not self._stop.is_set():
            try:
                wanted = self._wanted()
                for namespace in [ns for ns in self._running if ns not in wanted]:
                    self.cluster.stop_operator(namespace)
                    del self._running[namespace]
                for namespace, (flags, env) in wanted.items():
                    if self._running.get(namespace) != (flags, env):
                        self.cluster.stop_operator(namespace)
                        pid, metrics = self.cluster.plane.kuberay_operator(f"kuberay-operator-{namespace}", adapt_flags(list(flags)), dict(env))
                        self.cluster.operators[namespace] = list(flags)
                        self.cluster.operator_pids[namespace] = pid
                        self.cluster.operator_metrics[namespace] = metrics
                        self._running[namespace] = (flags, env)
            except BaseException as error:  # pytest.skip from adapt_flags included: reported by check()
                self.errors.append(f"{type(error).__name__}: {error}")
            self._stop.wait(self.interval)

    def running(self) -> set[str]:
        return set(self._running)

    def check(self) -> None:
        if self.errors:
            raise AssertionError("running the operator's Pod failed: " + "; ".join(dict.fromkeys(self.errors)))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for namespace in list(self._running):
            self.cluster.stop_operator(namespace)
        self._running.clear()



# --- the stacks the engine runs ---------------------------------------------------------------

CHART_FOLDERS = {"kuberayOperator": "kuberay-operator", "metricsServer": "metrics-server", "flannel": "kube-flannel"}
# The charts each target installs (a source for one it does not install is a settings error).
TARGET_CHARTS = {"local": ("kuberayOperator", "metricsServer", "flannel"), "gke": ("kuberayOperator",)}

def air_gapped_variant(stack: str, prefix: str, mirror: str, **changes: Any) -> dict[str, Any]:
    """stacks/Pulumi.<stack>.yaml as a user on an air-gapped cluster without AWS writes it, in
    namespaces `<prefix>-<namespace>`: every chart and the CRDs from the upstream folders in
    ../shared/upstream/charts (read where they lie), every image from `mirror`; no `awsAccess`
    and no `observability` (pulumi-aws and kube-prometheus-stack's chart are not built here)."""
    from tests.helpers.program import relocated, stack_file_config
    from tests.helpers.upstream import upstream_path

    config = relocated(stack_file_config(stack), prefix)
    config.pop("raykube:awsAccess", None)
    config.pop("raykube:observability", None)
    config.update(changes)
    charts = {key: {"path": str(upstream_path(f"charts/{CHART_FOLDERS[key]}"))} for key in TARGET_CHARTS[config["raykube:target"]]}
    sources: dict[str, Any] = {"imageRegistry": mirror, "charts": charts}
    if (config.get("raykube:operator") or {}).get("installCrds", True):
        sources["crds"] = {"path": str(upstream_path("charts/kuberay-operator/crds"))}
    config["raykube:sources"] = sources
    return config
