"""rayServices[]: Ray Serve applications as KubeRay RayServices. A Serve config Ray would refuse, or
a RayService KubeRay would refuse, is one line naming the key and the stack file; the rendered
RayService passes the upstream CRD's schema and carries the stack's Serve config as KubeRay's
serveConfigV2 YAML; its names cannot meet another object's; port 8000 is open where Serve is
reached and nowhere else; and the KubeRay CRDs installed (and kept) include RayCronJob's."""
from __future__ import annotations

import ast
import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from raykube.settings import SettingsError, parse_settings
from tests.helpers.network_policy_model import Cluster, Endpoint
from tests.helpers.program import ROOT, run_program, stack_file_config
from tests.helpers.ray_flows import OPERATOR_LABELS, OUTSIDER, blocked_flows, pods_of
from tests.helpers.upstream import RAYCRONJOB_CRD, load_upstream, upstream_path, validate_rayservice

SOURCE = "stacks/Pulumi.test.yaml"
RAYSERVICE = "kubernetes:ray.io/v1:RayService"
EKS = {key.removeprefix("raykube:"): value for key, value in stack_file_config("eks").items()}
SERVE_PORT = 8000


def eks_with(change=None, **services_keys) -> dict:
    """The eks stack's settings with its RayService changed by `change(service)` and/or keys set on it."""
    config = copy.deepcopy(EKS)
    (service,) = config["rayServices"]
    service.update(services_keys)
    if change:
        change(service)
    return config


def application(service: dict) -> dict:
    return service["serveConfig"]["applications"][0]


def deployment(service: dict) -> dict:
    return application(service)["deployments"][0]


# --- settings Ray or KubeRay would refuse: one error naming the key -----------------------------

