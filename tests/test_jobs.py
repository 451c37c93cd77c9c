"""Ray jobs on the cluster: the seed's wine-quality workload through `raykube jobs submit`,
failures, unreachable addresses, refused tokens, version mismatches, dropped connections."""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest

from components.aws_role_bridge import ray_container_env, secret_data
from tests.helpers.program import ROOT
from tests.helpers.kubelet import write_like_kubelet

EXAMPLE = ROOT / "examples" / "wine_shap"
BRIDGE = str(Path(__file__).parent / "helpers" / "unix_tcp_bridge.py")
WINE_BUCKET = "wine-data"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class JobsApiProxy:
    """The Jobs API of the sandbox's head, on 127.0.0.1:<port> of this host, through
    a relay that a test can cut and restore (as a port-forward or a load balancer drops)."""

    def __init__(self, ray_head, directory: Path):
        self.socket_path = str(directory / "jobs.sock")
        self.inside = ray_head.spawn([sys.executable, BRIDGE, "unix-to-tcp", self.socket_path, ray_head.head_ip, str(ray_head.dashboard_port)], "jobs-bridge")
        for _ in range(50):
            if Path(self.socket_path).exists():
                break
            time.sleep(0.1)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None
        self.start()
        self.ray_head = ray_head

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, BRIDGE, "tcp-to-unix", "127.0.0.1", str(self.port), self.socket_path])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the Jobs API relay did not start")

    def cut(self) -> None:
        self.process.kill()
        self.process.wait()

    def close(self) -> None:
        self.cut()
        self.ray_head.signal(self.inside, 9)


@pytest.fixture(scope="module")
def jobs_api(ray_head, tmp_path_factory):
    """The Jobs API, and a worker node with 2 CPUs for the jobs' tasks (the head has none)."""
    from tests.helpers.ray_sandbox import OBJECT_STORE_BYTES, RAY

    worker = ray_head.spawn([RAY, "start", f"--address={ray_head.gcs_address}", "--node-ip-address=127.0.0.8", "--num-cpus=2",
                             f"--memory={2 * 2**30}", f"--object-store-memory={OBJECT_STORE_BYTES}", "--block"], "jobs-worker")
    proxy = JobsApiProxy(ray_head, tmp_path_factory.mktemp("jobs"))
    try:
        assert "127.0.0.8" in {node["NodeManagerAddress"] for node in ray_head.wait_for_nodes(2)}, ray_head.log("jobs-worker")
        yield proxy
    finally:
        proxy.close()
        ray_head.signal(worker, 15)
        ray_head.wait(worker, timeout=120)


