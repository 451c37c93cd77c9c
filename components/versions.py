"""Every pinned version raykube deploys, and why, in one place.

Python packages are pinned in requirements.txt / requirements-dev.txt; this
module pins what those files cannot: Helm charts, container images and
manifests fetched at `pulumi up`. Each pin is the newest release that the
reference data in ../shared/upstream was taken from, so the tests that check
chart values and CRD schemas check exactly what a real `pulumi up` installs.
Bump a pin together with that reference data, never alone.
"""
import re


def version_tuple(version: str) -> tuple[int, ...]:
    """(2, 60, 0) for "2.60.0" (also "v1.7.0", "2.60.0-rc1"); unparsable parts count as 0."""
    return tuple(int(part) if part.isdigit() else 0 for part in re.split(r"[.+-]", version.lstrip("v"))[:3])


# KubeRay v1.7.0: the release whose CRDs and operator chart the tests validate
# against. One version for the CRDs and the operator: an operator newer than
# its CRDs writes fields the API server drops.
KUBERAY_VERSION = "1.7.0"
KUBERAY_HELM_REPOSITORY = "https://ray-project.github.io/kuberay-helm/"
KUBERAY_OPERATOR_CHART = "kuberay-operator"
# The CRDs come from the release tag itself, not from a copy in this repository.
KUBERAY_CRD_URL = (
    "https://raw.githubusercontent.com/ray-project/kuberay/v{version}"
    "/ray-operator/config/crd/bases/ray.io_{plural}.yaml"
)
KUBERAY_CRD_PLURALS = ("rayclusters", "rayjobs", "rayservices", "raycronjobs")
# RayCronJob's CRD exists from KubeRay 1.6.0: an older release has no such file to fetch.
RAYCRONJOB_CRD_SINCE = (1, 6, 0)


def kuberay_crd_plurals(version: str = KUBERAY_VERSION) -> tuple[str, ...]:
    """The CRDs a KubeRay release ships (and raykube installs): RayCronJob's from 1.6.0."""
    if version_tuple(version) < RAYCRONJOB_CRD_SINCE:
        return tuple(plural for plural in KUBERAY_CRD_PLURALS if plural != "raycronjobs")
    return KUBERAY_CRD_PLURALS
# The operator image the chart runs (chart 1.7.0's values.yaml).
KUBERAY_OPERATOR_IMAGE = "quay.io/kuberay/operator"

# Flannel v0.28.9: latest release; its chart takes podCidr and the backend.
FLANNEL_VERSION = "v0.28.9"
FLANNEL_HELM_REPOSITORY = "https://flannel-io.github.io/flannel/"
FLANNEL_CHART = "flannel"
# The chart's image repositories (v0.28.9 values.yaml): flannel, its CNI
# plugin, and the kube-network-policies sidecar it runs with netpol.enabled.
FLANNEL_IMAGE = "ghcr.io/flannel-io/flannel"
FLANNEL_CNI_IMAGE = "ghcr.io/flannel-io/flannel-cni-plugin"
FLANNEL_NETPOL_IMAGE = "registry.k8s.io/networking/kube-network-policies"

# metrics-server chart 3.13.1 (app 0.8.1): latest chart release; v0.9.0 of the
# app is not yet shipped by a chart release.
METRICS_SERVER_CHART_VERSION = "3.13.1"
METRICS_SERVER_HELM_REPOSITORY = "https://kubernetes-sigs.github.io/metrics-server/"
METRICS_SERVER_CHART = "metrics-server"
METRICS_SERVER_IMAGE = "registry.k8s.io/metrics-server/metrics-server"
# The chart's optional addon-resizer sidecar (addonResizer.enabled).
METRICS_SERVER_ADDON_RESIZER_IMAGE = "registry.k8s.io/autoscaling/addon-resizer"

# kube-network-policies v1.1.1 (kubernetes-sigs): the reference NetworkPolicy
# implementation, a DaemonSet beside any CNI, for the local target whose
# Flannel enforces none. It publishes no chart repository: its release tag's
# install.yaml is the published artifact (that release's manifest runs image
# v1.1.0, as upstream shipped it). It needs containerd with NRI (containerd
# 2.x enables it by default).
KUBE_NETWORK_POLICIES_VERSION = "v1.1.1"
KUBE_NETWORK_POLICIES_URL = "https://raw.githubusercontent.com/kubernetes-sigs/kube-network-policies/{version}/install.yaml"

# Ray images follow the installed `ray` package (requirements.txt pins it), so
# the client that submits jobs and the cluster that runs them always match.
RAY_IMAGE_REPOSITORY = "rayproject/ray"
# The Python of the Ray image (tag suffix -py311): a pin, never the Python that
# runs `pulumi up`. A teammate on another Python would otherwise change every
# RayCluster's image, and with upgradeStrategy Recreate KubeRay would delete
# every pod and end every running job. 3.11: the Python of this project's
# tested machines and of the examples' pinned packages (shap 0.51 needs < 3.12
# for the wheels the tests use). Ray Client (ray://) needs the same minor on
# both sides; jobs submitted through the Jobs API run on the cluster's Python.
RAY_IMAGE_PYTHON_VERSION = "3.11"


def ray_image_python_tag(python_version: str) -> str:
    """`py311` for "3.11": the suffix of rayproject/ray image tags."""
    return "py" + python_version.replace(".", "")

# kube-prometheus-stack 88.5.3 (Prometheus operator v0.93.1, Grafana chart
# 12.11.1): the release whose values.yaml and operator CRDs (v0.93.0 schemas)
# the tests check raykube's values and monitors against.
KUBE_PROMETHEUS_STACK_VERSION = "88.5.3"
KUBE_PROMETHEUS_STACK_HELM_REPOSITORY = "https://prometheus-community.github.io/helm-charts"
KUBE_PROMETHEUS_STACK_CHART = "kube-prometheus-stack"
