"""The eks stack's wine RayService under the real KubeRay operator, whose Serve calls reach a real Ray head
serving the wine application: it gets Ready, a Serve-config change is applied in place, and a cluster
change moves traffic to a new RayCluster while a client sees no failed request.

What is real: the control plane, scheduler and controllers of the simulated cluster; the KubeRay operator
(the project's build, v1.6.1, a stand-in for the v1.7.0 the program deploys), started with the chart's flags;
the RayService as the stack renders it (tests/helpers/program.py) and `pulumi up`'s application and wait
(tests/helpers/pulumi_up.py); the operator's Serve API calls (PUT/GET /api/serve/applications/ with the
token) and Serve proxy health checks (GET <head pod IP>:8000/-/healthz), which reach the session's real Ray
head serving examples/wine_shap/serve_app.py; the serve Service and its EndpointSlices.

What stands in (tests/helpers/serve_reach.py, serve_network.py): the operator runs in a network of its own
where every live pod's and Service's IP leads to the one real Ray head, and /etc/hosts plays the cluster DNS; so
both RayClusters of an upgrade have that one head behind them: the traffic test shows the operator never
leaves the serve Service without a ready backend and moves it only once the new cluster answers, not that
two Ray clusters swapped. The auth Secret the operator makes per RayCluster is given the real head's token.
kwok's pods run no Ray: worker pods are Ready without their readiness probe. The Serve config differs from
the rendered one only where the sandbox must: the code archive by file:// (no S3 route for Ray's fetch), no
pip (no network; the tests' Python has the pins), moto's credentials and endpoint. The tests run in order
on one deployment (each the next `pulumi up` of the same stack).
"""
from __future__ import annotations

import copy
import json
import sys
import threading
import time
import zipfile
from importlib import metadata

import pytest
import yaml

from tests.helpers.program import ROOT, fresh, run_program
from tests import test_serve_app
from tests.test_serve_app import job_code

RAYSERVICE = "kubernetes:ray.io/v1:RayService"
serve_worker = test_serve_app.serve_worker  # a worker node with one CPU for the replica (the head has none)
DELETION_DELAY = 5


def ray_services(sim, namespace: str):
    return sim.dynamic.resources.get(api_version="ray.io/v1", kind="RayService")


def live_service(sim, namespace: str) -> dict:
    return ray_services(sim, namespace).get(name="wine", namespace=namespace).to_dict()


def cluster_names(sim, namespace: str) -> set[str]:
    clusters = sim.dynamic.resources.get(api_version="ray.io/v1", kind="RayCluster").get(namespace=namespace).to_dict()["items"]
    return {item["metadata"]["name"] for item in clusters if item["metadata"]["name"].startswith("wine-")}


class Deployment:
    """The stack's `pulumi up`s on the simulated cluster, each over the previous one."""

    def __init__(self, sim, reach, config: dict, archive, env: dict):
        self.sim, self.reach, self.config, self.archive, self.env = sim, reach, config, archive, env
        self.namespace = config["raykube:rayServices"][0]["namespace"]
        self.previous = None

    def for_the_sandbox(self, run) -> None:
        """The RayService's Serve config with what only the sandbox needs changed (module docstring)."""
        (service,) = [r for r in run.resources if r.type == RAYSERVICE]
        config = yaml.safe_load(service.revealed_inputs["spec"]["serveConfigV2"])
        for application in config["applications"]:
            runtime_env = application["runtime_env"]
            assert runtime_env["working_dir"].startswith("s3://")
            runtime_env["working_dir"] = self.archive.as_uri()
            for requirement in runtime_env.pop("pip", []):
                name, version = requirement.split("==")
                assert metadata.version(name) == version, f"the tests' Python has {name} {metadata.version(name)}, the stack asks for {version}"
            runtime_env["env_vars"] = {**runtime_env.get("env_vars", {}), **self.env}
        service.revealed_inputs["spec"]["serveConfigV2"] = yaml.safe_dump(config, sort_keys=False)

    def up(self, change=None):
        from tests.helpers.pulumi_up import pulumi_up

        if change is not None:
            self.config = copy.deepcopy(self.config)
            change(self.config["raykube:rayServices"][0])
        run = run_program(self.config, "eks")
        self.for_the_sandbox(run)
        deployed = pulumi_up(self.sim, run, self.previous, timeout=120)
        self.previous = run
        return deployed