# (case, change to the eks stack's service, the key named, words the message holds)
REFUSED = [
    ("import path without attribute", lambda s: application(s).update(importPath="serve_app"), "serveConfig.applications[0].importPath", "module:attribute"),
    ("import path with two colons", lambda s: application(s).update(importPath="a:b:c"), "serveConfig.applications[0].importPath", "one colon"),
    ("route prefix without slash", lambda s: application(s).update(routePrefix="wine"), "serveConfig.applications[0].routePrefix", "start with '/'"),
    ("two applications, one route", lambda s: s["serveConfig"]["applications"].append({"name": "other", "importPath": "other:app", "routePrefix": "/wine"}),
     "serveConfig.applications[1].routePrefix", "route prefix of its own"),
    ("two applications, one name", lambda s: s["serveConfig"]["applications"].append({"name": "wine", "importPath": "other:app", "routePrefix": "/other"}),
     "serveConfig.applications[1].name", "duplicate application"),
    ("no application", lambda s: s["serveConfig"].update(applications=[]), "serveConfig.applications", "at least one"),
    ("replicas and autoscaling", lambda s: deployment(s).update(numReplicas=2), "serveConfig.applications[0].deployments[0].numReplicas", "not both"),
    ("autoscaling max below min", lambda s: deployment(s).update(autoscaling={"minReplicas": 3, "maxReplicas": 2}),
     "serveConfig.applications[0].deployments[0].autoscaling.maxReplicas", ">= minReplicas"),
    ("initial replicas outside the range", lambda s: deployment(s).update(autoscaling={"minReplicas": 1, "maxReplicas": 2, "initialReplicas": 3}),
     "serveConfig.applications[0].deployments[0].autoscaling.initialReplicas", "between"),
    ("zero target ongoing requests", lambda s: deployment(s)["autoscaling"].update(targetOngoingRequests=0),
     "serveConfig.applications[0].deployments[0].autoscaling.targetOngoingRequests", "greater than 0"),
    ("negative CPUs per replica", lambda s: deployment(s).update(rayActorOptions={"numCpus": -1}),
     "serveConfig.applications[0].deployments[0].rayActorOptions.numCpus", "greater than or equal to 0"),
    ("a key Ray's deployment has not", lambda s: deployment(s).update(extra={"num_replica": 2}),
     "serveConfig.applications[0].deployments[0].extra.num_replica", "has no key"),
    ("a typed key in extra", lambda s: deployment(s).update(extra={"autoscaling_config": {"max_replicas": 9}}),
     "serveConfig.applications[0].deployments[0].extra.autoscaling_config", "use autoscalingConfig"),
    ("a camelCase key in extra", lambda s: application(s).update(extra={"loggingConfig": {}}),
     "serveConfig.applications[0].extra.loggingConfig", "snake_case"),
    ("a port per application", lambda s: application(s).update(extra={"port": 9000}), "serveConfig.applications[0].extra.port", "http_options"),
    ("another HTTP port", lambda s: s["serveConfig"].update(extra={"http_options": {"port": 9000}}), "serveConfig.extra.http_options.port", "8000"),
    ("an unknown proxy location", lambda s: s["serveConfig"].update(extra={"proxy_location": "Everywhere"}), "serveConfig.extra.proxy_location", "EveryNode"),
    ("a local working_dir", lambda s: s.pop("code") and application(s)["runtimeEnv"].update(working_dir="./examples/wine_shap"),
     "serveConfig.applications[0].runtimeEnv.working_dir", "remote URI"),
    ("code and a working_dir", lambda s: application(s)["runtimeEnv"].update(working_dir="s3://b/c.zip"),
     "serveConfig.applications[0].runtimeEnv.working_dir", "remove one"),
    ("a code folder that does not exist", lambda s: s.update(code="no/such/folder"), "code", "no/such/folder"),
    ("a name too long for KubeRay", lambda s: s.update(name="w" * 48), "name", "at most 47"),
    ("a name that is no DNS-1035 label", lambda s: s.update(name="Wine"), "name", "DNS-1035"),
    ("a namespace without an operator", lambda s: s.update(namespace="serving"), "namespace", "has no KubeRay operator"),
    ("an HPA group", lambda s: s["workerGroups"][0].update(autoscaling="hpa", minReplicas=1), "workerGroups[0].autoscaling", "not an HPA"),
    ("two groups of one name", lambda s: s["workerGroups"].append({"name": "cpu"}), "workerGroups[1].name", "duplicate group"),
    ("nowhere for replicas to run", lambda s: s.update(workerGroups=[]), "workerGroups", "no task can ever run"),
    ("an unknown upgrade strategy", lambda s: s.update(upgradeStrategy="Recreate"), "upgradeStrategy", "NewCluster"),
    ("incremental upgrade without a gateway", lambda s: s.update(upgradeStrategy="NewClusterWithIncrementalUpgrade"), "clusterUpgradeOptions", "gatewayClassName"),
    ("upgrade options without incremental upgrade", lambda s: s.update(clusterUpgradeOptions={"gatewayClassName": "istio"}), "clusterUpgradeOptions",
     "only upgradeStrategy NewClusterWithIncrementalUpgrade"),
    ("a step above the surge", lambda s: s.update(upgradeStrategy="NewClusterWithIncrementalUpgrade",
                                                  clusterUpgradeOptions={"gatewayClassName": "istio", "stepSizePercent": 60, "maxSurgePercent": 50}),
     "clusterUpgradeOptions.stepSizePercent", "maxSurgePercent"),
    ("incremental upgrade without Ray's autoscaler", lambda s: s.update(
        upgradeStrategy="NewClusterWithIncrementalUpgrade", clusterUpgradeOptions={"gatewayClassName": "istio"},
        workerGroups=[{"name": "cpu", "autoscaling": "fixed", "replicas": 2}]), "workerGroups", "Ray's autoscaler"),
    ("the unused service threshold", lambda s: s.update(serviceUnhealthySecondThreshold=60), "serviceUnhealthySecondThreshold", "ignored it since 1.1"),
    ("the unused deployment threshold", lambda s: s.update(deploymentUnhealthySecondThreshold=60), "deploymentUnhealthySecondThreshold", "ignored it since 1.1"),
    ("a negative deletion delay", lambda s: s.update(rayClusterDeletionDelaySeconds=-1), "rayClusterDeletionDelaySeconds", "greater than or equal to 0"),
]


