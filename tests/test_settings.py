"""The settings model: strict, one clear error naming the key and the stack file."""
from __future__ import annotations

import subprocess
import sys

import pytest

from raykube.offline import OfflineMocks, RecordingMonitor, run_offline
from raykube.settings import SettingsError, installed_ray_version, parse_settings
from tests.helpers.program import ROOT, run_program

SOURCE = "stacks/Pulumi.test.yaml"


def cluster(**fields):
    return {"rayClusters": [{"name": "rc", "namespace": "ray", **fields}]}


def group(**fields):
    return cluster(workerGroups=[{"name": "cpu", **fields}])


# (what is wrong, stack config without the "raykube:" prefix, the key the error must name)
INVALID = [
    ("misspelled top-level key", {"targt": "eks"}, "raykube:targt"),
    ("unknown target", {"target": "openshift"}, "raykube:target"),
    ("unquoted version read as a number", {"kubernetesVersion": 1.3}, "raykube:kubernetesVersion"),
    ("unsupported Kubernetes version", {"kubernetesVersion": "1.19"}, "raykube:kubernetesVersion"),
    ("misspelled nested key", {"network": {"podCIDR": "10.244.0.0/16"}}, "raykube:network.podCIDR"),
    ("malformed pod CIDR", {"network": {"podCidr": "10.244.0.0/33"}}, "raykube:network.podCidr"),
    ("CIDR with host bits", {"network": {"podCidr": "10.244.1.1/16"}}, "raykube:network.podCidr"),
    ("pod CIDR overlaps service CIDR", {"network": {"podCidr": "10.96.0.0/16", "serviceCidr": "10.96.0.0/12"}}, "raykube:network.serviceCidr"),
    ("unknown Flannel backend", {"network": {"flannelBackend": "geneve"}}, "raykube:network.flannelBackend"),
    ("Flannel network on a managed target", {"target": "eks", "network": {"flannelBackend": "vxlan"}}, "raykube:network"),
    ("kubeadm on a managed target", {"target": "gke", "kubeadm": {}}, "raykube:kubeadm"),
    ("metrics-server settings on AKS", {"target": "aks", "metrics": {"resolutionSeconds": 15}}, "raykube:metrics"),
    ("metrics resolution below 10 s", {"metrics": {"resolutionSeconds": 5}}, "raykube:metrics.resolutionSeconds"),
    ("kubelet timeout above 0.9 x resolution", {"metrics": {"resolutionSeconds": 10, "kubeletRequestTimeoutSeconds": 10}}, "raykube:metrics.kubeletRequestTimeoutSeconds"),
    ("scale-down window above 3600 s", {"autoscaling": {"scaleDownStabilizationSeconds": 4000}}, "raykube:autoscaling.scaleDownStabilizationSeconds"),
    ("negative scale-down window", {"autoscaling": {"scaleDownStabilizationSeconds": -1}}, "raykube:autoscaling.scaleDownStabilizationSeconds"),
    ("scale-down window not a number", {"autoscaling": {"scaleDownStabilizationSeconds": "soon"}}, "raykube:autoscaling.scaleDownStabilizationSeconds"),
    ("cluster name with capitals", cluster(name="RayCluster"), "raykube:rayClusters[0].name"),
    ("cluster name too long for KubeRay", cluster(name="r" * 54), "raykube:rayClusters[0].name"),
    ("cluster name starting with a digit", cluster(name="1ray"), "raykube:rayClusters[0].name"),
    ("namespace reserved for Kubernetes", cluster(namespace="kube-system"), "raykube:rayClusters[0].namespace"),
    ("two clusters of one name in a namespace", {"rayClusters": [{"name": "a"}, {"name": "a"}]}, "raykube:rayClusters[1].name"),
    ("duplicate worker group names", cluster(workerGroups=[{"name": "cpu"}, {"name": "cpu"}]), "raykube:rayClusters[0].workerGroups[1].name"),
    ("minReplicas above maxReplicas", group(minReplicas=3, maxReplicas=2), "raykube:rayClusters[0].workerGroups[0].maxReplicas"),
    ("replicas outside min..max", group(minReplicas=1, maxReplicas=2, replicas=5), "raykube:rayClusters[0].workerGroups[0].replicas"),
    ("unknown autoscaling mode for a group", group(autoscaling="keda"), "raykube:rayClusters[0].workerGroups[0].autoscaling"),
    # Settings a group's mode cannot use are errors, never dropped (issue: they rendered as if unset).
    ("range on a fixed group", group(autoscaling="fixed", replicas=2, maxReplicas=3), "raykube:rayClusters[0].workerGroups[0].maxReplicas"),
    ("fixed group without replicas", group(autoscaling="fixed", minReplicas=1, maxReplicas=3), "raykube:rayClusters[0].workerGroups[0].minReplicas"),
    ("fixed group with no count at all", group(autoscaling="fixed"), "raykube:rayClusters[0].workerGroups[0].replicas"),
    ("replicas on a group Ray's autoscaler scales", group(replicas=2), "raykube:rayClusters[0].workerGroups[0].replicas"),
    ("hpa block on a group Ray's autoscaler scales", group(hpa={"targetCpuUtilizationPercent": 60}), "raykube:rayClusters[0].workerGroups[0].hpa"),
    ("GPU group given a CPU image", group(image=f"rayproject/ray:{installed_ray_version()}-py311",
                                          resources={"limits": {"nvidia.com/gpu": "1"}}), "raykube:rayClusters[0].workerGroups[0].image"),
    ("head without CPUs and no worker group", cluster(workerGroups=[]), "raykube:rayClusters[0].workerGroups"),
    ("head without CPUs and groups that never run a worker", group(maxReplicas=0), "raykube:rayClusters[0].workerGroups"),
    ("RayJob GPU group given a CPU image", {"rayJobs": [{"name": "j", "entrypoint": "python x.py", "workerGroups": [
        {"name": "gpu", "image": f"rayproject/ray:{installed_ray_version()}-py311", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}]},
     "raykube:rayJobs[0].workerGroups[0].image"),
    ("RayJob cluster where nothing can run", {"rayJobs": [{"name": "j", "entrypoint": "python x.py", "workerGroups": []}]}, "raykube:rayJobs[0].workerGroups"),
    ("image Python read as a number", cluster(pythonVersion=3.1), "raykube:rayClusters[0].pythonVersion"),
    ("RayJob code folder that does not exist", {"rayJobs": [{"name": "j", "entrypoint": "python x.py", "code": "no/such/folder"}]}, "raykube:rayJobs[0].code"),
    ("RayJob code and a working_dir", {"rayJobs": [{"name": "j", "entrypoint": "python x.py", "code": "examples/wine_shap",
                                                     "runtimeEnv": {"working_dir": "s3://b/c.zip"}}]}, "raykube:rayJobs[0].runtimeEnv.working_dir"),
    ("RayJob code without AWS access", {"awsAccess": {"mode": "none"}, "rayJobs": [{"name": "j", "entrypoint": "python x.py", "code": "examples/wine_shap"}]},
     "raykube:rayJobs[0].code"),
    ("rocksdb with an existing claim and a size", cluster(gcsFaultTolerance={"backend": "rocksdb", "storage": {"claimName": "gcs", "size": "1Gi"}}),
     "raykube:rayClusters[0].gcsFaultTolerance.storage.size"),
    ("rocksdb with an existing claim and access modes", cluster(gcsFaultTolerance={"backend": "rocksdb", "storage": {"claimName": "gcs", "accessModes": ["ReadWriteOnce"]}}),
     "raykube:rayClusters[0].gcsFaultTolerance.storage.accessModes"),
    ("rocksdb with a storage namespace", cluster(gcsFaultTolerance={"backend": "rocksdb", "storage": {"size": "1Gi"}, "externalStorageNamespace": "x"}),
     "raykube:rayClusters[0].gcsFaultTolerance.externalStorageNamespace"),
    ("rocksdb with its feature gate turned off", {**cluster(gcsFaultTolerance={"backend": "rocksdb", "storage": {"size": "1Gi"}}),
                                                  "operator": {"featureGates": {"GCSFaultToleranceEmbeddedStorage": False}}},
     "raykube:rayClusters[0].gcsFaultTolerance.backend"),
    ("unknown autoscaler upscaling mode", cluster(autoscaler={"upscalingMode": "Fast"}), "raykube:rayClusters[0].autoscaler.upscalingMode"),
    ("unknown autoscaler version", cluster(autoscaler={"version": "v3"}), "raykube:rayClusters[0].autoscaler.version"),
    ("GPU group without a GPU limit", group(rayResources={"GPU": 1}), "raykube:rayClusters[0].workerGroups[0].resources.limits"),
    ("GPU request without a GPU limit", group(resources={"requests": {"nvidia.com/gpu": "1"}}), "raykube:rayClusters[0].workerGroups[0].resources.limits"),
    ("malformed CPU quantity", group(resources={"requests": {"cpu": "two"}}), "raykube:rayClusters[0].workerGroups[0].resources.requests"),
    ("limit below request", group(resources={"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}), "raykube:rayClusters[0].workerGroups[0].resources.limits"),
    ("HPA pool without a CPU request", group(autoscaling="hpa", minReplicas=1, resources={"limits": {"cpu": "1"}}), "raykube:rayClusters[0].workerGroups[0].resources.requests"),
    ("HPA pool with zero minimum", group(autoscaling="hpa", minReplicas=0, resources={"requests": {"cpu": "1"}}), "raykube:rayClusters[0].workerGroups[0].minReplicas"),
    ("rayVersion differs from the client", cluster(rayVersion="2.9.0"), "raykube:rayClusters[0].rayVersion"),
    ("image tag differs from rayVersion", cluster(image="rayproject/ray:2.9.0-py311"), "raykube:rayClusters[0].image"),
    ("dashboard path without slash", cluster(dashboardIngress={"enabled": True, "path": "ray"}), "raykube:rayClusters[0].dashboardIngress.path"),
    ("operator version not a release", {"operator": {"version": "latest"}}, "raykube:operator.version"),
    ("IRSA outside EKS", {"awsAccess": {"mode": "irsa", "region": "eu-west-1", "bucket": "ray-data", "roleArn": "arn:aws:iam::123456789012:role/r"}}, "raykube:awsAccess.mode"),
    ("AWS access without a bucket", {"awsAccess": {"mode": "secret", "region": "eu-west-1", "roleArn": "arn:aws:iam::123456789012:role/r"}}, "raykube:awsAccess.bucket"),
    ("AWS access without a region", {"awsAccess": {"mode": "secret", "bucket": "ray-data", "roleArn": "arn:aws:iam::123456789012:role/r"}}, "raykube:awsAccess.region"),
    ("created role without trusted principals", {"awsAccess": {"mode": "secret", "region": "eu-west-1", "bucket": "ray-data"}}, "raykube:awsAccess.trustedPrincipals"),
    ("IRSA role without the cluster's OIDC provider", {"target": "eks", "awsAccess": {"mode": "irsa", "region": "eu-west-1", "bucket": "ray-data"}}, "raykube:awsAccess.oidcProviderArn"),
    ("bucket name with capitals", {"awsAccess": {"bucket": "My_Bucket"}}, "raykube:awsAccess.bucket"),
    ("role ARN that is no ARN", {"awsAccess": {"roleArn": "ray-role"}}, "raykube:awsAccess.roleArn"),
    ("trusted principal that is no ARN", {"awsAccess": {"trustedPrincipals": ["alice"]}}, "raykube:awsAccess.trustedPrincipals"),
    ("worker count past int32", group(maxReplicas=2**31), "raykube:rayClusters[0].workerGroups[0].maxReplicas"),
    ("HPA scale-up pods past int32", group(hpa={"scaleUp": {"pods": 2**31}}), "raykube:rayClusters[0].workerGroups[0].hpa.scaleUp.pods"),
    ("credentials mount path that is relative", {"awsAccess": {"mountPath": "aws"}}, "raykube:awsAccess.mountPath"),
    ("credentials mounted over /etc", {"awsAccess": {"mountPath": "/etc"}}, "raykube:awsAccess.mountPath"),
    ("sub-path dashboard without a usable rewrite", cluster(dashboardIngress={"enabled": True, "className": "traefik", "path": "/ray"}), "raykube:rayClusters[0].dashboardIngress.path"),
    ("dashboard TLS without hosts", cluster(dashboardIngress={"enabled": True, "tls": {"secretName": "t"}}), "raykube:rayClusters[0].dashboardIngress.tls.hosts"),
    ("rocksdb fault tolerance without storage", cluster(gcsFaultTolerance={"backend": "rocksdb"}), "raykube:rayClusters[0].gcsFaultTolerance.storage"),
    ("redis fault tolerance without an address", cluster(gcsFaultTolerance={"backend": "redis", "redis": {}}), "raykube:rayClusters[0].gcsFaultTolerance.redis.address"),
    ("redis address without a port", cluster(gcsFaultTolerance={"backend": "redis", "redis": {"address": "redis"}}), "raykube:rayClusters[0].gcsFaultTolerance.redis.address"),
    ("unknown fault tolerance backend", cluster(gcsFaultTolerance={"backend": "etcd"}), "raykube:rayClusters[0].gcsFaultTolerance.backend"),
    ("unknown upgrade strategy", cluster(upgradeStrategy="RollingUpdate"), "raykube:rayClusters[0].upgradeStrategy"),
    ("unknown auth mode", cluster(auth={"mode": "password"}), "raykube:rayClusters[0].auth.mode"),
    ("token auth on a Ray without it", cluster(rayVersion="2.40.0", allowVersionMismatch=True), "raykube:rayClusters[0].auth.mode"),
    ("token auth with an operator without it", {**cluster(), "operator": {"version": "1.4.2"}}, "raykube:rayClusters[0].auth.mode"),
    ("idle timeout on a fixed group", group(autoscaling="fixed", replicas=1, idleTimeoutSeconds=30), "raykube:rayClusters[0].workerGroups[0].idleTimeoutSeconds"),
    ("per-group idle timeout with autoscaler v1", cluster(autoscaler={"version": "v1"}, workerGroups=[{"name": "cpu", "idleTimeoutSeconds": 30}]), "raykube:rayClusters[0].workerGroups[0].idleTimeoutSeconds"),
    ("group image tag differs from rayVersion", group(image="rayproject/ray:2.9.0-py311"), "raykube:rayClusters[0].workerGroups[0].image"),
    ("RayJob without an entrypoint", {"rayJobs": [{"name": "j"}]}, "raykube:rayJobs[0].entrypoint"),
    ("RayJob name with capitals", {"rayJobs": [{"name": "Wine", "entrypoint": "python job.py"}]}, "raykube:rayJobs[0].name"),
    ("RayJob in a namespace without an operator", {"rayJobs": [{"name": "j", "namespace": "elsewhere", "entrypoint": "python job.py"}]}, "raykube:rayJobs[0].namespace"),
    ("RayJob on a cluster the stack does not have", {"rayJobs": [{"name": "j", "cluster": "nope", "entrypoint": "python job.py"}]}, "raykube:rayJobs[0].cluster"),
    ("RayJob on a cluster, told to delete it", {"rayJobs": [{"name": "j", "cluster": "raycluster", "shutdownAfterJobFinishes": True, "entrypoint": "x"}]}, "raykube:rayJobs[0].shutdownAfterJobFinishes"),
    ("RayJob on a cluster, with workers of its own", {"rayJobs": [{"name": "j", "cluster": "raycluster", "workerGroups": [], "entrypoint": "x"}]}, "raykube:rayJobs[0].workerGroups"),
    ("RayJob worker group scaled by an HPA", {"rayJobs": [{"name": "j", "entrypoint": "x", "workerGroups": [{"name": "g", "autoscaling": "hpa", "minReplicas": 1, "resources": {"requests": {"cpu": "1"}}}]}]}, "raykube:rayJobs[0].workerGroups[0].autoscaling"),
    ("unknown RayJob submission mode", {"rayJobs": [{"name": "j", "entrypoint": "x", "submissionMode": "Interactive"}]}, "raykube:rayJobs[0].submissionMode"),
    ("two RayJobs of one name", {"rayJobs": [{"name": "j", "entrypoint": "x"}, {"name": "j", "entrypoint": "y"}]}, "raykube:rayJobs[1].name"),
    ("renew window longer than the session", {"awsAccess": {"sessionDurationSeconds": 900, "renewBeforeSeconds": 900}}, "raykube:awsAccess.renewBeforeSeconds"),
    # What the API server or AWS would refuse halfway through `pulumi up` is refused here (issue 30).
    ("memory without a unit (2 bytes)", group(resources={"requests": {"cpu": "1", "memory": "2"}}), "raykube:rayClusters[0].workerGroups[0].resources.requests"),
    ("CPUs in binary units", group(resources={"requests": {"cpu": "2Gi"}}), "raykube:rayClusters[0].workerGroups[0].resources.requests"),
    ("a fraction of a GPU", group(resources={"limits": {"nvidia.com/gpu": "0.5"}}), "raykube:rayClusters[0].workerGroups[0].resources.limits"),
    ("a resource Kubernetes does not know", group(resources={"requests": {"cpus": "1"}}), "raykube:rayClusters[0].workerGroups[0].resources.requests"),
    ("GPU request other than its limit", group(resources={"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "2"}}), "raykube:rayClusters[0].workerGroups[0].resources.limits"),
    ("operator memory without a unit", {"operator": {"resources": {"limits": {"memory": "512"}}}}, "raykube:operator.resources"),
    ("unknown toleration operator", group(tolerations=[{"key": "gpu", "operator": "Equals", "value": "x"}]), "raykube:rayClusters[0].workerGroups[0].tolerations[0].operator"),
    ("unknown toleration effect", group(tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedul"}]), "raykube:rayClusters[0].workerGroups[0].tolerations[0].effect"),
    ("toleration value with operator Exists", group(tolerations=[{"key": "gpu", "operator": "Exists", "value": "x"}]), "raykube:rayClusters[0].workerGroups[0].tolerations[0].value"),
    ("tolerationSeconds without NoExecute", group(tolerations=[{"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 60}]),
     "raykube:rayClusters[0].workerGroups[0].tolerations[0].tolerationSeconds"),
    ("misspelled toleration field", group(tolerations=[{"key": "gpu", "operator": "Exists", "efect": "NoSchedule"}]), "raykube:rayClusters[0].workerGroups[0].tolerations[0].efect"),
    ("operator toleration of every key with Equal", {"operator": {"tolerations": [{"operator": "Equal", "value": "x"}]}}, "raykube:operator.tolerations[0].operator"),
    ("label key with a space", group(labels={"team name": "ml"}), "raykube:rayClusters[0].workerGroups[0].labels"),
    ("label value past 63 characters", group(labels={"team": "x" * 64}), "raykube:rayClusters[0].workerGroups[0].labels"),
    ("node selector value that is no label value", group(nodeSelector={"pool": "gpu pool"}), "raykube:rayClusters[0].workerGroups[0].nodeSelector"),
    ("environment variable name with a space", group(env={"MY VAR": "1"}), "raykube:rayClusters[0].workerGroups[0].env"),
    ("annotation key with two slashes", cluster(dashboardIngress={"enabled": True, "annotations": {"a/b/c": "x"}}), "raykube:rayClusters[0].dashboardIngress.annotations"),
    ("Ingress host with a scheme", cluster(dashboardIngress={"enabled": True, "host": "https://ray.example.com"}), "raykube:rayClusters[0].dashboardIngress.host"),
    ("Ingress host that is an IP address", cluster(dashboardIngress={"enabled": True, "host": "10.0.0.1"}), "raykube:rayClusters[0].dashboardIngress.host"),
    ("TLS host with a port", cluster(dashboardIngress={"enabled": True, "tls": {"secretName": "t", "hosts": ["ray.example.com:443"]}}),
     "raykube:rayClusters[0].dashboardIngress.tls.hosts[0]"),
    ("Ingress class with capitals", cluster(dashboardIngress={"enabled": True, "className": "Nginx"}), "raykube:rayClusters[0].dashboardIngress.className"),
    ("monitor label key that is no key", {"observability": {"mode": "podMonitors", "monitorLabels": {"release!": "x"}}}, "raykube:observability.monitorLabels"),
    ("policy peer label value with a space", {"networkPolicies": {"metricsFrom": [{"namespace": "monitoring", "podLabels": {"app": "prom etheus"}}]}},
     "raykube:networkPolicies.metricsFrom[0].podLabels"),
    ("half a GPU for ray start", group(rayResources={"GPU": 0.5}, resources={"limits": {"nvidia.com/gpu": "1"}}), "raykube:rayClusters[0].workerGroups[0].rayResources"),
    ("rocksdb PVC size without a unit", cluster(gcsFaultTolerance={"backend": "rocksdb", "storage": {"size": "10"}}), "raykube:rayClusters[0].gcsFaultTolerance.storage.size"),
    ("redis password Secret name with capitals", cluster(gcsFaultTolerance={"backend": "redis", "redis": {"address": "redis:6379", "passwordSecret": {"name": "Redis", "key": "password"}}}),
     "raykube:rayClusters[0].gcsFaultTolerance.redis.passwordSecret.name"),
    ("kubeadm node name with an underscore", {"kubeadm": {"nodeName": "node_1"}}, "raykube:kubeadm.nodeName"),
    ("Ray image with capitals in its repository", cluster(image="RayProject/ray:2.60.0-py311", allowVersionMismatch=True), "raykube:rayClusters[0].image"),
    ("group image with a space", cluster(allowVersionMismatch=True, workerGroups=[{"name": "cpu", "image": "rayproject/ray: 2.60.0"}]),
     "raykube:rayClusters[0].workerGroups[0].image"),
    ("operator image repository with a tag", {"operator": {"image": {"repository": "quay.io/kuberay/operator:v1.7.0"}}}, "raykube:operator.image.repository"),
    ("AWS region that does not exist", {"awsAccess": {"region": "us-east1"}}, "raykube:awsAccess.region"),
    ("credentials Secret name with capitals", {"awsAccess": {"secretName": "AWS_Credentials"}}, "raykube:awsAccess.secretName"),
    ("Ray version that is no release", cluster(rayVersion="2.60", allowVersionMismatch=True), "raykube:rayClusters[0].rayVersion"),
    ("Ray version newer than the client", cluster(rayVersion="9.0.0", allowVersionMismatch=True), "raykube:rayClusters[0].rayVersion"),
    ("Ray version the operator does not support", cluster(rayVersion="2.20.0", allowVersionMismatch=True, auth={"mode": "disabled"}), "raykube:rayClusters[0].rayVersion"),
    ("KubeRay release older than ray.io/v1 alone", {"operator": {"version": "0.6.0"}}, "raykube:operator.version"),
    ("KubeRay release newer than the pinned one", {"operator": {"version": "1.9.0"}}, "raykube:operator.version"),
]


@pytest.mark.parametrize("config, key", [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_setting_names_its_key_and_the_stack_file(config, key, monkeypatch):
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(SettingsError) as caught:
        parse_settings(config, SOURCE)
    assert key in caught.value.keys, f"expected {key}, got {caught.value.problems}"
    assert SOURCE in str(caught.value)
    assert f" {key}: " in str(caught.value)


def test_corpus_is_large_enough():
    assert len(INVALID) >= 25


def test_defaults_are_a_complete_local_stack():
    settings = parse_settings({}, SOURCE)
    assert settings.target == "local"
    assert settings.effective_network.pod_cidr == "10.244.0.0/16"
    assert settings.autoscaling.scale_down_stabilization_seconds == 15
    assert settings.effective_metrics.resolution_seconds == 15
    assert settings.kubelet_insecure_tls is True
    cluster_ = settings.ray_clusters[0]
    assert cluster_.effective_ray_version == installed_ray_version()
    # The image's Python is the pinned 3.11 (docs/pinned-versions.md), whatever Python runs the program.
    assert cluster_.effective_image == f"rayproject/ray:{installed_ray_version()}-py311"
    assert cluster_.head.ray_resources == {"CPU": 0.0}


def test_the_image_python_is_a_setting_and_not_the_interpreters(monkeypatch):
    import collections

    version = collections.namedtuple("version_info", "major minor micro releaselevel serial")
    monkeypatch.setattr(sys, "version_info", version(3, 12, 9, "final", 0))
    assert parse_settings({}, SOURCE).ray_clusters[0].effective_image.endswith("-py311")
    chosen = parse_settings(cluster(pythonVersion="3.12"), SOURCE).ray_clusters[0]
    assert chosen.effective_image == f"rayproject/ray:{installed_ray_version()}-py312"


def test_target_defaults_differ_where_the_profile_says():
    assert parse_settings({"target": "eks"}, SOURCE).kubelet_insecure_tls is False
    assert parse_settings({"metrics": {"kubeletInsecureTls": False}}, SOURCE).kubelet_insecure_tls is False


def test_lowest_metrics_resolution_works_without_touching_the_timeout():
    """metrics-server needs timeout <= 0.9 x resolution: the default follows the resolution."""
    metrics = parse_settings({"metrics": {"resolutionSeconds": 10}}, SOURCE).effective_metrics
    assert metrics.effective_kubelet_request_timeout_seconds == 9
    assert parse_settings({}, SOURCE).effective_metrics.effective_kubelet_request_timeout_seconds == 10


def test_version_mismatch_can_be_allowed_explicitly():
    settings = parse_settings(cluster(rayVersion="2.40.0", image="rayproject/ray:2.40.0-py311", allowVersionMismatch=True,
                                      auth={"mode": "disabled"}), SOURCE)
    assert settings.ray_clusters[0].effective_image == "rayproject/ray:2.40.0-py311"


def test_bad_settings_stop_before_any_resource_is_registered():
    monitor = RecordingMonitor(OfflineMocks())
    from raykube.composition import build
    from raykube.settings import load_settings

    with pytest.raises(SettingsError):
        run_offline(lambda: build(load_settings()).as_tuple(), {"raykube:rayClusters": '[{"name": "Bad"}]'}, "test", monitor=monitor)
    assert monitor.registered == []


def test_structured_config_reaches_the_settings_through_pulumi_config():
    result = run_program({"raykube:target": "gke", "raykube:rayClusters": [{"name": "one", "namespace": "team-a"}]})
    assert result.outputs["target"] == "gke"
    assert result.outputs["namespaces"] == ["team-a"]


@pytest.mark.parametrize(
    "stack_text, key",
    [
        ("config:\n  raykube:rayClustrs: []\n", "raykube:rayClustrs"),
        ("config:\n  raykube:target: openshift\n", "raykube:target"),
        ("config:\n  raykube:metrics:\n    resolutionSeconds: soon\n", "raykube:metrics.resolutionSeconds"),
    ],
    ids=["misspelled key", "unknown target", "malformed value"],
)
def test_render_cli_exits_2_with_one_clear_message(tmp_path, stack_text, key):
    stack_file = tmp_path / "Pulumi.broken.yaml"
    stack_file.write_text(stack_text)
    done = subprocess.run(
        [sys.executable, "-m", "raykube.render", "--config", str(stack_file), "--out", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert key in done.stderr and str(stack_file) in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (tmp_path / "out").exists()
