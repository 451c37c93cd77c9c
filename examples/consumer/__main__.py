"""An existing Pulumi project that adds a Ray cluster with raykube's components.

The project already runs an app in the `analytics` namespace; three
components give that namespace a namespace-scoped KubeRay operator and an
autoscaling Ray cluster the app can submit jobs to. Set `installCrds: false`
in this project's config when another stack already installed the CRDs.
"""
import pulumi
import pulumi_kubernetes as k8s

from components.kuberay_crds import KubeRayCrds
from components.kuberay_operator import KubeRayOperator
from components.ray_cluster import RayCluster

config = pulumi.Config()
ray_version = "2.60.0"

# What the project had before.
namespace = k8s.core.v1.Namespace("analytics", metadata={"name": "analytics"})
app = k8s.core.v1.ConfigMap(
    "analytics-settings",
    metadata={"name": "analytics-settings", "namespace": "analytics"},
    data={"RAY_JOBS_API": "http://analytics-ray-head-svc.analytics.svc.cluster.local:8265"},
    opts=pulumi.ResourceOptions(depends_on=[namespace]),
)

# What raykube adds.
crds = [KubeRayCrds("kuberay", {})] if config.get_bool("installCrds") is not False else []
operator = KubeRayOperator("kuberay-analytics", {"namespace": "analytics"}, pulumi.ResourceOptions(depends_on=[*crds, namespace]))
cluster = RayCluster(
    "analytics-ray",
    {
        "namespace": "analytics",
        "cluster_name": "analytics-ray",
        "ray_version": ray_version,
        "image": f"rayproject/ray:{ray_version}-py311",
        "head": {"resources": {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"cpu": "1", "memory": "4Gi"}}, "ray_resources": {"CPU": 0}},
        "worker_groups": [
            {"name": "cpu", "autoscaling": "ray", "min_replicas": 0, "max_replicas": 6,
             "resources": {"requests": {"cpu": "2", "memory": "8Gi"}, "limits": {"cpu": "2", "memory": "8Gi"}}},
        ],
    },
    pulumi.ResourceOptions(depends_on=[operator]),
)

pulumi.export("jobsApi", cluster.jobs_api_address)
pulumi.export("authTokenCommand", cluster.auth_token_command)