@pytest.fixture
def with_token(ray_head, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_TOKEN", ray_head.auth_token)


def jobs(*argv: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raykube.jobs", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


# --- the seed's workload, end to end ----------------------------------------------

def test_wine_shap_job_runs_on_the_cluster_and_writes_its_plots(jobs_api, ray_head, moto_server, aws, moto_in_sandbox, tmp_path, monkeypatch):
    from components.assumed_role_credentials import AssumedRoleCredentialsProvider
    from PIL import Image
    from tests.helpers.moto import create_program_role

    # A bucket of its own, seeded by the example's seeding command as its owner would.
    admin = moto_server.admin_client("s3")
    admin.create_bucket(Bucket=WINE_BUCKET)
    admin_key = moto_server.admin
    seeded = subprocess.run(
        [sys.executable, "seed.py", "--bucket", WINE_BUCKET], cwd=EXAMPLE, capture_output=True, text=True, timeout=120,
        env={**os.environ, "AWS_ACCESS_KEY_ID": admin_key[0], "AWS_SECRET_ACCESS_KEY": admin_key[1],
             "AWS_ENDPOINT_URL": moto_server.url, "AWS_REGION": "us-east-1"})
    assert seeded.returncode == 0, seeded.stderr
    assert "uploaded s3://wine-data/wine/wine.csv" in seeded.stdout
    # Credentials as raykube gives them to Ray pods: the role's files on a volume, the config's path in env.
    role = create_program_role(moto_server.admin_client("iam"), "raykube-wine-ray-s3", WINE_BUCKET, [aws["deployer"]])
    with monkeypatch.context() as deployer:  # `pulumi up` assumes the role with the deployer's own keys
        deployer.setenv("AWS_ACCESS_KEY_ID", aws["keys"][0])
        deployer.setenv("AWS_SECRET_ACCESS_KEY", aws["keys"][1])
        credentials = AssumedRoleCredentialsProvider().create({
            "role_arn": role, "region": "us-east-1", "endpoint_url": moto_server.url, "duration_seconds": 3600, "bucket": WINE_BUCKET}).outs
    mount = tmp_path / "aws"
    write_like_kubelet(mount, secret_data(credentials, "us-east-1", str(mount)))
    runtime_env = tmp_path / "runtime_env.yaml"
    env_vars = {**ray_container_env("us-east-1", str(mount)), "AWS_ENDPOINT_URL": moto_in_sandbox,
                "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    runtime_env.write_text(json.dumps({"env_vars": env_vars}))

    done = jobs("submit", "--address", jobs_api.url, "--working-dir", str(EXAMPLE), "--runtime-env", str(runtime_env),
                "--", "python", "job.py", "--bucket", WINE_BUCKET, "--rows", "16", "--chunks", "2",
                env={"RAY_AUTH_TOKEN": ray_head.auth_token})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "read 178 wines, 13 features" in done.stdout
    assert "SUCCEEDED" in done.stderr
    written = [line.split()[-1] for line in done.stdout.splitlines() if line.startswith("wrote s3://")]
    keys = {uri.split("/", 3)[3]: uri for uri in written}
    assert {key.rsplit("/", 1)[1] for key in keys} == {"shap_summary.png", "comparison.png", "results.json"}
    for key in keys:
        body = admin.get_object(Bucket=WINE_BUCKET, Key=key)["Body"].read()
        if key.endswith(".png"):
            image = Image.open(io.BytesIO(body))
            image.verify()
            assert image.format == "PNG" and image.size[0] > 300 and image.size[1] > 200
        else:
            results = json.loads(body)
    # The job's Ray-parallel values of both implementations against single-process shap, computed here.
    import shap

    sys.path.insert(0, str(EXAMPLE))
    try:
        import wine_shap
    finally:
        sys.path.remove(str(EXAMPLE))
    features, scores, _ = wine_shap.parse_csv(admin.get_object(Bucket=WINE_BUCKET, Key="wine/wine.csv")["Body"].read())
    model = wine_shap.train(features, scores)
    explainer = shap.KernelExplainer(model.predict, shap.sample(features, 8, random_state=0))
    expected = explainer.shap_values(features[:16], nsamples=2**13, silent=True, l1_reg=False)
    assert np.abs(np.array(results["ray_shap_values"]) - expected).max() <= wine_shap.TOLERANCE
    assert np.abs(np.array(results["kernel_shap_values"]) - expected).max() <= wine_shap.TOLERANCE
    assert results["rows"] == 16 and results["single_seconds"] > 0 and results["ray_seconds"] > 0
    assert len(results["seconds"]) == 4 and all(seconds > 0 for seconds in results["seconds"].values())


# --- what goes wrong, clearly ------------------------------------------------------

def test_a_failing_job_fails_the_command_with_its_error(jobs_api, ray_head):
    done = jobs("submit", "--address", jobs_api.url, "--", "python", "-c", "import sys; print('starting'); sys.exit('boom: no such table')",
                env={"RAY_AUTH_TOKEN": ray_head.auth_token})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "starting" in done.stdout
    assert "FAILED" in done.stderr and "boom: no such table" in done.stderr


def test_an_unknown_job_is_a_clear_error(jobs_api, ray_head):
    done = jobs("status", "--address", jobs_api.url, "raysubmit_nosuchjob", env={"RAY_AUTH_TOKEN": ray_head.auth_token})
    assert done.returncode == 1
    assert "raysubmit_nosuchjob" in done.stderr and "Traceback" not in done.stderr


def test_an_unreachable_address_is_a_clear_error():
    done = jobs("submit", "--address", f"http://127.0.0.1:{free_port()}", "--", "python", "-c", "pass")
    assert done.returncode == 3
    assert "cannot reach the Ray Jobs API" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("token", ["f" * 32, None], ids=["wrong token", "no token"])
def test_a_refused_token_is_a_clear_error(jobs_api, token):
    env = {"RAY_AUTH_TOKEN": token} if token else {"RAY_AUTH_TOKEN": "", "RAY_AUTH_MODE": "disabled"}
    done = jobs("list", "--address", jobs_api.url, env=env)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "requires its auth token" in done.stderr and "Traceback" not in done.stderr


def test_a_cluster_of_another_ray_version_is_a_clear_error():
    class OldRay(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"version": "4", "ray_version": "2.9.0", "ray_commit": "x"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), OldRay)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        done = jobs("list", "--address", f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    assert done.returncode == 3
    assert "runs Ray 2.9.0" in done.stderr and "install ray==2.9.0" in done.stderr


def test_submit_survives_a_dropped_connection(jobs_api, ray_head):
    script = "import time\nfor i in range(12):\n    print(f'line {i}', flush=True)\n    time.sleep(1)\n"
    process = subprocess.Popen([sys.executable, "-m", "raykube.jobs", "submit", "--address", jobs_api.url, "--", "python", "-c", script],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "RAY_AUTH_TOKEN": ray_head.auth_token})
    try:
        time.sleep(5)
        jobs_api.cut()  # the connection drops mid-job
        time.sleep(5)
        jobs_api.start()
        out, err = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            process.kill()
        if jobs_api.process.poll() is not None:
            jobs_api.start()
    assert process.returncode == 0, out + err
    assert "connection lost" in err and "reconnected" in err
    assert [line for line in out.splitlines() if line.startswith("line ")] == [f"line {i}" for i in range(12)]


def test_a_duplicate_submission_id_is_one_line_not_the_servers_traceback(jobs_api, with_token):
    argv = ("submit", "--address", jobs_api.url, "--submission-id", "raykube-dup", "--no-wait", "--", "python", "-c", "pass")
    assert jobs(*argv).returncode == 0
    again = jobs(*argv)
    assert again.returncode == 1 and "Traceback" not in again.stderr
    (error,) = [line for line in again.stderr.splitlines() if line.startswith("error:")]
    assert "raykube-dup" in error and "already exists" in error and jobs_api.url in error


def test_jobs_list_is_a_table_for_people_and_json_for_scripts(jobs_api, with_token):
    assert jobs("submit", "--address", jobs_api.url, "--submission-id", "raykube-listed", "--no-wait", "--", "python", "-c", "pass").returncode == 0
    table = jobs("list", "--address", jobs_api.url)
    assert table.returncode == 0 and table.stdout.splitlines()[0].split() == ["ID", "STATUS", "ENTRYPOINT"]
    assert any(line.split()[0] == "raykube-listed" for line in table.stdout.splitlines()[1:])
    rows = json.loads(jobs("list", "--address", jobs_api.url, "--output", "json").stdout)
    assert {"id": "raykube-listed", "entrypoint": "python -c pass"}.items() <= next(r for r in rows if r["id"] == "raykube-listed").items()


def test_every_subcommand_has_help():
    for sub in ("submit", "logs", "status", "stop", "list"):
        done = jobs(sub, "--help")
        assert done.returncode == 0 and "--address" in done.stdout and "--stack" in done.stdout


# --- RayJobs declared in a stack ---------------------------------------------------

def test_every_rayjob_passes_the_crd_schema_and_runs_where_it_says(stack_runs):
    from tests.helpers.upstream import validate_rayjob

    jobs_by_stack = {stack: [r.revealed_inputs for r in stack_runs[stack].of_type("kubernetes:ray.io/v1:RayJob")] for stack in ("eks", "gke")}
    for jobs_ in jobs_by_stack.values():
        assert jobs_
        for job in jobs_:
            validate_rayjob(job)
    (own,) = jobs_by_stack["eks"]
    spec = own["spec"]
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] == 300
    assert spec["activeDeadlineSeconds"] == 3600 and spec["backoffLimit"] == 0 and spec["submissionMode"] == "K8sJobMode"
    import yaml

    assert yaml.safe_load(spec["runtimeEnvYAML"])["working_dir"].startswith("s3://my-ray-input-data/raykube/jobs/ray/wine-shap/")
    cluster = spec["rayClusterSpec"]
    assert cluster["authOptions"] == {"mode": "token"}  # the job's own cluster is as closed as the stack's
    assert cluster["headGroupSpec"]["template"]["spec"]["serviceAccountName"] == "ray-s3"  # IRSA reaches it too
    assert cluster["workerGroupSpecs"][0]["replicas"] == 2
    (shared,) = jobs_by_stack["gke"]
    assert shared["spec"]["clusterSelector"] == {"ray.io/cluster": "training"}
    # An existing cluster is never deleted: false is KubeRay's default, left out (the operator's writes drop it).
    assert "shutdownAfterJobFinishes" not in shared["spec"] and "rayClusterSpec" not in shared["spec"]


def test_a_rayjob_waits_for_its_operator_and_cluster_and_is_replaced_when_changed(stack_runs):
    result = stack_runs["gke"]
    (job,) = result.of_type("raykube:index:RayJob")
    waited = {result.by_urn(urn).name for urn in job.dependencies}
    assert "ray-training-training-raycluster" in waited and "kuberay-operator-ray-training-chart" in waited
    # KubeRay does not rerun a changed RayJob: `pulumi up` replaces it, the old one first (same name).
    (custom,) = result.of_type("kubernetes:ray.io/v1:RayJob")
    assert custom.replace_on_changes == ["spec"] and custom.delete_before_replace
    assert result.outputs["rayJobs"]["ray-training/smoke-test"]["statusCommand"].startswith("kubectl -n ray-training get rayjob smoke-test")


def test_the_job_code_is_uploaded_by_the_same_up_and_ray_unpacks_it_as_the_jobs_folder(stack_runs, tmp_path):
    """The EKS stack's RayJob runs code `pulumi up` uploads: an S3 object at exactly the
    working_dir URI, made before the job, holding the example's files, which Ray's own
    unpacking of a remote zip turns into the job's folder."""
    import zipfile

    import yaml
    from ray._private.runtime_env.packaging import unzip_package

    result = stack_runs["eks"]
    (job,) = result.of_type("kubernetes:ray.io/v1:RayJob")
    (upload,) = [code for code in result.of_type("aws:s3/bucketObjectv2:BucketObjectv2") if code.urn in result.of_type("raykube:index:RayJob")[0].dependencies]
    working_dir = yaml.safe_load(job.inputs["spec"]["runtimeEnvYAML"])["working_dir"]
    assert working_dir == f"s3://{upload.inputs['bucket']}/{upload.inputs['key']}" and working_dir.endswith(".zip")
    (component,) = result.of_type("raykube:index:RayJob")
    assert upload.urn in component.dependencies  # the object exists before KubeRay submits the job
    example = ROOT / "examples" / "wine_shap"
    assets = upload.inputs["source"]["assets"]
    tracked = subprocess.run(["git", "ls-files", "."], cwd=example, capture_output=True, text=True, check=True).stdout.split()
    assert sorted(assets) == sorted(tracked)
    # The provider zips an archive's assets under their names; Ray unpacks a remote zip so.
    package = tmp_path / "code.zip"
    with zipfile.ZipFile(package, "w") as archive:
        for name, asset in assets.items():
            archive.write(ROOT / asset["path"], name)
    unzip_package(package_path=str(package), target_dir=str(tmp_path / "job"), remove_top_level_directory=True, unlink_zip=True)
    assert (tmp_path / "job" / "job.py").read_bytes() == (example / "job.py").read_bytes()


def test_changed_job_code_gets_a_new_key_and_the_same_code_keeps_it(tmp_path):
    """Ray caches a remote working_dir by URI: new code must mean a new URI."""
    from raykube.job_code import code_key

    (tmp_path / "job.py").write_text("print(1)\n")
    first = code_key("ray", "j", tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "job.cpython-311.pyc").write_bytes(b"x")
    assert code_key("ray", "j", tmp_path) == first  # caches are not code
    (tmp_path / "job.py").write_text("print(2)\n")
    assert code_key("ray", "j", tmp_path) != first


FAKE_KUBECTL = '''#!{python}
"""Stands in for `kubectl port-forward`: relays a local port to the Jobs API, as kubectl would."""
import json, os, socket, sys, threading
with open(os.environ["FAKE_KUBECTL_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
host, port = os.environ["FAKE_KUBECTL_TARGET"].rsplit(":", 1)
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(16)
print(f"Forwarding from 127.0.0.1:{{listener.getsockname()[1]}} -> 8265", flush=True)

def pipe(a, b):
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        a.close(); b.close()

while True:
    client, _ = listener.accept()
    upstream = socket.create_connection((host, int(port)))
    threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
    threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
'''


def test_a_stack_reaches_its_cluster_by_port_forward_with_the_token_secret(jobs_api, ray_head, control_plane, tmp_path):
    """--stack: the cluster from the settings, kubectl port-forward with the stack's
    kubeconfig, the token from the cluster's Secret (read with the stack's kubeconfig)."""
    import base64

    import yaml

    from tests.helpers.envtest import server_side_apply

    client = control_plane.dynamic()
    server_side_apply(client, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ray-jobs"}})
    server_side_apply(client, {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "wine", "namespace": "ray-jobs"},
                               "data": {"auth_token": base64.b64encode(ray_head.auth_token.encode()).decode()}})
    stack_file = tmp_path / "Pulumi.jobs.yaml"
    stack_file.write_text(yaml.safe_dump({"config": {
        "raykube:target": "eks", "raykube:kubeconfig": control_plane.kubeconfig, "raykube:kubeContext": "",
        "raykube:rayClusters": [{"name": "wine", "namespace": "ray-jobs"}, {"name": "other", "namespace": "ray-other"}]}}))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").write_text(FAKE_KUBECTL.format(python=sys.executable))
    (bin_dir / "kubectl").chmod(0o755)
    log = tmp_path / "kubectl.log"
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_KUBECTL_LOG": str(log),
           "FAKE_KUBECTL_TARGET": jobs_api.url.removeprefix("http://"), "RAY_AUTH_TOKEN": ""}
    ambiguous = jobs("list", "--config", str(stack_file), env=env)
    assert ambiguous.returncode == 2 and "--cluster" in ambiguous.stderr
    done = jobs("list", "--config", str(stack_file), "--cluster", "ray-jobs/wine", env=env)
    assert done.returncode == 0, done.stderr
    (argv,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert argv == ["--kubeconfig", control_plane.kubeconfig, "-n", "ray-jobs", "port-forward", "service/wine-head-svc", ":8265"]


def tiny_wheel(folder: Path) -> Path:
    """A one-module wheel, built by hand (no index, no build backend): what a pip runtime env installs."""
    import base64
    import hashlib
    import zipfile

    files = {"rk_probe.py": "VALUE = 'installed'\n",
             "rk_probe-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: rk-probe\nVersion: 1.0\n",
             "rk_probe-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: raykube-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = [f"{name},sha256={base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b'=').decode()},{len(text.encode())}"
              for name, text in files.items()] + ["rk_probe-1.0.dist-info/RECORD,,"]
    files["rk_probe-1.0.dist-info/RECORD"] = "\n".join(record) + "\n"
    path = folder / "rk_probe-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    return path


