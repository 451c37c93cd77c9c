"""Air-gapped sources (sources: in the stack file): charts, CRDs, manifests and images from local
copies or mirrors, under Pulumi's mocks and the offline render.

The local charts and CRDs are the upstream chart folders in ../shared/upstream/charts/, read where
they lie (tests/helpers/upstream.py): never copied into the project.
"""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tarfile

import pytest
import yaml

from components.args import ComponentArgsError
from components.sources import mirrored_image, rewrite_pod_images
from raykube.offline import SECRET, run_offline
from raykube.settings import SettingsError, parse_settings
from raykube.stack_file import stack_config_values
from tests.helpers.program import ROOT, run_program, stack_file_config
from tests.helpers.upstream import upstream_path

CHART = "kubernetes:helm.sh/v4:Chart"
CRDS = "kubernetes:yaml/v2:ConfigGroup"
MANIFEST = "kubernetes:yaml/v2:ConfigFile"
REGISTRY = "registry.example.com/mirror"
SOURCE = "stacks/Pulumi.airgap.yaml"
CRD_FILES = ["ray.io_rayclusters.yaml", "ray.io_rayjobs.yaml", "ray.io_rayservices.yaml", "ray.io_raycronjobs.yaml"]
# A password no render, output or log may ever hold.
PASSWORD = "hunter2-mirror-password-7f3a"

INSTALL_YAML = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: kube-network-policies, namespace: kube-system}
spec:
  selector: {matchLabels: {app: kube-network-policies}}
  template:
    metadata: {labels: {app: kube-network-policies}}
    spec:
      initContainers:
      - {name: init, image: "busybox:1.36"}
      containers:
      - {name: kube-network-policies, image: "registry.k8s.io/networking/kube-network-policies:v1.1.0"}
"""


def relative(path) -> str:
    """A path as a stack file would write it: relative to the project."""
    return os.path.relpath(path, ROOT)


@pytest.fixture(scope="module")
def upstream_charts():
    return {
        "kuberayOperator": upstream_path("charts/kuberay-operator"),
        "metricsServer": upstream_path("charts/metrics-server"),
        "flannel": upstream_path("charts/kube-flannel"),
        "crds": upstream_path("charts/kuberay-operator/crds"),
    }


@pytest.fixture(scope="module")
def install_yaml(tmp_path_factory):
    path = tmp_path_factory.mktemp("manifests") / "install.yaml"
    path.write_text(INSTALL_YAML)
    return path


def air_gapped(upstream_charts, install_yaml) -> dict:
    """The local stack file, every source local and every image from the mirror (observability off: its chart is no upstream folder)."""
    config = copy.deepcopy(stack_file_config("local"))
    config["raykube:observability"] = {"mode": "none"}
    config["raykube:awsAccess"]["issuerBucket"] = "raykube-airgap-issuer"  # the in-cluster renewer: its image too
    config["raykube:networkPolicies"] = {"enforcer": "kube-network-policies"}
    config["raykube:sources"] = {
        "imageRegistry": REGISTRY,
        "charts": {key: {"path": relative(upstream_charts[key])} for key in ("kuberayOperator", "metricsServer", "flannel")},
        "crds": {"path": relative(upstream_charts["crds"])},
        "manifests": {"kubeNetworkPolicies": {"path": str(install_yaml)}},
    }
    return config


@pytest.fixture(scope="module")
def air_gapped_run(upstream_charts, install_yaml):
    return run_program(air_gapped(upstream_charts, install_yaml), "local")


def pod_images(inputs) -> list[str]:
    """Every container image of an object's inputs (any depth: pod templates, RayCluster groups, CronJobs)."""
    found = []
    if isinstance(inputs, dict):
        for key, value in inputs.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                found += [container.get("image") for container in value if isinstance(container, dict)]
            else:
                found += pod_images(value)
    elif isinstance(inputs, list):
        for item in inputs:
            found += pod_images(item)
    return found


