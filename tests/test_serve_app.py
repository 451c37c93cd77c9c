"""The wine model as an HTTP endpoint (examples/wine_shap/serve_app.py), deployed on the session's
real Ray head from the Serve config the eks stack renders, the way the KubeRay operator deploys it,
answering with the values the job's own code computes."""
from __future__ import annotations

import json
import sys
import zipfile
from importlib import metadata

import numpy as np
import pytest

from tests.helpers.program import ROOT

EXAMPLE = ROOT / "examples" / "wine_shap"


def job_code():
    """The example's own modules, imported from its folder (not through the app)."""
    sys.path.insert(0, str(EXAMPLE))
    try:
        import seed
        import wine_shap
    finally:
        sys.path.remove(str(EXAMPLE))
    return seed, wine_shap


def rendered_service(stack_runs) -> tuple[dict, dict]:
    """The eks stack's wine RayService: its serveConfigV2 parsed as the operator parses it, and the
    files of the code archive `pulumi up` uploads to its working_dir ({name in the zip: path})."""
    import yaml

    run = stack_runs["eks"]
    (service,) = [s for s in run.of_type("kubernetes:ray.io/v1:RayService") if s.inputs["metadata"]["name"] == "wine"]
    config = yaml.safe_load(service.inputs["spec"]["serveConfigV2"])
    (application,) = config["applications"]
    uploads = {f"s3://{u.inputs['bucket']}/{u.inputs['key']}": u for u in run.of_type("aws:s3/bucketObjectv2:BucketObjectv2")}
    assets = uploads[application["runtime_env"]["working_dir"]].inputs["source"]["assets"]
    return config, {name: ROOT / asset["path"] for name, asset in assets.items()}


@pytest.fixture(scope="module")
def serve_worker(ray_head):
    """A worker node with one CPU for the replica (the head, as raykube's, has none)."""
    from tests.helpers.ray_sandbox import OBJECT_STORE_BYTES, RAY

    worker = ray_head.spawn([RAY, "start", f"--address={ray_head.gcs_address}", "--node-ip-address=127.0.0.9", "--num-cpus=1",
                             f"--memory={3 * 2**29}", f"--object-store-memory={OBJECT_STORE_BYTES}", "--block"], "serve-worker")
    try:
        assert "127.0.0.9" in {node["NodeManagerAddress"] for node in ray_head.wait_for_nodes(2)}, ray_head.log("serve-worker")
        yield
    finally:
        ray_head.signal(worker, 15)
        ray_head.wait(worker, timeout=120)


