"""Names raykube and KubeRay derive from several settings: two settings that make one object
(same kind, same namespace) or a name Kubernetes would refuse are one error naming both
settings and the stack file, before anything is registered."""
from __future__ import annotations

import pytest

from raykube.offline import OfflineMocks, RecordingMonitor, run_offline
from raykube.settings import SettingsError, parse_settings
from raykube.settings.names import derived_names
from tests.helpers.program import STACKS, stack_file_config

SOURCE = "stacks/Pulumi.test.yaml"
HPA = {"autoscaling": "hpa", "minReplicas": 1, "resources": {"requests": {"cpu": "1"}}}


def refused(config: dict) -> SettingsError:
    with pytest.raises(SettingsError) as caught:
        parse_settings(config, SOURCE)
    assert SOURCE in str(caught.value)
    return caught.value


def test_two_hpa_pools_that_make_one_deployment_are_refused_naming_both_groups():
    # The case: x + y-workers and x-y + workers both make the Deployment x-y-workers-workers.
    error = refused({"rayClusters": [
        {"name": "x", "workerGroups": [{"name": "y-workers", **HPA}]},
        {"name": "x-y", "workerGroups": [{"name": "workers", **HPA}]},
    ]})
    assert error.keys == ["raykube:rayClusters[1].workerGroups[0].name"]
    assert "Deployment 'x-y-workers-workers' in namespace ray" in str(error)
    assert "rayClusters[0].workerGroups[0].name" in str(error)


def test_bad_names_stop_before_any_resource_is_registered():
    monitor = RecordingMonitor(OfflineMocks())
    from raykube.composition import build
    from raykube.settings import load_settings

    clusters = '[{"name": "x", "workerGroups": [{"name": "y-workers", "autoscaling": "hpa", "minReplicas": 1, "resources": {"requests": {"cpu": "1"}}}]},' \
               ' {"name": "x-y", "workerGroups": [{"name": "workers", "autoscaling": "hpa", "minReplicas": 1, "resources": {"requests": {"cpu": "1"}}}]}]'
    with pytest.raises(SettingsError):
        run_offline(lambda: build(load_settings()).as_tuple(), {"raykube:rayClusters": clusters}, "test", monitor=monitor)
    assert monitor.registered == []


def test_clusters_whose_pulumi_names_meet_across_namespaces_are_refused():
    # Different namespaces, so Kubernetes has two objects, but both RayCluster components are "a-b-c":
    # Pulumi would stop on a duplicate URN halfway through `pulumi up`.
    error = refused({"rayClusters": [{"name": "c", "namespace": "a-b"}, {"name": "b-c", "namespace": "a"}]})
    assert error.keys == ["raykube:rayClusters[1].name"]
    assert "'a-b-c'" in str(error) and "rayClusters[0].name" in str(error)


def test_a_cluster_named_like_the_aws_secret_is_refused():
    # KubeRay's token Secret is named after the cluster: it would be the AWS credentials Secret.
    error = refused({
        "rayClusters": [{"name": "aws-credentials"}],
        "awsAccess": {"mode": "secret", "region": "us-east-1", "bucket": "ray-data", "roleArn": "arn:aws:iam::123456789012:role/r"},
    })
    assert error.keys == ["raykube:awsAccess.secretName"]
    assert "Secret 'aws-credentials' in namespace ray" in str(error) and "rayClusters[0].name" in str(error)


def test_a_kuberay_service_name_past_63_characters_is_refused(monkeypatch):
    # The cluster name's own cap (53) keeps <cluster>-head-svc a label; were it raised, the
    # derived name's own check still stops a Service Kubernetes would refuse.
    import raykube.settings.ray_cluster as ray_cluster

    monkeypatch.setattr(ray_cluster, "RAY_CLUSTER_NAME_MAX", 63)
    error = refused({"rayClusters": [{"name": "r" * 60}]})
    assert error.keys == ["raykube:rayClusters[0].name"]
    assert f"Service '{'r' * 60}-head-svc'" in str(error) and "at most 63" in str(error)


@pytest.mark.parametrize("stack", STACKS)
def test_the_check_knows_every_name_the_program_makes(stack_runs, stack):
    """The names checked are the names made: the same builders, so no kind escapes the check."""
    run = stack_runs[stack]
    config = {key.removeprefix("raykube:"): value for key, value in stack_file_config(stack).items()}
    checked = {(name.kind, name.namespace, name.name) for name in derived_names(parse_settings(config, SOURCE))}
    made = {(r.inputs["kind"], r.inputs["metadata"].get("namespace"), r.inputs["metadata"]["name"])
            for r in run.kubernetes_objects()
            if r.inputs["kind"] in ("RayCluster", "RayJob", "RayService", "Deployment", "HorizontalPodAutoscaler", "Ingress", "ServiceAccount")
            or (r.inputs["kind"] == "Secret" and r.inputs["metadata"].get("namespace") in {c.get("namespace", "ray") for c in config["rayClusters"]})}
    assert made - checked == set()
    components = {(f"Pulumi {r.type}", None, r.name) for r in run.resources
                  if r.type in ("raykube:index:RayCluster", "raykube:index:RayWorkerPool", "raykube:index:RayJob", "raykube:index:RayService")}
    assert components - checked == set()


def test_a_rayjob_whose_own_clusters_service_would_pass_63_characters_is_refused(monkeypatch):
    # KubeRay names the job's cluster <job>-<5 characters> and its head Service <that>-head-svc.
    import raykube.settings.ray_jobs as ray_jobs

    monkeypatch.setattr(ray_jobs, "RAY_JOB_NAME_MAX", 63)
    error = refused({"rayJobs": [{"name": "j" * 50, "entrypoint": "python x.py"}]})
    assert error.keys == ["raykube:rayJobs[0].name"]
    assert "head-svc" in str(error) and "at most 63" in str(error)