def test_every_chart_is_the_local_folder_and_no_repository(air_gapped_run, upstream_charts):
    charts = {chart.inputs["chart"]: chart.inputs for chart in air_gapped_run.of_type(CHART)}
    expected = {str(upstream_charts[key]) for key in ("kuberayOperator", "metricsServer", "flannel")}
    assert set(charts) == expected
    for chart in charts.values():
        assert os.path.isabs(chart["chart"]) and os.path.isfile(os.path.join(chart["chart"], "Chart.yaml"))
        assert "repositoryOpts" not in chart
    assert {chart["version"] for chart in charts.values()} == {"1.7.0", "3.13.1", "v0.28.9"}


def test_the_crds_come_from_the_local_files(air_gapped_run, upstream_charts):
    (crds,) = air_gapped_run.of_type(CRDS)
    assert crds.inputs["files"] == [str(upstream_charts["crds"] / name) for name in CRD_FILES]
    assert all(os.path.isfile(path) for path in crds.inputs["files"])
    assert crds.retain_on_delete and crds.transforms  # still kept on destroy


def test_the_manifest_is_the_local_file_and_its_images_are_mirrored(air_gapped_run, install_yaml):
    (manifest,) = air_gapped_run.of_type(MANIFEST)
    assert manifest.inputs["file"] == str(install_yaml)
    assert manifest.transforms == 1  # rewrites the images of yaml.v2's children as they are registered
    daemonset = yaml.safe_load(INSTALL_YAML)
    rewritten = rewrite_pod_images(daemonset, REGISTRY)
    assert pod_images(rewritten) == [f"{REGISTRY}/library/busybox:1.36", f"{REGISTRY}/networking/kube-network-policies:v1.1.0"]
    assert rewrite_pod_images({"kind": "ServiceAccount", "metadata": {"name": "x"}}, REGISTRY) is None


def test_every_image_has_the_registry_prefix(air_gapped_run):
    images = [image for resource in air_gapped_run.resources if resource.is_kubernetes_object for image in pod_images(resource.revealed_inputs)]
    kinds = {resource.inputs["kind"] for resource in air_gapped_run.resources if resource.is_kubernetes_object and pod_images(resource.revealed_inputs)}
    assert {"RayCluster", "Deployment", "CronJob"} <= kinds  # Ray head and groups, the HPA pool, the credentials renewer
    assert images and all(image.startswith(f"{REGISTRY}/rayproject/ray:") for image in images), images
    values = {chart.inputs["release"] if "release" in chart.inputs else chart.inputs["name"]: chart.inputs["values"] for chart in air_gapped_run.of_type(CHART)}
    assert values["kuberay-operator"]["image"]["repository"] == f"{REGISTRY}/kuberay/operator"
    assert values["metrics-server"]["image"]["repository"] == f"{REGISTRY}/metrics-server/metrics-server"
    assert values["metrics-server"]["addonResizer"]["image"]["repository"] == f"{REGISTRY}/autoscaling/addon-resizer"
    flannel = values["flannel"]
    assert flannel["flannel"]["image"]["repository"] == f"{REGISTRY}/flannel-io/flannel"
    assert flannel["flannel"]["flannel_cni"]["image"]["repository"] == f"{REGISTRY}/flannel-io/flannel-cni-plugin"
    assert flannel["netpol"]["image"]["repository"] == f"{REGISTRY}/networking/kube-network-policies"


def test_the_chart_values_for_the_mirror_exist_upstream(air_gapped_run):
    from tests.helpers.upstream import FLANNEL_VALUES, KUBERAY_OPERATOR_VALUES, METRICS_SERVER_VALUES, unknown_chart_values

    reference = {"kuberay-operator": KUBERAY_OPERATOR_VALUES, "metrics-server": METRICS_SERVER_VALUES, "flannel": FLANNEL_VALUES}
    for chart in air_gapped_run.of_type(CHART):
        assert unknown_chart_values(chart.inputs["values"], reference[chart.inputs["name"]]) == []


