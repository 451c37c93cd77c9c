"""Token authentication: KubeRay's token reaches every Ray process, a client without it is refused."""
from __future__ import annotations

import re
import time

from tests.helpers.program import DEPLOYMENT, RAYCLUSTER, STACKS, run_program, the_cluster, with_cluster


# --- token authentication --------------------------------------------------------

def test_token_auth_reaches_head_kuberay_workers_and_pool_workers(stack_runs):
    for stack in STACKS:
        for cluster in stack_runs[stack].of_type(RAYCLUSTER):
            # KubeRay generates the token Secret and injects it into head and worker pods.
            assert cluster.inputs["spec"]["authOptions"] == {"mode": "token"}, stack
    pool = stack_runs["local"].of_type(DEPLOYMENT)[0].inputs["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pool["volumes"]}
    for container in [*pool["containers"], *pool["initContainers"]]:
        env = {item["name"]: item for item in container["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        # The token is a file of KubeRay's Secret, never an environment value.
        assert "RAY_AUTH_TOKEN" not in env and not any("secretKeyRef" in item.get("valueFrom", {}) for item in env.values())
        path = env["RAY_AUTH_TOKEN_PATH"]["value"]
        (mount,) = [mount for mount in container["volumeMounts"] if path.startswith(mount["mountPath"] + "/")]
        assert mount["readOnly"] is True
        secret = volumes[mount["name"]]["secret"]
        assert secret["secretName"] == "raycluster"
        assert secret["items"] == [{"key": "auth_token", "path": path.rsplit("/", 1)[1]}]
    outputs = stack_runs["local"].outputs["rayClusters"]["ray/raycluster"]
    assert outputs["authTokenCommand"] == "kubectl -n ray get secret raycluster -o jsonpath='{.data.auth_token}' | base64 -d"


def test_auth_can_be_disabled():
    result = run_program(with_cluster("local", auth={"mode": "disabled"}), "local")
    assert "authOptions" not in the_cluster(result)["spec"]
    pool = result.of_type(DEPLOYMENT)[0].inputs["spec"]["template"]["spec"]["containers"][0]
    assert not {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"} & {item["name"] for item in pool["env"]}
    assert "raycluster" not in [volume.get("secret", {}).get("secretName") for volume in
                                result.of_type(DEPLOYMENT)[0].inputs["spec"]["template"]["spec"]["volumes"]]
    assert result.outputs["rayClusters"]["ray/raycluster"]["authTokenCommand"] == ""


def test_ready_timeout_reaches_pulumis_wait():
    result = run_program(with_cluster("eks", readyTimeoutSeconds=1800), "eks")
    assert the_cluster(result)["metadata"]["annotations"]["pulumi.com/timeoutSeconds"] == "1800"


# --- a real Ray cluster with token authentication ---------------------------------

def test_pool_worker_with_init_container_and_probes_joins_with_the_token(stack_runs, ray_head, tmp_path):
    """The init container's wait, `ray start` and the probes, as the kubelet runs them,
    against the session's Ray head, which requires the token: read from the
    mounted Secret file, with no token in the environment."""
    from tests.helpers.kubelet import container_env, expand, mount_secret_volumes, relocate
    from tests.helpers.ray_sandbox import OBJECT_STORE_BYTES, RAY

    pod = stack_runs["local"].of_type(DEPLOYMENT)[0].inputs["spec"]["template"]["spec"]
    worker_ip = "127.0.0.6"
    secrets = {("raycluster", "auth_token"): ray_head.auth_token}
    no_env_token = {"RAY_AUTH_TOKEN": ""}  # the sandbox gives every process one; a pool container has none
    (init,) = pod["initContainers"]
    init_env = {**relocate(container_env(init, worker_ip, secrets), mount_secret_volumes(pod, init, secrets, tmp_path / "init")),
                **no_env_token, "RAY_GCS_ADDRESS": ray_head.gcs_address}
    started = time.monotonic()
    done = ray_head.run(init["command"], env=init_env, timeout=60)
    assert done.returncode == 0 and "GCS is ready." in done.stdout, done.stdout + done.stderr
    assert time.monotonic() - started < 30
    # Without the token the head does not answer the init container's check.
    wrong_file = tmp_path / "wrong-token"
    wrong_file.write_text("0" * 32)
    wrong = ray_head.run(["bash", "-c", "ray health-check --address \"$RAY_GCS_ADDRESS\""],
                         env={**init_env, "RAY_AUTH_TOKEN_PATH": str(wrong_file)}, timeout=60)
    assert wrong.returncode != 0

    container = pod["containers"][0]
    env = {**relocate(container_env(container, worker_ip, secrets), mount_secret_volumes(pod, container, secrets, tmp_path / "worker")),
           **no_env_token, "RAY_GCS_ADDRESS": ray_head.gcs_address}
    argv = [RAY] + [expand(arg, env) for arg in container["args"]] + [f"--object-store-memory={OBJECT_STORE_BYTES}"]
    worker = ray_head.spawn(argv, "token-worker", env=env)
    try:
        nodes = {node["NodeManagerAddress"] for node in ray_head.wait_for_nodes(2)}
        assert worker_ip in nodes, ray_head.log("token-worker")
        probe = container["readinessProbe"]["httpGet"]
        url = f"http://{worker_ip}:{probe['port']}{probe['path']}"  # the kubelet probes the pod IP
        fetch = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read().decode())"
        deadline = time.monotonic() + 60
        while True:
            answer = ray_head.run(["python3", "-c", fetch], timeout=30)
            if answer.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(2)
        assert answer.returncode == 0 and "raylet: success" in answer.stdout, answer.stderr
        # A client without the token is refused; one with it gets in.
        driver = f"import ray; ray.init(address={ray_head.gcs_address!r}, _node_ip_address={ray_head.head_ip!r}, logging_level='ERROR'); print('IN', len(ray.nodes()))"
        import sys

        allowed = ray_head.run([sys.executable, "-c", driver], timeout=120)
        assert allowed.returncode == 0 and "IN" in allowed.stdout, allowed.stderr
        # (A refused client retries for ~20 s by default; 3 tries say the same faster.)
        for who, extra in {"a wrong token": {"RAY_AUTH_TOKEN": "f" * 32},
                           "no token": {"RAY_AUTH_MODE": "disabled", "RAY_AUTH_TOKEN": ""}}.items():
            refused = ray_head.run([sys.executable, "-c", driver], env={**extra, "RAY_NUM_REDIS_GET_RETRIES": "3"}, timeout=120)
            assert refused.returncode != 0 and "IN" not in refused.stdout, f"{who}: {refused.stdout}"
            assert re.search(r"(?i)auth|unauthenticated|token", refused.stderr), f"{who}: {refused.stderr[-500:]}"
    finally:
        ray_head.signal(worker, 15)
        ray_head.wait(worker, timeout=120)