@pytest.fixture(scope="module")
def served(simulated_cluster, ray_head, serve_worker, moto_server, aws, tmp_path_factory):
    """The eks stack's wine RayService deployed by one `pulumi up`, its operator reaching the real head."""
    from components.assumed_role_credentials import AssumedRoleCredentialsProvider
    from components.aws_role_bridge import ray_container_env, secret_data
    from tests.helpers.kubelet import write_like_kubelet
    from tests.helpers.moto import create_program_role
    from tests.helpers.pulumi_up import discard
    from tests.helpers.serve_api import SandboxPort, ServeApi
    from tests.helpers.serve_reach import ServeReach

    from tests.helpers.simulated_cluster import CONTROLLERS

    assert "endpointslice-controller" in CONTROLLERS, "the operator counts the serve Service's ready endpoints in EndpointSlices"
    sim, directory = simulated_cluster, tmp_path_factory.mktemp("rayservice")
    config = fresh("eks", services=True)
    config.pop("raykube:rayJobs")
    service = config["raykube:rayServices"][0]
    service["rayClusterDeletionDelaySeconds"] = DELETION_DELAY
    namespace, bucket = service["namespace"], service["serveConfig"]["applications"][0]["runtimeEnv"]["env_vars"]["WINE_BUCKET"]

    # The job's data where the application reads it, and the role a raykube Ray pod has for it.
    seed, wine_shap = job_code()
    admin = moto_server.admin_client("s3")
    if bucket not in {b["Name"] for b in admin.list_buckets()["Buckets"]}:
        admin.create_bucket(Bucket=bucket)
    seed.seed(bucket, seed.DEFAULT_KEY, s3=admin)
    features, _, _ = wine_shap.parse_csv(admin.get_object(Bucket=bucket, Key=seed.DEFAULT_KEY)["Body"].read())
    role = create_program_role(moto_server.admin_client("iam"), "raykube-rayservice-wine", bucket, [aws["deployer"]])
    with pytest.MonkeyPatch.context() as deployer:
        deployer.setenv("AWS_ACCESS_KEY_ID", aws["keys"][0])
        deployer.setenv("AWS_SECRET_ACCESS_KEY", aws["keys"][1])
        credentials = AssumedRoleCredentialsProvider().create({
            "role_arn": role, "region": "us-east-1", "endpoint_url": moto_server.url, "duration_seconds": 3600, "bucket": bucket}).outs
    mount = directory / "aws"
    write_like_kubelet(mount, secret_data(credentials, "us-east-1", str(mount)))
    # moto, inside the sandbox at 127.0.0.6:4566 (tests/conftest.py's moto_in_sandbox takes 127.0.0.5).
    import subprocess

    bridge = str(ROOT / "tests" / "helpers" / "unix_tcp_bridge.py")
    moto_socket = directory / "moto.sock"
    moto_outside = subprocess.Popen([sys.executable, bridge, "unix-to-tcp", str(moto_socket), "127.0.0.1", str(moto_server.port)])
    while not moto_socket.exists():
        time.sleep(0.05)
    moto_inside = ray_head.spawn([sys.executable, bridge, "tcp-to-unix", "127.0.0.6", "4566", str(moto_socket)], "rayservice-moto")
    env = {**ray_container_env("us-east-1", str(mount)), "AWS_ENDPOINT_URL": "http://127.0.0.6:4566",
           "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_SHARED_CREDENTIALS_FILE": str(directory / "none")}

    # The code archive `pulumi up` uploads (its assets, zipped), fetched by Ray as file://.
    first = run_program(config, "eks")
    (rendered,) = [r for r in first.resources if r.type == RAYSERVICE]
    working_dir = yaml.safe_load(rendered.inputs["spec"]["serveConfigV2"])["applications"][0]["runtime_env"]["working_dir"]
    uploads = {f"s3://{u.inputs['bucket']}/{u.inputs['key']}": u for u in first.of_type("aws:s3/bucketObjectv2:BucketObjectv2")}
    archive = directory / "code.zip"
    with zipfile.ZipFile(archive, "w") as package:
        for name, asset in uploads[working_dir].inputs["source"]["assets"].items():
            package.write(ROOT / asset["path"], name)

    reach = ServeReach(sim, ray_head, namespace)
    dashboard = SandboxPort(ray_head, ray_head.head_ip, ray_head.dashboard_port, directory, "rayservice-dashboard")
    deployment = Deployment(sim, reach, config, archive, env)
    deployment.serve = ServeApi(dashboard.url, ray_head.auth_token)
    deployment.request = {"features": features[0].tolist()}  # a wine of the job's data, in column order
    try:
        yield deployment
    finally:
        try:
            deployment.serve.shutdown()
        finally:
            if deployment.previous is not None:
                discard(sim, deployment.previous)
            reach.close()
            dashboard.close()
            ray_head.signal(moto_inside, 9)
            moto_outside.kill()
            moto_outside.wait()