@pytest.mark.parametrize("image, expected", [
    ("rayproject/ray:2.60.0-py311", f"{REGISTRY}/rayproject/ray:2.60.0-py311"),
    ("docker.io/rayproject/ray:2.60.0-py311", f"{REGISTRY}/rayproject/ray:2.60.0-py311"),
    ("busybox:1.36", f"{REGISTRY}/library/busybox:1.36"),
    ("docker.io/busybox", f"{REGISTRY}/library/busybox"),
    ("quay.io/kuberay/operator:v1.7.0", f"{REGISTRY}/kuberay/operator:v1.7.0"),
    ("ghcr.io/flannel-io/flannel:v0.28.9", f"{REGISTRY}/flannel-io/flannel:v0.28.9"),
    ("registry.k8s.io/metrics-server/metrics-server:v0.8.1", f"{REGISTRY}/metrics-server/metrics-server:v0.8.1"),
    ("localhost:5000/team/ray@sha256:" + "a" * 64, f"{REGISTRY}/team/ray@sha256:" + "a" * 64),
])
def test_a_mirrored_image_keeps_its_path_below_the_registry(image, expected):
    assert mirrored_image(image, REGISTRY) == expected
    assert mirrored_image(image, REGISTRY + "/") == expected
    assert mirrored_image(image, None) == image


def test_images_the_stack_names_itself_win_over_the_prefix(upstream_charts, install_yaml):
    from raykube.settings import installed_ray_version

    config = air_gapped(upstream_charts, install_yaml)
    own = f"registry.internal.example/ray/ray:{installed_ray_version()}-py311"
    config["raykube:rayClusters"][0]["image"] = own
    config["raykube:operator"] = {"image": {"repository": "registry.internal.example/kuberay/operator"}}
    run = run_program(config, "local")
    images = [image for resource in run.resources if resource.is_kubernetes_object for image in pod_images(resource.revealed_inputs)]
    assert images and set(images) == {own}
    (operator,) = [chart for chart in run.of_type(CHART) if chart.inputs["name"] == "kuberay-operator"]
    assert operator.inputs["values"]["image"]["repository"] == "registry.internal.example/kuberay/operator"


def test_a_packaged_chart_and_an_oci_reference(upstream_charts, tmp_path):
    package = tmp_path / "metrics-server-3.13.1.tgz"
    with tarfile.open(package, "w:gz") as archive:
        archive.add(upstream_charts["metricsServer"], arcname="metrics-server")
    config = copy.deepcopy(stack_file_config("local"))
    config["raykube:sources"] = {"charts": {
        "metricsServer": {"tgz": str(package)},
        "kuberayOperator": {"oci": "oci://registry.example.com:5000/charts/kuberay-operator", "allowHttp": True},
    }}
    charts = {chart.inputs["name"]: chart.inputs for chart in run_program(config, "local").of_type(CHART)}
    assert charts["metrics-server"]["chart"] == str(package) and "repositoryOpts" not in charts["metrics-server"]
    operator = charts["kuberay-operator"]
    assert operator["chart"] == "oci://registry.example.com:5000/charts/kuberay-operator" and operator["version"] == "1.7.0"
    assert operator["plainHttp"] is True and "repositoryOpts" not in operator
    # The other charts still come from upstream, as before.
    assert charts["flannel"]["repositoryOpts"] == {"repo": "https://flannel-io.github.io/flannel/"}


def mirror_config(password) -> dict:
    config = copy.deepcopy(stack_file_config("local"))
    config["raykube:sources"] = {"charts": {"kubePrometheusStack": {
        "repository": "https://charts.example.com/prometheus-community",
        "caFile": relative(upstream_path("charts/SOURCE.md")),  # any file stands in for a CA bundle
        "username": "mirror-user",
        "password": password,
    }}}
    return config


