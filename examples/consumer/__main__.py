"""An existing Pulumi project that adds a Ray cluster with raykube's components.

The project already runs an app in the `analytics` namespace; three
components give that namespace a namespace-scoped KubeRay operator and an
autoscaling Ray cluster the app can submit jobs to. Set `installCrds: false`
in this project's config when another stack already installed the CRDs.

On a cluster without the public internet (docs/air-gapped.md), three optional
settings give the components local copies or your mirror instead:

    config:
      analytics:kuberayCrds: {path: vendor/charts/kuberay-operator/crds}  # KubeRayCrds' path or base_url
      analytics:kuberayChart: {path: vendor/charts/kuberay-operator}      # KubeRayOperator's source
      analytics:imageRegistry: registry.example.com/mirror                # the operator's and Ray's images

Unset, the CRDs come from KubeRay's GitHub release, the chart from its Helm
repository and the images from quay.io and Docker Hub.
"""
import pulumi
import pulumi_kubernetes as k8s

from components.kuberay_crds import KubeRayCrds
from components.kuberay_operator import KubeRayOperator
from components.ray_cluster import RayCluster
from components.sources import mirrored_image

config = pulumi.Config()
ray_version = "2.60.0"
# Air-gapped sources (optional, see above): each passed to the component that takes it.
crd_source = config.get_object("kuberayCrds") or {}
chart_source = config.get_object("kuberayChart")
image_registry = config.get("imageRegistry")

# What the project had before.
namespace = k8s.core.v1.Namespace("analytics", metadata={"name": "analytics"})
app = k8s.core.v1.ConfigMap(
    "analytics-settings",
    metadata={"name": "analytics-settings", "namespace": "analytics"},
    data={"RAY_JOBS_API": "http://analytics-ray-head-svc.analytics.svc.cluster.local:8265"},
    opts=pulumi.ResourceOptions(depends_on=[namespace]),
)

# What raykube adds.
crds = [KubeRayCrds("kuberay", crd_source)] if config.get_bool("installCrds") is not False else []
operator_args = {"namespace": "analytics"}
if chart_source:
    operator_args["source"] = chart_source
if image_registry:
    operator_args["image_registry"] = image_registry
operator = KubeRayOperator("kuberay-analytics", operator_args, pulumi.ResourceOptions(depends_on=[*crds, namespace]))
cluster = RayCluster(
    "analytics-ray",
    {
        "namespace": "analytics",
        "cluster_name": "analytics-ray",
        "ray_version": ray_version,
        "image": mirrored_image(f"rayproject/ray:{ray_version}-py311", image_registry),
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