def serve_endpoints(served) -> list:
    return served.reach._ready_addresses("wine-serve-svc")


def test_the_rayservice_gets_ready_with_the_operator_serving_the_wine_app_on_the_real_head(served):
    """(a) `pulumi up` waits until the RayService is Ready: the operator PUT the Serve config to the real
    head, found the wine application RUNNING there, found the head's Serve proxy healthy (the serve label)
    and the serve Service with ready endpoints. The app answers a prediction through that Service's endpoint."""
    sim, namespace = served.sim, served.namespace
    served.up()
    service = live_service(sim, namespace)
    conditions = {c["type"]: c for c in service["status"]["conditions"]}
    assert conditions["Ready"]["status"] == "True", service["status"]
    assert service["status"]["serviceStatus"] == "Running"
    (cluster,) = cluster_names(sim, namespace)
    assert service["status"]["activeServiceStatus"]["rayClusterName"] == cluster
    assert not (service["status"].get("pendingServiceStatus") or {}).get("rayClusterName")
    events = sim.events(namespace, "wine")
    assert f"UpdatedServeApplications: Updated serve applications to the RayCluster {namespace}/{cluster}" in events, events
    (head,) = sim.pods(namespace, f"ray.io/cluster={cluster},ray.io/node-type=head")
    log = [line for line in sim.operator_log(namespace).splitlines() if "serve" in line.lower() and ("rror" in line or "fail" in line)]
    assert any(line.startswith("UpdatedHeadPodServeLabel") and '"true"' in line and head.metadata.name in line for line in events), (
        json.dumps(events, indent=1), head.metadata.labels, head.status.pod_ip, log[-5:], served.reach.hosts.read_text())
    assert head.metadata.labels["ray.io/serve"] == "true"
    # What the operator deployed is on the real head, RUNNING.
    application = served.serve.applications()["wine"]
    assert application["status"] == "RUNNING", application
    assert application["deployed_app_config"]["import_path"] == "serve_app:app"
    # The serve Service selects this cluster's serving pods, and a request through it is answered.
    endpoints = serve_endpoints(served)
    assert head.metadata.name in {pod for _, pod in endpoints}
    status, text = served.reach.request(endpoints[0][0], 8000, "POST", "/wine", served.request)
    assert status == 200, text
    assert {"prediction", "base_value", "shap_values"} <= set(json.loads(text))


def test_a_serve_config_change_is_applied_in_place_on_the_same_cluster(served):
    """(b) Only the Serve config changes (the deployment's maxReplicas): the same RayCluster keeps serving,
    no pending cluster is made, and the real head's application takes the new config."""
    sim, namespace = served.sim, served.namespace
    before = live_service(sim, namespace)["status"]["activeServiceStatus"]["rayClusterName"]
    assert cluster_names(sim, namespace) == {before}
    assert served.serve.applications()["wine"]["deployed_app_config"]["deployments"][0]["autoscaling_config"]["max_replicas"] == 4

    def fewer_replicas(service):
        service["serveConfig"]["applications"][0]["deployments"][0]["autoscaling"]["maxReplicas"] = 3

    served.up(fewer_replicas)
    deadline = time.monotonic() + 60
    while True:
        deployed = served.serve.applications()["wine"]["deployed_app_config"]["deployments"][0]
        if deployed["autoscaling_config"]["max_replicas"] == 3 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert deployed["autoscaling_config"]["max_replicas"] == 3, deployed
    service = live_service(sim, namespace)
    assert service["status"]["activeServiceStatus"]["rayClusterName"] == before
    assert not (service["status"].get("pendingServiceStatus") or {}).get("rayClusterName")
    assert cluster_names(sim, namespace) == {before}
    assert served.serve.applications()["wine"]["status"] == "RUNNING"