def test_a_mirror_password_is_a_secret_everywhere():
    """As `pulumi up` hands it over: decrypted, the key marked secret. It reaches the Chart as a secret and
    appears in no input, output, render or warning."""
    from raykube.cli.render import _content
    from raykube.composition import build
    from raykube.settings import load_settings

    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    config = stack_config_values(mirror_config(PASSWORD), project.get("config", {}), "raykube")
    run = run_offline(lambda: build(load_settings()).as_tuple(), config, "local", secret_keys=["raykube:sources"])
    (chart,) = [chart for chart in run.of_type(CHART) if chart.inputs["chart"] == "kube-prometheus-stack"]
    access = chart.inputs["repositoryOpts"]
    assert access["repo"] == "https://charts.example.com/prometheus-community"
    assert access["password"] == SECRET and access["username"] == SECRET
    assert {"repositoryOpts.password", "repositoryOpts.username"} <= set(chart.secret_paths)
    assert chart.revealed_inputs["repositoryOpts"]["password"] == PASSWORD  # what the provider gets
    assert access["caFile"]["path"] == str(upstream_path("charts/SOURCE.md"))
    shown = json.dumps([resource.inputs for resource in run.resources]) + json.dumps(run.outputs) + json.dumps(run.files) + "\n".join(run.warnings)
    shown += "".join(yaml.safe_dump(_content(resource)) for resource in run.resources)
    assert PASSWORD not in shown
    rendered = _content(chart)
    assert rendered["repositoryAccess"]["password"] == SECRET and rendered["repository"] == access["repo"]


def test_a_plaintext_password_is_refused_naming_the_key():
    raw = {key.removeprefix("raykube:"): value for key, value in mirror_config(PASSWORD).items()}
    with pytest.raises(SettingsError) as caught:
        parse_settings(raw, SOURCE)
    assert caught.value.keys == ["raykube:sources.charts.kubePrometheusStack.password"]
    assert PASSWORD not in str(caught.value)
    assert parse_settings(raw, SOURCE, secret_keys={"sources"}).sources.charts.kube_prometheus_stack.password.value == PASSWORD
    secure = {key.removeprefix("raykube:"): value for key, value in mirror_config({"secure": "v1:AAAA"}).items()}
    assert parse_settings(secure, SOURCE).sources.charts.kube_prometheus_stack.password.value is None


