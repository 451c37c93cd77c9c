"""Ray Serve on the sandbox's head as the KubeRay operator drives it, reached from this host.

The operator (ray-operator's dashboard client) turns a RayService's serveConfigV2
YAML into JSON and PUTs it to the head's dashboard at /api/serve/applications/,
then polls GET /api/serve/applications/?api_type=declarative until every
application is RUNNING; with token auth it sends `x-ray-authorization: Bearer
<token>`. The sandbox's ports live in its own network namespace: SandboxPort
relays one onto 127.0.0.1 of this host (tests/helpers/unix_tcp_bridge.py).
"""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

BRIDGE = str(Path(__file__).parent / "unix_tcp_bridge.py")
APPLICATIONS = "/api/serve/applications/"


class SandboxPort:
    """host:port inside the sandbox, as http://127.0.0.1:<free port> here. Open it once something
    listens there: its start-up probe connects through, and the bridge ends at a refused connection."""

    def __init__(self, ray_head, host: str, port: int, directory: Path, name: str):
        self.ray_head = ray_head
        socket_path = str(directory / f"{name}.sock")
        self.inside = ray_head.spawn([sys.executable, BRIDGE, "unix-to-tcp", socket_path, host, str(port)], f"{name}-bridge")
        deadline = time.monotonic() + 10
        while not Path(socket_path).exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"the relay to the sandbox's {host}:{port} did not start: {ray_head.log(f'{name}-bridge')}")
            time.sleep(0.1)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.outside = subprocess.Popen([sys.executable, BRIDGE, "tcp-to-unix", "127.0.0.1", str(self.port), socket_path])
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.close()
                    raise
                time.sleep(0.1)

    def close(self) -> None:
        self.outside.kill()
        self.outside.wait()
        self.ray_head.signal(self.inside, 9)


def http(method: str, url: str, body=None, headers: dict | None = None, timeout: float = 30) -> tuple[int, str]:
    """(status, body text); HTTP errors are answers, not exceptions."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={**({"Content-Type": "application/json"} if data else {}), **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def progress(applications: dict) -> dict:
    """Each application's and deployment's status and message: why it is not RUNNING yet."""
    return {name: {"status": app.get("status"), "message": app.get("message"),
                   "deployments": {d: {"status": v.get("status"), "message": v.get("message"),
                                       "replicas": [r.get("state") for r in v.get("replicas") or []]}
                                   for d, v in (app.get("deployments") or {}).items()}}
            for name, app in applications.items()}


def serve_logs(ray_head, lines: int = 40) -> str:
    """The tail of the session's Serve logs (controller, proxies, replicas) and runtime-env logs
    (a working_dir or pip that will not install): why a deployment hangs."""
    folder = ray_head.workdir / "ray" / "session_latest" / "logs"
    paths = sorted((folder / "serve").glob("*.log")) + sorted(folder.glob("runtime_env*.log"))
    return "\n".join(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) for path in paths)


class ServeApi:
    """The dashboard's Serve REST API, called as the operator calls it."""

    def __init__(self, dashboard_url: str, auth_token: str):
        self.url = dashboard_url + APPLICATIONS
        self.headers = {"x-ray-authorization": f"Bearer {auth_token}"}

    def put(self, config: dict) -> None:
        status, text = http("PUT", self.url, config, self.headers)
        assert status == 200, f"PUT {APPLICATIONS}: {status} {text}"

    def applications(self) -> dict:
        status, text = http("GET", self.url + "?api_type=declarative", headers=self.headers)
        assert status == 200, f"GET {APPLICATIONS}: {status} {text}"
        return json.loads(text).get("applications") or {}

    def wait(self, name: str, status: str, timeout: float) -> dict:
        """The application once Serve reports `status` (RUNNING, DEPLOY_FAILED, ...) for it; waiting
        for RUNNING fails at once, with Serve's message, if the deployment fails."""
        deadline = time.monotonic() + timeout
        while True:
            application = self.applications().get(name) or {}
            if application.get("status") == status:
                return application
            assert status != "RUNNING" or application.get("status") != "DEPLOY_FAILED", \
                f"Serve could not deploy {name}: {application.get('message')}"
            assert time.monotonic() < deadline, f"{name} not {status} after {timeout} s: {json.dumps(progress({name: application}), indent=1)}"
            time.sleep(1)

    def shutdown(self, timeout: float = 60) -> None:
        """DELETE: Serve shuts down (controller, proxies, replicas), leaving the cluster as it was."""
        status, text = http("DELETE", self.url, headers=self.headers, timeout=timeout)
        assert status == 200, f"DELETE {APPLICATIONS}: {status} {text}"
