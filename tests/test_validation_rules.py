"""The rules behind the settings' Kubernetes and AWS checks: they refuse what the API server or AWS
refuses (tests/test_settings.py holds one wrong stack file per rule) and take what they take."""
from __future__ import annotations

import json

import pytest

from raykube.settings import SettingsError, parse_settings
from raykube.settings.aws import AWS_REGIONS

SOURCE = "stacks/Pulumi.test.yaml"


def test_the_region_list_is_every_region_botocore_knows():
    import botocore.session

    partitions = botocore.session.get_session().get_data("endpoints")["partitions"]
    known = {region for partition in partitions for region in partition["regions"]}
    assert set(AWS_REGIONS) == known, "update AWS_REGIONS (raykube/settings/aws.py) from botocore's endpoints.json"


def test_a_region_from_the_environment_is_checked_too(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-west")
    with pytest.raises(SettingsError) as caught:
        parse_settings({"awsAccess": {"mode": "secret", "bucket": "ray-data", "roleArn": "arn:aws:iam::123456789012:role/r"}}, SOURCE)
    assert caught.value.keys == ["raykube:awsAccess.region"]
    assert "AWS_REGION" in str(caught.value)


def test_what_kubernetes_takes_is_taken():
    """The checks are the API server's, not stricter: each of these is a valid object there."""
    group = {
        "name": "gpu",
        "resources": {
            "requests": {"cpu": "500m", "memory": "2e9", "ephemeral-storage": "10Gi", "nvidia.com/gpu": 1},
            "limits": {"cpu": 2, "memory": "4G", "nvidia.com/gpu": "1", "hugepages-2Mi": "128Mi"},
        },
        "tolerations": [
            {"operator": "Exists"},  # every taint
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "spot", "value": "true", "effect": "NoExecute", "tolerationSeconds": 30},
        ],
        "labels": {"example.com/team": "ml", "tier": "", "a_b.c-d": "X_1.y-2"},
        "nodeSelector": {"kubernetes.io/arch": "amd64"},
        "env": {"RAY_memory_monitor_refresh_ms": "0", "my.var-x": "1"},
    }
    settings = parse_settings({"rayClusters": [{"name": "rc", "workerGroups": [group],
                                                "dashboardIngress": {"enabled": True, "host": "ray.example.com", "className": "nginx",
                                                                     "annotations": {"nginx.ingress.kubernetes.io/auth-url": "https://a/b"},
                                                                     "tls": {"secretName": "ray-tls", "hosts": ["*.example.com"]}}}],
                               "awsAccess": {"region": "ap-southeast-7"}, "operator": {"version": "1.7.0"}}, SOURCE)
    # Tolerations reach the components as written: the API's field names.
    assert settings.ray_clusters[0].worker_groups[0].tolerations[2] == {"key": "spot", "value": "true", "effect": "NoExecute", "tolerationSeconds": 30}
    assert json.dumps(settings.ray_clusters[0].worker_groups[0].model_dump()["tolerations"])


@pytest.mark.parametrize("image", [
    "rayproject/ray:2.60.0-py311",
    "123456789012.dkr.ecr.us-west-2.amazonaws.com/team/ray:2.60.0-py311@sha256:" + "a" * 64,
    "localhost:5000/ray:2.60.0",
    "ray",
])
def test_image_references_runtimes_pull_are_taken(image):
    from components.kubernetes_names import image_problem

    assert image_problem(image) is None