def test_the_render_of_a_mirror_stack_shows_secret(tmp_path):
    """The offline render reads the stack file's `secure:` value without decrypting it: "[secret]", never the ciphertext."""
    ciphertext = "v1:c2VjcmV0LWNpcGhlcnRleHQtbmV2ZXItc2hvd24="
    stack = tmp_path / "Pulumi.airgap.yaml"
    stack.write_text(yaml.safe_dump({"config": mirror_config({"secure": ciphertext})}))
    done = subprocess.run([sys.executable, "-m", "raykube.render", "--config", str(stack), "--out", str(tmp_path / "out")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    files = {path.relative_to(tmp_path / "out").as_posix(): path.read_text() for path in (tmp_path / "out").rglob("*") if path.is_file()}
    assert ciphertext not in "".join(files.values()) + done.stdout + done.stderr
    chart = yaml.safe_load(files["helm/kube-prometheus-stack-chart.yaml"])
    assert chart["repositoryAccess"]["password"] == SECRET and chart["repositoryAccess"]["username"] == SECRET
    assert chart["repository"] == "https://charts.example.com/prometheus-community"


def chart_path(name):
    return relative(upstream_path(f"charts/{name}"))


def charts(**sources):
    return {"sources": {"charts": sources}}


# (what is wrong, stack config without the "raykube:" prefix, the key the one error must name)
WRONG = [
    ("a chart folder that does not exist", lambda: charts(kuberayOperator={"path": "no/such/chart"}), "sources.charts.kuberayOperator.path"),
    ("another chart's folder", lambda: charts(kuberayOperator={"path": chart_path("metrics-server")}), "sources.charts.kuberayOperator.path"),
    ("a folder given as tgz", lambda: charts(metricsServer={"tgz": chart_path("metrics-server")}), "sources.charts.metricsServer.tgz"),
    ("a tgz that is no packaged chart", lambda: charts(metricsServer={"tgz": chart_path("metrics-server") + "/values.yaml"}), "sources.charts.metricsServer.tgz"),
    ("the chart of another KubeRay release", lambda: {**charts(kuberayOperator={"path": chart_path("kuberay-operator")}), "operator": {"version": "1.6.0"}},
     "sources.charts.kuberayOperator.path"),
    ("an oci reference that does not parse", lambda: charts(flannel={"oci": "oci:/registry.example.com/flannel"}), "sources.charts.flannel.oci"),
    ("an oci reference with a tag", lambda: charts(flannel={"oci": "oci://registry.example.com/charts/flannel:v0.28.9"}), "sources.charts.flannel.oci"),
    ("an oci reference to another chart", lambda: charts(flannel={"oci": "oci://registry.example.com/charts/kube-flannel"}), "sources.charts.flannel.oci"),
    ("an http repository without allowHttp", lambda: charts(flannel={"repository": "http://charts.example.com/flannel"}), "sources.charts.flannel.repository"),
    ("a repository URL with credentials", lambda: charts(flannel={"repository": "https://u:p@charts.example.com/"}), "sources.charts.flannel.repository"),
    ("two sources for one chart", lambda: charts(flannel={"path": chart_path("kube-flannel"), "oci": "oci://r.example.com/c/flannel"}), "sources.charts.flannel.oci"),
    ("credentials for a local chart", lambda: charts(flannel={"path": chart_path("kube-flannel"), "username": "u", "password": {"secure": "v1:x"}}),
     "sources.charts.flannel.username"),
    ("a user without a password", lambda: charts(flannel={"repository": "https://charts.example.com/", "username": "u"}), "sources.charts.flannel.password"),
    ("a CA file that does not exist", lambda: charts(flannel={"repository": "https://charts.example.com/", "caFile": "no/ca.pem"}), "sources.charts.flannel.caFile"),
    ("a client certificate without its key", lambda: charts(flannel={"repository": "https://charts.example.com/", "certFile": chart_path("SOURCE.md")}),
     "sources.charts.flannel.keyFile"),
    ("a misspelled chart", lambda: charts(kuberay={"path": chart_path("kuberay-operator")}), "sources.charts.kuberay"),
    ("a chart this target does not install", lambda: {**charts(flannel={"path": chart_path("kube-flannel")}), "target": "eks"}, "sources.charts.flannel"),
    ("kube-prometheus-stack without mode install", lambda: charts(kubePrometheusStack={"repository": "https://charts.example.com/"}),
     "sources.charts.kubePrometheusStack"),
    ("a CRD folder without the CRDs", lambda: {"sources": {"crds": {"path": chart_path("metrics-server")}}}, "sources.crds.path"),
    ("a CRD folder and a mirror", lambda: {"sources": {"crds": {"path": chart_path("kuberay-operator/crds"), "baseUrl": "https://m.example.com/crds"}}},
     "sources.crds"),
    ("an http CRD mirror", lambda: {"sources": {"crds": {"baseUrl": "http://m.example.com/crds"}}}, "sources.crds.baseUrl"),
    ("CRDs from a mirror on a stack that installs none", lambda: {"sources": {"crds": {"baseUrl": "https://m.example.com/crds"}}, "operator": {"installCrds": False}},
     "sources.crds"),
    ("a manifest with no enforcer to apply it", lambda: {"sources": {"manifests": {"kubeNetworkPolicies": {"url": "https://m.example.com/install.yaml"}}}},
     "sources.manifests.kubeNetworkPolicies"),
    ("a manifest file that does not exist", lambda: {"networkPolicies": {"enforcer": "kube-network-policies"},
                                                     "sources": {"manifests": {"kubeNetworkPolicies": {"path": "no/install.yaml"}}}},
     "sources.manifests.kubeNetworkPolicies.path"),
    ("a registry prefix without a registry host", lambda: {"sources": {"imageRegistry": "mirror"}}, "sources.imageRegistry"),
    ("a registry prefix with a scheme", lambda: {"sources": {"imageRegistry": "https://registry.example.com/mirror"}}, "sources.imageRegistry"),
]


@pytest.mark.parametrize("what, settings, key", WRONG, ids=[case[0] for case in WRONG])
def test_wrong_sources_are_one_line_naming_the_key(what, settings, key):
    with pytest.raises(SettingsError) as caught:
        parse_settings(settings(), SOURCE)
    assert caught.value.keys == [f"raykube:{key}"], str(caught.value)
    message = str(caught.value)
    assert message.startswith(f"invalid settings in {SOURCE}:") and len(message.splitlines()) == 1


def test_right_sources_are_accepted():
    settings = parse_settings({
        "networkPolicies": {"enforcer": "kube-network-policies"},
        "sources": {
            "imageRegistry": "registry.example.com:5000/mirror",
            "charts": {"flannel": {"repository": "http://charts.internal:8080/flannel", "allowHttp": True}},
            "crds": {"baseUrl": "https://mirror.example.com/kuberay/v1.7.0/crds"},
            "manifests": {"kubeNetworkPolicies": {"url": "https://mirror.example.com/knp/v1.1.1/install.yaml"}},
        },
    }, SOURCE)
    assert settings.sources.charts.flannel.allow_http


def test_the_components_check_their_sources_before_anything_is_registered(tmp_path):
    """Reuse from another Pulumi project gets the same checks (ComponentArgsError naming the field)."""
    from components.kuberay_crds import crd_sources
    from components.kube_network_policies import manifest_source
    from components.pinned_chart import check_chart_source, check_image_registry

    with pytest.raises(ComponentArgsError, match=r"source\.path: .* is the chart 'metrics-server'"):
        check_chart_source("KubeRayOperator x", {"path": str(upstream_path("charts/metrics-server"))}, "kuberay-operator", "1.7.0")
    with pytest.raises(ComponentArgsError, match=r"image_registry"):
        check_image_registry("Flannel x", "mirror")
    with pytest.raises(ComponentArgsError, match=r"path: .* lacks ray.io_rayclusters.yaml"):
        crd_sources({"path": str(tmp_path)})
    assert crd_sources({"base_url": "https://m.example.com/crds/"}) == [f"https://m.example.com/crds/{name}" for name in CRD_FILES]
    with pytest.raises(ComponentArgsError, match=r"url: .* plain http"):
        manifest_source({"url": "http://m.example.com/install.yaml"})


def test_the_render_of_the_air_gapped_stack_file(upstream_charts, install_yaml, tmp_path, capsys):
    """The variant as a stack file a user would write, through `raykube render`: local charts without a repository,
    the local CRD files, every image from the mirror, and every object still passing Kubernetes' schema."""
    from raykube.cli.render import render
    from raykube.stack_file import read_stack_file

    stack = tmp_path / "Pulumi.airgap.yaml"
    stack.write_text(yaml.safe_dump({"config": air_gapped(upstream_charts, install_yaml)}))
    assert render(read_stack_file(None, stack), tmp_path / "out") == 0, capsys.readouterr().err
    out = tmp_path / "out"
    charts = [yaml.safe_load(path.read_text()) for path in sorted((out / "helm").glob("*.yaml"))]
    assert sorted(chart["chart"] for chart in charts) == sorted(str(upstream_charts[key]) for key in ("flannel", "kuberayOperator", "metricsServer"))
    assert all(chart["repository"] is None and "repositoryAccess" not in chart for chart in charts)
    crds = yaml.safe_load((out / "manifests" / "kuberay-crds.yaml").read_text())
    assert crds["files"] == [str(upstream_charts["crds"] / name) for name in CRD_FILES]
    images = [image for path in (out / "kubernetes").rglob("*.yaml") for image in pod_images(yaml.safe_load(path.read_text()))]
    assert images and all(image.startswith(f"{REGISTRY}/") for image in images)
    text = "".join(path.read_text() for path in out.rglob("*.yaml"))
    assert "raw.githubusercontent.com" not in text and "github.io" not in text