class NewClusterHeldBack:
    """While held, the pods of every RayCluster but `old` do not answer (their Ray is not up yet): the
    operator must keep the serve Service on `old`. Records what the RayService and the Service said meanwhile."""

    def __init__(self, served, old: str, seconds: float):
        self.served, self.old, self.seconds = served, old, seconds
        self.seen: list[tuple[str, str, str]] = []  # (active cluster, pending cluster, serve Service's cluster)
        self.addresses: set[str] = set()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def held(self, pod) -> bool:
        cluster = pod.metadata.labels.get("ray.io/cluster", "")
        return cluster.startswith("wine-") and cluster != self.old

    def start(self) -> None:
        self.served.reach.hold_back(self.held)  # before the new cluster's first pod
        self.thread.start()

    def _run(self) -> None:
        sim, namespace = self.served.sim, self.served.namespace
        deadline, cap = None, time.monotonic() + 120
        while (deadline is None or time.monotonic() < deadline) and time.monotonic() < cap:
            pods = [pod for pod in sim.pods(namespace, "ray.io/cluster") if self.held(pod)]
            self.addresses |= {pod.status.pod_ip for pod in pods if pod.status.pod_ip}
            if deadline is None and any(pod.metadata.labels.get("ray.io/node-type") == "head" and pod.status.pod_ip for pod in pods):
                deadline = time.monotonic() + self.seconds  # from when the new head could have answered
            status = live_service(sim, namespace)["status"]
            selector = sim.core.read_namespaced_service("wine-serve-svc", namespace).spec.selector or {}
            self.seen.append(((status.get("activeServiceStatus") or {}).get("rayClusterName", ""),
                              (status.get("pendingServiceStatus") or {}).get("rayClusterName", ""), selector.get("ray.io/cluster", "")))
            time.sleep(0.5)
        self.served.reach.hold_back(None)


def test_a_cluster_change_moves_traffic_to_a_new_cluster_once_it_serves_without_a_failed_request(served):
    """(c) The head's environment changes: the operator brings up a pending RayCluster; while that cluster's
    Ray does not answer (held back 20 s) the serve Service stays on the old cluster; once it answers, the
    operator deploys the Serve config there, moves the Service to it, and deletes the old cluster after
    rayClusterDeletionDelaySeconds. A client sending requests to the serve Service's ready endpoints the
    whole time sees none fail: had the Service moved to the new cluster while held back, or stayed on the old
    one once its pods were deleted, they would have (connections reset). Both clusters' pods lead to the one real head (module docstring): this shows the
    operator never leaves the Service without a serving backend, not two Ray clusters swapping."""
    from tests.helpers.serve_reach import ServeTraffic

    sim, namespace = served.sim, served.namespace
    old = live_service(sim, namespace)["status"]["activeServiceStatus"]["rayClusterName"]
    old_pods = {pod.metadata.name for pod in sim.pods(namespace, f"ray.io/cluster={old}")}

    def new_head_env(service):
        service.setdefault("head", {}).setdefault("env", {})["WINE_UPGRADE"] = "2"

    held = NewClusterHeldBack(served, old, seconds=20)
    with ServeTraffic(served.reach, "wine-serve-svc", "/wine", served.request) as traffic:
        time.sleep(2)
        held.start()
        served.up(new_head_env)
        held.thread.join(timeout=60)
        service = live_service(sim, namespace)
        new = service["status"]["activeServiceStatus"]["rayClusterName"]
        assert new != old
        deadline = time.monotonic() + DELETION_DELAY + 60
        while old in cluster_names(sim, namespace) and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2)
    # While the new cluster did not answer, it was pending and the Service stayed on the old one.
    assert held.addresses and any(pending == new for _, pending, _ in held.seen), held.seen
    assert all(active == old and selected == old for active, _, selected in held.seen), held.seen
    assert cluster_names(sim, namespace) == {new}, "the old RayCluster is still there"
    assert sim.core.read_namespaced_service("wine-serve-svc", namespace).spec.selector["ray.io/cluster"] == new
    events = sim.events(namespace, "wine")
    assert f"UpdatedServeApplications: Updated serve applications to the RayCluster {namespace}/{new}" in events, events
    new_pods = {pod.metadata.name for pod in sim.pods(namespace, f"ray.io/cluster={new}")}
    assert traffic.failures == [], (len(traffic.answered), traffic.failures[:10])
    assert set(traffic.answered) & old_pods and set(traffic.answered) & new_pods, (
        f"the client was not served by both clusters in turn: {sorted(set(traffic.answered))}")
    assert traffic.answered[-1] in new_pods
    print(f"{len(traffic.answered)} requests answered, {len(traffic.failures)} failed; {len(held.seen)} looks while held back")