def test_a_pip_runtime_env_installs_and_runs_on_a_read_only_image(jobs_api, ray_head, tmp_path):
    """The sandbox's root is read-only like a raykube pod's (readOnlyRootFilesystem), with /tmp writable:
    Ray's runtime-env agent still builds the job's virtualenv (under /tmp/ray) and the task imports from it."""
    wheel = tiny_wheel(tmp_path)
    driver = (
        "import ray\n"
        f"ray.init(address={ray_head.gcs_address!r}, _node_ip_address={ray_head.head_ip!r}, logging_level='ERROR',\n"
        # Not eagerly on every node: here all nodes share one /tmp/ray (on pods each has its own),
        # and two raylets cloning the same virtualenv at once collide.
        f"         runtime_env={{'pip': {{'packages': [{str(wheel)!r}], 'pip_install_options': ['--no-index']}},\n"
        "                      'config': {'eager_install': False}})\n"
        "@ray.remote\n"
        "def probe():\n"
        "    import sys, rk_probe\n"
        "    return rk_probe.VALUE, sys.prefix\n"
        "print('RESULT', *ray.get(probe.remote()))\n"
    )
    done = ray_head.run([sys.executable, "-c", driver], timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    value, prefix = done.stdout.split("RESULT", 1)[1].split()
    assert value == "installed" and "/runtime_resources/pip/" in prefix
    # The image really is read-only in there: nothing outside /tmp and /dev/shm is writable.
    assert ray_head.run(["touch", str(Path.home() / "rk-write-probe")]).returncode != 0


def test_kernel_shap_split_by_rows_or_by_coalitions_on_ray_gives_the_one_process_values(jobs_api, ray_head):
    """Both of kernel_shap's Ray splits on the session's real cluster: by coalitions (exact; the job
    test runs it too) and by rows (sampled, the same coalitions in every task)."""
    driver = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(EXAMPLE)!r})\n"
        "import numpy as np, ray, wine_shap\n"
        f"ray.init(address={ray_head.gcs_address!r}, _node_ip_address={ray_head.head_ip!r}, logging_level='ERROR',\n"
        f"         runtime_env={{'working_dir': {str(EXAMPLE)!r}}})\n"
        "features, scores, _ = wine_shap.parse_csv(wine_shap.wine_csv())\n"
        "model = wine_shap.train(features, scores)\n"
        "background, rows = wine_shap.background(features), features[:6]\n"
        "differences = {}\n"
        "for split, nsamples in (('coalitions', wine_shap.EXACT_NSAMPLES), ('rows', wine_shap.SAMPLES)):\n"
        "    alone = wine_shap.kernel_shap_values(model, background, rows, nsamples)\n"
        "    on_ray = wine_shap.kernel_shap_on_ray(model, background, rows, 3, split, nsamples)\n"
        "    differences[f'{split} {nsamples}'] = float(np.abs(on_ray - alone).max())\n"
        "print('RESULT', json.dumps(differences))\n"
    )
    done = ray_head.run([sys.executable, "-c", driver], timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    differences = json.loads(done.stdout.split("RESULT", 1)[1])
    assert len(differences) == 2 and max(differences.values()) <= 1e-9, differences
