"""docs/settings.md's reference is generated from the settings model, lists every setting,
and the ranges it states beyond the fields' own bounds are the validators' ranges."""
from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from raykube.settings import Settings
from raykube.settings.aws import AwsAccessSettings
from raykube.settings.network_policies import NetworkPolicySettings
from raykube.settings.operator import OperatorSettings
from raykube.settings.ray_cluster import RayClusterSettings
from raykube.settings.ray_groups import WorkerGroup
from raykube.settings.ray_jobs import RayJobSettings
from raykube.settings_docs import main as settings_docs, keys, rows, rules


def test_the_settings_reference_is_fresh():
    assert settings_docs(["--check"]) == 0, "run `venv/bin/python -m raykube.settings_docs`"


def test_every_rule_names_a_listed_setting():
    """A rule for a key the model no longer has would document a setting that does not exist."""
    listed = set(keys())
    assert sorted(set(rules()) - listed) == []


def test_every_setting_is_listed_once():
    listed = keys()
    assert len(listed) == len(set(listed))
    for key in ("target", "kubernetesVersion", "rayClusters[].workerGroups[].hpa.scaleUp.pods", "awsAccess.renewalIntervalMinutes",
                "rayJobs[].code", "observability.kubePrometheusStack.values", "adoptNamespaces"):
        assert key in listed


def test_every_number_has_its_range():
    """A count, a duration or a port without a stated range is what issue 30 found in the old table."""
    unranged = [key for key, kind, _, allowed, _ in rows(Settings, "", None, {}) if "integer" in kind and not allowed]
    assert unranged == []


def _valid(model: type[BaseModel], values: dict) -> bool:
    try:
        model.model_validate(values)
    except ValidationError:
        return False
    return True


# (the rule's key, what must be in its text, the model, accepted values, refused values): the
# numbers the reference states, at their edges, against the validators themselves.
PROBES = [
    ("kubernetesVersion", '"1.25" to "1.37"', Settings,
     [{"kubernetesVersion": "1.25"}, {"kubernetesVersion": "1.37"}], [{"kubernetesVersion": "1.24"}, {"kubernetesVersion": "1.38"}]),
    ("operator.version", "from 1.1 to 1.7.x", OperatorSettings,
     [{"version": "1.1.0"}, {"version": "1.7.9"}], [{"version": "1.0.0"}, {"version": "1.8.0"}]),
    ("rayClusters[].rayVersion", "never 2.11.0 to 2.37.0", Settings,
     [{"rayClusters": [{"rayVersion": "2.38.0", "allowVersionMismatch": True, "auth": {"mode": "disabled"}}]}],
     [{"rayClusters": [{"rayVersion": "2.37.0", "allowVersionMismatch": True, "auth": {"mode": "disabled"}}]}]),
    ("rayClusters[].name", "at most 53", RayClusterSettings, [{"name": "a" * 53}], [{"name": "a" * 54}]),
    ("rayClusters[].namespace", "at most 63", RayClusterSettings, [{"namespace": "a" * 63}], [{"namespace": "a" * 64}, {"namespace": "default"}, {"namespace": "kube-x"}]),
    ("rayClusters[].workerGroups[].name", "at most 40", WorkerGroup, [{"name": "a" * 40}], [{"name": "a" * 41}]),
    ("rayJobs[].name", "at most 47", RayJobSettings,
     [{"name": "a" * 47, "entrypoint": "python job.py"}], [{"name": "a" * 48, "entrypoint": "python job.py"}]),
    ("awsAccess.renewalIntervalMinutes", "5, 10, 15, 20, 30, 60", AwsAccessSettings,
     [{"renewalIntervalMinutes": minutes} for minutes in (5, 10, 15, 20, 30, 60)],
     [{"renewalIntervalMinutes": minutes} for minutes in (4, 25, 120)]),
    ("awsAccess.renewBeforeSeconds", "below `sessionDurationSeconds`", AwsAccessSettings,
     [{"sessionDurationSeconds": 3600, "renewBeforeSeconds": 3599}], [{"sessionDurationSeconds": 3600, "renewBeforeSeconds": 3600}]),
    ("metrics.kubeletRequestTimeoutSeconds", "0.9 × `resolutionSeconds`", Settings,
     [{"metrics": {"resolutionSeconds": 20, "kubeletRequestTimeoutSeconds": 18}}],
     [{"metrics": {"resolutionSeconds": 20, "kubeletRequestTimeoutSeconds": 19}}]),
    ("networkPolicies.apiServerPorts", "1 to 65535", NetworkPolicySettings,
     [{"apiServerPorts": [1, 65535]}], [{"apiServerPorts": [0]}, {"apiServerPorts": [65536]}, {"apiServerPorts": []}]),
    ("rayClusters[].workerGroups[].maxReplicas", "at least `minReplicas`", WorkerGroup,
     [{"name": "cpu", "minReplicas": 2, "maxReplicas": 2}], [{"name": "cpu", "minReplicas": 3, "maxReplicas": 2}]),
    ("rayClusters[].workerGroups[].minReplicas", "`hpa`: at least 1", WorkerGroup,
     [{"name": "cpu", "autoscaling": "hpa", "minReplicas": 1}], [{"name": "cpu", "autoscaling": "hpa", "minReplicas": 0}]),
]


@pytest.mark.parametrize("key, text, model, accepted, refused", PROBES, ids=[probe[0] for probe in PROBES])
def test_each_documented_range_is_the_validators(key, text, model, accepted, refused):
    assert text in rules()[key], f"docs/settings.md's rule for {key} no longer says {text!r}: update this probe with it"
    for values in accepted:
        assert _valid(model, values), f"{key}: {values} is refused, but the reference allows it"
    for values in refused:
        assert not _valid(model, values), f"{key}: {values} is accepted, but the reference refuses it"