@pytest.mark.parametrize("change, key, words", [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED])
def test_a_service_ray_or_kuberay_would_refuse_is_one_error_naming_its_key(change, key, words):
    with pytest.raises(SettingsError) as caught:
        parse_settings(eks_with(change), SOURCE)
    error = caught.value
    assert error.keys == [f"raykube:rayServices[0].{key}"], str(error)
    assert words in str(error) and SOURCE in str(error) and "\n" not in str(error)


def test_incremental_upgrades_need_the_operators_gate():
    """KubeRay 1.7 runs with RayServiceIncrementalUpgrade on; turned off (or an operator whose release
    has it off), KubeRay would take the strategy for no upgrade at all: refused, naming the gate."""
    incremental = {"upgradeStrategy": "NewClusterWithIncrementalUpgrade", "clusterUpgradeOptions": {"gatewayClassName": "istio"}}
    settings = parse_settings(eks_with(**incremental), SOURCE)
    assert settings.ray_services[0].upgrade_strategy == "NewClusterWithIncrementalUpgrade"
    for operator in ({"version": "1.7.0", "featureGates": {"RayServiceIncrementalUpgrade": False}}, {"version": "1.6.1"}):
        config = {**eks_with(**incremental), "operator": operator}
        with pytest.raises(SettingsError) as caught:
            parse_settings(config, SOURCE)
        assert caught.value.keys == ["raykube:rayServices[0].upgradeStrategy"]
        assert "RayServiceIncrementalUpgrade" in str(caught.value)
    on = {**eks_with(**incremental), "operator": {"version": "1.6.1", "featureGates": {"RayServiceIncrementalUpgrade": True}}}
    assert parse_settings(on, SOURCE).ray_services[0].cluster_upgrade_options.gateway_class_name == "istio"


def test_code_needs_aws_access():
    config = eks_with()
    config["awsAccess"] = {"mode": "none"}
    config.pop("rayJobs")  # whose code needs it too
    config["observability"] = {"mode": "none"}
    with pytest.raises(SettingsError) as caught:
        parse_settings(config, SOURCE)
    assert caught.value.keys == ["raykube:rayServices[0].code"] and "awsAccess" in str(caught.value)


CLI_CASES = [REFUSED[0], REFUSED[14], REFUSED[32]]