@pytest.fixture
def s3_access(moto_server, aws, moto_in_sandbox, tmp_path, monkeypatch):
    """What a raykube Ray pod has for S3, as env for the runtime env: the role's credentials file
    (written as the kubelet mounts the Secret) and moto's endpoint inside the sandbox."""
    from components.assumed_role_credentials import AssumedRoleCredentialsProvider
    from components.aws_role_bridge import ray_container_env, secret_data
    from tests.helpers.kubelet import write_like_kubelet
    from tests.helpers.moto import create_program_role

    def grant(bucket: str) -> dict:
        role = create_program_role(moto_server.admin_client("iam"), f"raykube-serve-{bucket}", bucket, [aws["deployer"]])
        with monkeypatch.context() as deployer:
            deployer.setenv("AWS_ACCESS_KEY_ID", aws["keys"][0])
            deployer.setenv("AWS_SECRET_ACCESS_KEY", aws["keys"][1])
            credentials = AssumedRoleCredentialsProvider().create({
                "role_arn": role, "region": "us-east-1", "endpoint_url": moto_server.url, "duration_seconds": 3600, "bucket": bucket}).outs
        mount = tmp_path / "aws"
        write_like_kubelet(mount, secret_data(credentials, "us-east-1", str(mount)))
        return {**ray_container_env("us-east-1", str(mount)), "AWS_ENDPOINT_URL": moto_in_sandbox,
                "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}

    return grant


def test_the_rendered_serve_application_answers_the_jobs_prediction_and_kernel_shap_values(
        stack_runs, ray_head, serve_worker, moto_server, s3_access, tmp_path):
    from tests.helpers.serve_api import SandboxPort, ServeApi, http, serve_logs

    seed, wine_shap = job_code()
    config, code = rendered_service(stack_runs)
    (application,) = config["applications"]
    env_vars = application["runtime_env"].get("env_vars") or {}
    assert "WINE_BUCKET" in env_vars, ("the wine application names no bucket (serve_app.py reads WINE_BUCKET): "
                                       "stacks/Pulumi.eks.yaml needs runtimeEnv.env_vars.WINE_BUCKET, the bucket the wine job reads")
    bucket, key = env_vars["WINE_BUCKET"], env_vars.get("WINE_KEY") or seed.DEFAULT_KEY
    # The data where the stack's job reads it, put there by the example's seeding code.
    admin = moto_server.admin_client("s3")
    if bucket not in {b["Name"] for b in admin.list_buckets()["Buckets"]}:
        admin.create_bucket(Bucket=bucket)
    seed.seed(bucket, key, s3=admin)
    # The code archive `pulumi up` uploads, as a zip of its assets; Ray fetches it by its URI
    # (file:// here: the sandbox's Ray has no route to S3) and unpacks it as for s3://.
    archive = tmp_path / "code.zip"
    with zipfile.ZipFile(archive, "w") as package:
        for name, path in code.items():
            package.write(path, name)
    runtime_env = application["runtime_env"]
    assert runtime_env["working_dir"].startswith("s3://")
    runtime_env["working_dir"] = archive.as_uri()
    # pip: on the cluster, Ray installs these on the image; the sandbox has no network, and its
    # Python (requirements-dev.txt) holds exactly these pins already: without it, nothing changes.
    for requirement in runtime_env.pop("pip", []):
        name, version = requirement.split("==")
        assert metadata.version(name) == version, f"the tests' Python has {name} {metadata.version(name)}, the stack asks for {version}"
    runtime_env["env_vars"] = {**runtime_env.get("env_vars", {}), **s3_access(bucket)}

    dashboard = SandboxPort(ray_head, ray_head.head_ip, ray_head.dashboard_port, tmp_path, "serve-dashboard")
    serve = ServeApi(dashboard.url, ray_head.auth_token)
    proxy = None
    try:
        serve.put(config)
        try:
            serve.wait(application["name"], "RUNNING", timeout=120)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{serve_logs(ray_head)}") from None
        # The head's Serve proxy, on port 8000 as the RayService's <name>-serve-svc targets it
        # (the relay connects through at once: only now is there something to connect to).
        proxy = SandboxPort(ray_head, ray_head.head_ip, 8000, tmp_path, "serve-proxy")

        # What the job computes for the same rows, with its own functions, from the same object.
        features, scores, names = wine_shap.parse_csv(admin.get_object(Bucket=bucket, Key=key)["Body"].read())
        model = wine_shap.train(features, scores)
        background = wine_shap.background(features)
        rows = features[[0, 70, 150]]  # one wine of each cultivar
        expected = wine_shap.shap_values(model, background, rows)
        endpoint = proxy.url + application["route_prefix"]
        answers = []
        for index, row in enumerate(rows):
            features_ = dict(zip(names, row.tolist())) if index % 2 == 0 else row.tolist()  # by name, and in column order
            status, text = http("POST", endpoint, {"features": features_})
            assert status == 200, text
            answers.append(json.loads(text))
        for answer, row, values in zip(answers, rows, expected):
            assert list(answer["shap_values"]) == names
            served = np.array(list(answer["shap_values"].values()))
            assert np.abs(served - values).max() <= wine_shap.TOLERANCE
            assert answer["prediction"] == model.predict(row[None, :])[0]
            assert answer["base_value"] == model.predict(background).mean()
            # KernelSHAP's efficiency: base value + the values = the prediction.
            assert abs(answer["base_value"] + served.sum() - answer["prediction"]) <= 1e-9
        assert len({answer["prediction"] for answer in answers}) == 3  # three cultivars, three answers

        status, text = http("POST", endpoint, {"features": dict(zip(names[1:], rows[0][1:].tolist()))})
        assert status == 400 and names[0] in json.loads(text)["error"]

        # The same config without the bucket: Serve reports the replica's error, naming the variable.
        del runtime_env["env_vars"]["WINE_BUCKET"]
        serve.put(config)
        failed = serve.wait(application["name"], "DEPLOY_FAILED", timeout=60)
        (deployment,) = failed["deployments"].values()  # what the RayService's status shows per deployment
        assert "WINE_BUCKET is not set" in deployment["message"], deployment["message"]
    finally:
        serve.shutdown()
        try:
            assert serve.applications() == {}
        finally:
            if proxy is not None:
                proxy.close()
            dashboard.close()
