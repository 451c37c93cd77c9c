"""awsAccess.mode podIdentity (EKS): a Pod Identity association per Ray namespace, a role only the Ray
service accounts of that cluster may get, and a path through the NetworkPolicies to the node's agent."""
from __future__ import annotations

import copy
import json

import pytest

from raykube.settings import SettingsError, parse_settings
from tests.helpers.moto import BUCKET
from tests.helpers.network_policy_model import Cluster, Endpoint
from tests.helpers.program import ray_pod_templates, run_program, stack_file_config
from tests.helpers.ray_flows import pods_of

AGENT, IMDS = "169.254.170.23", "169.254.169.254"


def pod_identity(**more) -> dict:
    config = copy.deepcopy(stack_file_config("eks"))
    config["raykube:awsAccess"] = {"mode": "podIdentity", "region": "us-west-2", "bucket": BUCKET, "eksClusterName": "ray-prod", **more}
    return config


@pytest.fixture(scope="module")
def run():
    return run_program(pod_identity(), "eks")


def test_every_ray_namespace_is_associated_with_the_role(run):
    namespaces = sorted({obj.inputs["metadata"]["namespace"] for obj in run.kubernetes_objects() if obj.inputs["kind"] == "RayCluster"})
    associations = run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")
    (role,) = run.of_type("aws:iam/role:Role")
    assert sorted(a.inputs["namespace"] for a in associations) == namespaces
    for association in associations:
        assert association.inputs["clusterName"] == "ray-prod" and association.inputs["serviceAccount"] == "ray-s3"
        assert association.inputs["roleArn"].endswith(f":role/{role.inputs['name']}")
    accounts = [obj.inputs for obj in run.of_type("kubernetes:core/v1:ServiceAccount") if obj.inputs["metadata"]["name"] == "ray-s3"]
    assert sorted(a["metadata"]["namespace"] for a in accounts) == namespaces
    assert all("annotations" not in a["metadata"] for a in accounts), "no IRSA annotation: the association is the link"


def test_only_the_ray_service_accounts_of_this_cluster_get_the_role(run):
    (role,) = run.of_type("aws:iam/role:Role")
    (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    # The agent tags the session (TagSession) with the pod's cluster, namespace and service account.
    assert sorted(statement["Action"]) == ["sts:AssumeRole", "sts:TagSession"]
    conditions = statement["Condition"]["StringEquals"]
    assert conditions["aws:RequestTag/eks-cluster-name"] == "ray-prod"
    assert conditions["aws:RequestTag/kubernetes-service-account"] == "ray-s3"
    namespaces = conditions["aws:RequestTag/kubernetes-namespace"]
    assert sorted(namespaces if isinstance(namespaces, list) else [namespaces]) == sorted(
        {a.inputs["namespace"] for a in run.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")})


def test_the_ray_pods_use_the_service_account_and_carry_no_credential(run):
    templates = ray_pod_templates(run)
    assert templates
    for name, template in templates:
        pod = template["spec"]
        assert pod["serviceAccountName"] == "ray-s3", name
        for container in pod["containers"]:
            env = {item["name"] for item in container.get("env") or ()}
            assert not {"AWS_ACCESS_KEY_ID", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONFIG_FILE"} & env, name
    assert not [r for r in run.of_type("kubernetes:core/v1:Secret") if "aws" in r.inputs["metadata"]["name"]]


def test_ray_pods_reach_the_pod_identity_agent_and_not_the_instance_metadata(run):
    objects = [copy.deepcopy(resource.inputs) for resource in run.kubernetes_objects()]
    model = Cluster(objects, ["kube-system"])
    agent, imds = Endpoint("pod-identity-agent", None, {}, AGENT), Endpoint("instance-metadata", None, {}, IMDS)
    namespaces = {obj["metadata"]["namespace"] for obj in objects if obj["kind"] == "RayCluster"}
    for namespace in namespaces:
        for role, pods in pods_of(objects, namespace).items():
            for pod in pods:
                assert model.connects(pod, agent, 80), f"{pod.name} cannot reach the Pod Identity Agent"
                assert not model.connects(pod, imds, 80), f"{pod.name} reaches the node's instance metadata"
    # Without podIdentity, no such hole.
    irsa = run_program(stack_file_config("eks"), "eks")
    objects = [copy.deepcopy(resource.inputs) for resource in irsa.kubernetes_objects()]
    pods = [pod for namespace in namespaces for pods in pods_of(objects, namespace).values() for pod in pods]
    assert pods and not any(Cluster(objects, ["kube-system"]).connects(pod, agent, 80) for pod in pods)


def test_raykube_status_says_nothing_expires(run):
    from raykube.namespace_status import credentials_status

    settings = parse_settings({key.removeprefix("raykube:"): value for key, value in pod_identity().items()}, "stacks/Pulumi.eks.yaml")
    entry = credentials_status(settings, None, "ray")
    assert entry["ready"] and entry["mode"] == "podIdentity" and "ray-prod" in entry["state"]


@pytest.mark.parametrize("target,access,key", [
    ("gke", {"mode": "podIdentity", "eksClusterName": "x"}, "awsAccess.mode"),
    ("eks", {"mode": "podIdentity"}, "awsAccess.eksClusterName"),
    ("eks", {"mode": "webIdentity", "oidcIssuer": "a.example.com", "eksClusterName": "x"}, "awsAccess.eksClusterName"),
])
def test_impossible_pod_identity_settings_are_one_error_naming_the_key(target, access, key):
    raw = {"target": target, "awsAccess": {"region": "us-west-2", "bucket": BUCKET, **access}}
    with pytest.raises(SettingsError) as error:
        parse_settings(raw, f"stacks/Pulumi.{target}.yaml")
    assert error.value.keys == [f"raykube:{key}"], error.value.problems