@pytest.mark.parametrize("change, key, words", [case[1:] for case in CLI_CASES], ids=[case[0] for case in CLI_CASES])
def test_through_the_command_a_refused_service_is_one_line_and_nothing_written(tmp_path, change, key, words):
    config = {f"raykube:{name}": value for name, value in eks_with(change).items()}
    stack = tmp_path / "Pulumi.mine.yaml"
    stack.write_text(yaml.safe_dump({"config": config}))
    out = tmp_path / "out"
    done = subprocess.run([str(Path(sys.executable).with_name("raykube")), "render", "--config", str(stack), "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert f"raykube:rayServices[0].{key}" in lines[0] and str(stack) in lines[0] and words in lines[0]
    assert not out.exists()


def _schema_fields(source: str, class_name: str) -> set[str]:
    """The fields a pydantic model class of Ray's source declares (annotated class attributes)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            return {item.target.id for item in node.body if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)}
    raise AssertionError(f"Ray has no class {class_name}")


def test_extra_takes_exactly_the_keys_of_the_installed_rays_serve_schema():
    """The key lists `extra` is checked against are Ray's own schema (the installed ray, read as source:
    ray.serve imports its HTTP stack)."""
    import ray

    from raykube.settings import ray_services

    serve = Path(ray.__file__).parent / "serve"
    schema, config = (serve / "schema.py").read_text(), (serve / "config.py").read_text()
    assert ray_services.SERVE_CONFIG_KEYS == _schema_fields(schema, "ServeDeploySchema")
    assert ray_services.APPLICATION_KEYS == _schema_fields(schema, "ServeApplicationSchema")
    assert ray_services.DEPLOYMENT_KEYS == _schema_fields(schema, "DeploymentSchema")
    assert ray_services.ACTOR_OPTION_KEYS == _schema_fields(schema, "RayActorOptionsSchema")
    assert ray_services.AUTOSCALING_KEYS == _schema_fields(config, "AutoscalingConfig")


def test_every_accepted_serve_config_is_one_rays_own_models_take_and_the_refused_ones_they_refuse():
    """Ray Serve is the judge: what the settings let through its ServeDeploySchema (and the AutoscalingConfig a
    deployment's autoscaling becomes) accepts; the Ray-level form of each refusal above, Ray refuses too."""
    from pydantic import ValidationError
    from ray.serve.config import AutoscalingConfig
    from ray.serve.schema import ServeDeploySchema

    accepted = eks_with(lambda s: (deployment(s).update(maxOngoingRequests=8, rayActorOptions={"numCpus": 1, "extra": {"accelerator_type": "A10G"}},
                                                        extra={"health_check_period_s": 5, "user_config": {"threshold": 0.5}}),
                                   s["serveConfig"].update(extra={"proxy_location": "EveryNode", "http_options": {"port": 8000}})))
    config = parse_settings(accepted, SOURCE).ray_services[0].serve_config.serve_config()
    ServeDeploySchema.model_validate(config)
    AutoscalingConfig.model_validate(config["applications"][0]["deployments"][0]["autoscaling_config"])
    refused_by_ray = [
        (ServeDeploySchema, {"applications": [{"name": "a", "import_path": "serve_app"}]}),
        (ServeDeploySchema, {"applications": [{"name": "a", "import_path": "a:b:c"}]}),
        (ServeDeploySchema, {"applications": [{"name": "a", "import_path": "a:b", "route_prefix": "/x"}, {"name": "b", "import_path": "b:c", "route_prefix": "/x"}]}),
        (ServeDeploySchema, {"applications": [{"name": "a", "import_path": "a:b"}, {"name": "a", "import_path": "b:c", "route_prefix": "/b"}]}),
        (ServeDeploySchema, {"applications": [{"name": "a", "import_path": "a:b", "deployments": [{"name": "D", "num_replicas": 2, "autoscaling_config": {"max_replicas": 2}}]}]}),
        (AutoscalingConfig, {"min_replicas": 3, "max_replicas": 2}),
        (AutoscalingConfig, {"min_replicas": 1, "max_replicas": 2, "initial_replicas": 3}),
        (AutoscalingConfig, {"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 0}),
        (ServeDeploySchema, {"applications": [{"name": "a", "import_path": "a:b", "deployments": [{"name": "D", "ray_actor_options": {"num_cpus": -1}}]}]}),
        (ServeDeploySchema, {"applications": [{"name": "a", "import_path": "a:b", "port": 9000}]}),
        (ServeDeploySchema, {"applications": [{"name": "a", "import_path": "a:b", "runtime_env": {"working_dir": "./examples/wine_shap"}}]}),
    ]
    for model, value in refused_by_ray:
        with pytest.raises(ValidationError):
            model.model_validate(value)


# Values only Ray's own models know the rules of (extra's): refused at settings time, Ray's message, the key.
RAY_JUDGED = [
    ("a rolling update above 100 %", lambda s: deployment(s).update(extra={"rolling_update_percentage": 2}),
     "serveConfig.applications[0].deployments[0].extra.rolling_update_percentage", "less than or equal to 1"),
    ("a log level Ray does not know", lambda s: application(s).update(extra={"logging_config": {"log_level": "LOUD"}}),
     "serveConfig.applications[0].extra.logging_config.log_level", "log_level must be one of"),
    ("a negative upscale delay", lambda s: deployment(s)["autoscaling"].update(extra={"upscale_delay_s": -1}),
     "serveConfig.applications[0].deployments[0].autoscaling.extra.upscale_delay_s", "greater than or equal to 0"),
    ("a target capacity above 100", lambda s: s["serveConfig"].update(extra={"target_capacity": 150}), "serveConfig.extra.target_capacity", "less than or equal to 100"),
]


@pytest.mark.parametrize("change, key, words", [case[1:] for case in RAY_JUDGED], ids=[case[0] for case in RAY_JUDGED])
def test_extra_values_ray_refuses_are_refused_naming_their_key(change, key, words):
    with pytest.raises(SettingsError) as caught:
        parse_settings(eks_with(change), SOURCE)
    assert caught.value.keys == [f"raykube:rayServices[0].{key}"], str(caught.value)
    assert words in str(caught.value) and "Ray Serve 2.60.0 refuses it" in str(caught.value)


# --- the rendered RayService ----------------------------------------------------------------------

def test_the_eks_rayservice_passes_the_crd_and_carries_the_stacks_serve_config(stack_runs):
    run = stack_runs["eks"]
    (service,) = run.of_type(RAYSERVICE)
    validate_rayservice(service.revealed_inputs)
    spec = service.inputs["spec"]
    # The code object the same `pulumi up` uploads, made before the RayService.
    (component,) = run.of_type("raykube:index:RayService")
    (upload,) = [code for code in run.of_type("aws:s3/bucketObjectv2:BucketObjectv2") if code.urn in component.dependencies]
    assert upload.inputs["key"].startswith("raykube/services/ray/wine/") and upload.inputs["key"].endswith(".zip")
    job_pip = yaml.safe_load(next(job for job in run.of_type("kubernetes:ray.io/v1:RayJob")).inputs["spec"]["runtimeEnvYAML"])["pip"]
    stack_service = EKS["rayServices"][0]
    assert yaml.safe_load(spec["serveConfigV2"]) == {"applications": [{
        "name": "wine",
        "import_path": "serve_app:app",
        "route_prefix": "/wine",
        # The job's packages, the job's data (serve_app.py trains the job's model from it), the uploaded code.
        "runtime_env": {"pip": job_pip, "env_vars": {"WINE_BUCKET": EKS["awsAccess"]["bucket"]},
                        "working_dir": f"s3://{upload.inputs['bucket']}/{upload.inputs['key']}"},
        "deployments": [{"name": "WineModel", "autoscaling_config": {"min_replicas": 1, "max_replicas": 4}}],
    }]}
    assert isinstance(spec["serveConfigV2"], str) and stack_service["code"] == "examples/wine_shap"
    assert spec["upgradeStrategy"] == {"type": "NewCluster"}
    cluster = spec["rayClusterConfig"]
    assert cluster["enableInTreeAutoscaling"] is True and "upgradeStrategy" not in cluster
    assert cluster["authOptions"] == {"mode": "token"}
    head = cluster["headGroupSpec"]["template"]
    assert {"containerPort": SERVE_PORT, "name": "serve"} in head["spec"]["containers"][0]["ports"]  # KubeRay's serve Service takes it
    for template in [head, *(group["template"] for group in cluster["workerGroupSpecs"])]:
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 1000
        assert pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False
        assert pod["serviceAccountName"] == "ray-s3"  # IRSA reaches the replicas (the model's data)
    annotations = service.inputs["metadata"]["annotations"]
    assert yaml.safe_load(annotations["pulumi.com/waitFor"]) == ["condition=Ready", "condition=UpgradeInProgress=False"]
    assert annotations["pulumi.com/timeoutSeconds"] == "900"
    waited = {run.by_urn(urn).name for urn in component.dependencies}
    assert "kuberay-operator-ray-chart" in waited
    outputs = run.outputs["rayServices"]["ray/wine"]
    assert outputs["serveAddress"] == "http://wine-serve-svc.ray.svc:8000"
    assert outputs["dashboardAddress"] == "http://wine-head-svc.ray.svc:8265"


def test_the_serve_ingress_routes_to_the_serve_service():
    result = run_program({f"raykube:{key}": value for key, value in eks_with(serveIngress={"enabled": True, "className": "nginx", "host": "models.example.com"}).items()}, "eks")
    (ingress,) = [r.inputs for r in result.kubernetes_objects() if r.inputs["kind"] == "Ingress"]
    assert ingress["metadata"]["name"] == "wine-serve"
    (path,) = ingress["spec"]["rules"][0]["http"]["paths"]
    assert path["backend"] == {"service": {"name": "wine-serve-svc", "port": {"number": SERVE_PORT}}}
    assert ingress["spec"]["rules"][0]["host"] == "models.example.com"


def test_the_active_cluster_output_is_read_from_the_rayservices_status():
    """pulumi-kubernetes returns the live object, status included, once the wait is over: the component
    reads the serving cluster's name from status.activeServiceStatus (here a provider answer standing in)."""
    from raykube.composition import build
    from raykube.offline import OfflineMocks, RecordingMonitor, run_offline
    from raykube.settings import load_settings
    from raykube.stack_file import stack_config_values

    class LiveStatus(OfflineMocks):
        def new_resource(self, args):
            name, state = super().new_resource(args)
            if args.typ == RAYSERVICE:
                state["status"] = {"activeServiceStatus": {"rayClusterName": "wine-k7x2q"}, "serviceStatus": "Running"}
            return name, state

    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    config = stack_config_values(stack_file_config("eks"), project.get("config", {}), "raykube")
    result = run_offline(lambda: build(load_settings()).as_tuple(), config, "eks", monitor=RecordingMonitor(LiveStatus()))
    assert result.outputs["rayServices"]["ray/wine"]["activeClusterName"] == "wine-k7x2q"


# --- names --------------------------------------------------------------------------------------

def test_a_service_named_like_a_cluster_is_refused_naming_both():
    # KubeRay names the RayService's head Service <service>-head-svc: the RayCluster's.
    with pytest.raises(SettingsError) as caught:
        parse_settings(eks_with(name="raycluster"), SOURCE)
    assert caught.value.keys == ["raykube:rayServices[0].name"]
    assert "Service 'raycluster-head-svc' in namespace ray" in str(caught.value) and "rayClusters[0].name" in str(caught.value)


def test_a_service_and_a_job_of_one_name_with_code_are_refused():
    # Both upload their code as the Pulumi resource <namespace>-<name>-code.
    with pytest.raises(SettingsError) as caught:
        parse_settings(eks_with(name="wine-shap"), SOURCE)
    assert caught.value.keys == ["raykube:rayServices[0].name"]
    assert "'ray-wine-shap-code'" in str(caught.value) and "rayJobs[0].name" in str(caught.value)


def test_a_serve_service_name_past_63_characters_is_refused(monkeypatch):
    # The name's own cap (47, KubeRay's) keeps <name>-xxxxx-head-svc a label; raised, the derived check still holds.
    import raykube.settings.ray_services as ray_services

    monkeypatch.setattr(ray_services, "RAY_SERVICE_NAME_MAX", 63)
    with pytest.raises(SettingsError) as caught:
        parse_settings(eks_with(name="s" * 50), SOURCE)
    assert caught.value.keys == ["raykube:rayServices[0].name"]
    assert "at most 63" in str(caught.value)


# --- NetworkPolicy: port 8000 -----------------------------------------------------------------------

def _objects(run) -> list[dict]:
    return [copy.deepcopy(resource.inputs) for resource in run.kubernetes_objects()]


def _serving_pods(objects: list[dict], namespace: str) -> list[Endpoint]:
    services = [obj for obj in objects if obj["kind"] == "RayService"]
    pods = pods_of(services, namespace)
    return pods["head"] + pods["worker"]


def test_serve_port_is_open_to_the_namespace_and_the_operator_and_closed_to_others(stack_runs):
    run = stack_runs["eks"]
    objects = _objects(run)
    model = Cluster(objects, ["kube-system", OUTSIDER.namespace])
    serving = _serving_pods(objects, "ray")
    assert len(serving) == 2  # the head and the cpu group
    client = Endpoint("web-frontend", "ray", {"app": "frontend"})
    operator = Endpoint("kuberay-operator", "ray", OPERATOR_LABELS)
    for pod in serving:
        assert model.connects(client, pod, SERVE_PORT)
        assert model.connects(operator, pod, SERVE_PORT)  # its Serve health checks
        assert not model.connects(OUTSIDER, pod, SERVE_PORT)
    # The stack's RayCluster serves nothing: its port 8000 stays closed to the namespace's other pods.
    cluster_pods = pods_of([obj for obj in objects if obj["kind"] == "RayCluster"], "ray")
    assert not model.connects(client, cluster_pods["head"][0], SERVE_PORT)
    # Every flow Ray needs inside the service's own cluster is allowed.
    pods = pods_of([obj for obj in objects if obj["kind"] == "RayService"], "ray")
    assert blocked_flows(model, pods["head"], pods["worker"], [client]) == []


def test_serve_access_from_opens_the_port_to_those_peers_and_the_operator_only():
    config = eks_with()
    config["networkPolicies"] = {**config["networkPolicies"], "serveAccessFrom": [{"namespace": "web", "podLabels": {"app": "frontend"}}]}
    result = run_program({f"raykube:{key}": value for key, value in config.items()}, "eks")
    objects = _objects(result)
    model = Cluster(objects, ["kube-system", OUTSIDER.namespace, "web"])
    for pod in _serving_pods(objects, "ray"):
        assert model.connects(Endpoint("frontend", "web", {"app": "frontend"}), pod, SERVE_PORT)
        assert not model.connects(Endpoint("other", "web", {"app": "other"}), pod, SERVE_PORT)
        assert not model.connects(Endpoint("neighbour", "ray", {"app": "x"}), pod, SERVE_PORT)
        assert model.connects(Endpoint("kuberay-operator", "ray", OPERATOR_LABELS), pod, SERVE_PORT)


def test_a_serve_ingress_lets_its_controller_in():
    result = run_program({f"raykube:{key}": value for key, value in eks_with(serveIngress={"enabled": True, "className": "nginx"}).items()}, "eks")
    objects = _objects(result)
    model = Cluster(objects, ["kube-system", OUTSIDER.namespace, "ingress-nginx"])
    controller = Endpoint("ingress-nginx-controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
    for pod in _serving_pods(objects, "ray"):
        assert model.connects(controller, pod, SERVE_PORT)


def test_a_namespace_without_a_service_gets_no_serve_policy(stack_runs):
    for stack in ("local", "gke", "aks"):
        names = [r.inputs["metadata"]["name"] for r in stack_runs[stack].kubernetes_objects() if r.inputs["kind"] == "NetworkPolicy"]
        assert not [name for name in names if "serve" in name], stack


# --- the KubeRay CRDs: RayCronJob's too, kept on destroy ------------------------------------------

def test_the_crds_installed_include_raycronjob_and_are_kept(stack_runs):
    run = stack_runs["eks"]
    (crds,) = run.of_type("kubernetes:yaml/v2:ConfigGroup")
    names = [url.rsplit("/", 1)[1] for url in crds.inputs["files"]]
    assert "ray.io_raycronjobs.yaml" in names and all("/v1.7.0/" in url for url in crds.inputs["files"])
    assert crds.retain_on_delete and crds.transforms  # kept, CRDs inside the group too (test_shared_crds.py)
    # The file raykube fetches is the release's RayCronJob CRD (the chart of the same release ships it).
    crd = load_upstream(RAYCRONJOB_CRD)
    assert crd["spec"]["names"]["plural"] == "raycronjobs" and crd["spec"]["group"] == "ray.io"


def test_a_release_before_raycronjob_is_not_asked_for_it():
    from components.kuberay_crds import crd_urls

    assert not [url for url in crd_urls("1.5.1") if "raycronjobs" in url]
    assert [url for url in crd_urls("1.6.1") if "raycronjobs" in url]


def test_a_crd_folder_without_raycronjob_is_refused(tmp_path):
    """An air-gapped copy of 1.7.0's CRDs must hold RayCronJob's too: refused, naming the file."""
    for name in ("rayclusters", "rayjobs", "rayservices"):
        (tmp_path / f"ray.io_{name}.yaml").write_text(upstream_path(f"charts/kuberay-operator/crds/ray.io_{name}.yaml").read_text())
    config = {**EKS, "sources": {"crds": {"path": str(tmp_path)}}}
    with pytest.raises(SettingsError) as caught:
        parse_settings(config, SOURCE)
    assert caught.value.keys == ["raykube:sources.crds.path"] and "ray.io_raycronjobs.yaml" in str(caught.value)


def test_the_control_plane_serves_raycronjobs(control_plane):
    """The tests' API server has the CRD the program installs (tests/helpers/envtest.py install_stack_crds)."""
    crd = control_plane.dynamic().resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition").get(name="raycronjobs.ray.io")
    conditions = {item["type"]: item["status"] for item in crd.to_dict()["status"]["conditions"]}
    assert conditions.get("Established") == "True"


# --- under the real operator (the tests' build, a stand-in for 1.7.0) --------------------------

def test_the_operator_takes_the_rayservice_and_brings_up_its_cluster_of_serving_pods(simulated_cluster):
    """KubeRay's own validation accepts the RayService the eks stack renders and creates its RayCluster,
    whose head and workers run with the serve port and the label port 8000's policy selects. Ready needs Ray
    Serve answering on that head, which kwok's pods do not run: `pulumi up`'s wait ends naming the RayService."""
    from tests.helpers.program import fresh
    from tests.helpers.pulumi_up import AwaitTimeout, pulumi_destroy, pulumi_up

    sim = simulated_cluster
    config = fresh("eks", services=True)
    config.pop("raykube:rayJobs")  # only the service matters here
    namespace = config["raykube:rayServices"][0]["namespace"]
    run = run_program(config, "eks")
    try:
        with pytest.raises(AwaitTimeout) as waited:
            pulumi_up(sim, run, timeout=45)
        assert f"RayService {namespace}/wine" in str(waited.value)
        service = sim.dynamic.resources.get(api_version="ray.io/v1", kind="RayService").get(name="wine", namespace=namespace).to_dict()
        reasons = {condition["type"]: condition["reason"] for condition in service["status"].get("conditions") or []}
        assert "ValidationFailed" not in reasons.values(), service["status"]
        clusters = sim.dynamic.resources.get(api_version="ray.io/v1", kind="RayCluster").get(namespace=namespace).to_dict()["items"]
        (cluster,) = [item for item in clusters if item["metadata"]["name"].startswith("wine-")]
        name = cluster["metadata"]["name"]
        assert service["status"]["pendingServiceStatus"]["rayClusterName"] == name
        pods = sim.running(namespace, f"ray.io/cluster={name}")
        assert {pod.metadata.labels["ray.io/node-type"] for pod in pods} == {"head", "worker"}
        for pod in pods:
            assert pod.metadata.labels.get("raykube.io/ray-serve") == "true"
            ports = {port.name: port.container_port for port in pod.spec.containers[0].ports or ()}
            assert ports.get("serve") == SERVE_PORT
            assert pod.spec.security_context.run_as_non_root is True
    finally:
        pulumi_destroy(sim, run)
