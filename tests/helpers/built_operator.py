"""The KubeRay operator the tests run, and how it differs from the one the program deploys.

The program deploys KubeRay KUBERAY_VERSION (components/versions.py). The tests
run the operator the project builds from the Go module proxy at the pin in
tools/go/kuberay/go.mod. While the proxy refuses v1.7.0's source, that pin is an
older release (a stand-in): the harness then starts it with the chart's flags
less the feature gates it does not know that the chart turns off (a gate an
operator does not have is off there too), and a test that needs a gate or a
field the stand-in lacks is skipped with the reason, never passed.
"""
from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

from tests.helpers.cluster_processes import ROOT, binary

OPERATOR_MODULE = "github.com/ray-project/kuberay/ray-operator"


@functools.lru_cache(maxsize=None)
def built_version() -> str:
    """The operator module's version compiled into .tools/bin/kuberay-operator (its Go build info)."""
    done = subprocess.run(["go", "version", "-m", binary("kuberay-operator")], capture_output=True, text=True, timeout=60, check=True)
    for line in done.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[0] in ("dep", "mod") and fields[1] == OPERATOR_MODULE:
            return fields[2].lstrip("v")
    raise AssertionError(f"no {OPERATOR_MODULE} in the build info of the operator binary:\n{done.stdout}")


def deployed_version() -> str:
    from components.versions import KUBERAY_VERSION

    return KUBERAY_VERSION


def stand_in_reason() -> str:
    """Why the operator the tests run is not the program's (empty when it is)."""
    built, deployed = built_version(), deployed_version()
    if built == deployed:
        return ""
    return (f"the KubeRay operator built for the tests is v{built}, not v{deployed}, which the program deploys: the Go "
            f"module proxy refuses v{deployed}'s source (tools/go/kuberay/go.mod)")


@functools.lru_cache(maxsize=None)
def known_feature_gates() -> frozenset[str]:
    """The feature gates of the built operator, from its own source in the module cache."""
    done = subprocess.run(["go", "list", "-m", "-f", "{{.Dir}}", OPERATOR_MODULE], cwd=ROOT / "tools" / "go" / "kuberay",
                          capture_output=True, text=True, timeout=120, check=True)
    source = (Path(done.stdout.strip()) / "pkg" / "features" / "features.go").read_text()
    return frozenset(re.findall(r'featuregate\.Feature\s*=\s*"([A-Za-z0-9]+)"', source))


def adapt_flags(flags: list[str]) -> list[str]:
    """The chart's flags as the built operator takes them: gates it lacks dropped when the chart turns
    them off; a test whose stack turns one on is skipped, naming the gate."""
    import pytest

    adapted = []
    for flag in flags:
        if not flag.startswith("--feature-gates="):
            adapted.append(flag)
            continue
        kept = []
        for pair in flag.split("=", 1)[1].split(","):
            name, _, value = pair.partition("=")
            if name in known_feature_gates():
                kept.append(pair)
            elif value == "true":
                pytest.skip(f"needs the operator's {name} gate: {stand_in_reason()}")
        if kept:
            adapted.append("--feature-gates=" + ",".join(kept))
    return adapted


def require_deployed_operator(what: str) -> None:
    """Skip a test of `what` (behaviour only the deployed release has) while a stand-in runs."""
    import pytest

    reason = stand_in_reason()
    if reason:
        pytest.skip(f"{what}: {reason}")
