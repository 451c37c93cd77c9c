"""The operator's way to a RayService's Ray: every address of the simulated cluster leads to the
session's one real Ray head.

What KubeRay v1.6.1's RayService controller contacts (ray-operator/controllers/ray):
- the dashboard, for the Serve API (PUT/GET /api/serve/applications/, `x-ray-authorization:
  Bearer <token>` from the Secret named after the RayCluster): rayservice_controller.go
  reconcileServe -> utils.FetchHeadServiceURL, `http://<head-svc>.<ns>.svc.<CLUSTER_DOMAIN or
  cluster.local>:<port named dashboard>` (the head Service is headless by default: the name
  resolves to the head pod's IP); its answers decide whether a cluster is ready to serve
  (getAndCheckServeStatus: every application RUNNING);
- each head pod's Serve proxy, `http://<pod IP>:<port named serve>/-/healthz`
  (updateHeadPodServeLabel -> utils.RayHttpProxyClient.CheckProxyActorHealth), which sets the
  pod's `ray.io/serve` label that the serve Service selects; Ready is "the serve Service has a
  ready endpoint" (calculateConditions: NumServeEndpoints > 0, counted from EndpointSlices).

ServeReach runs the namespace's operator (the chart's flags, as SimulatedCluster starts it) inside
tests/helpers/serve_network.py's namespaces and plays the cluster's DNS for it (hosts lines from
the live Services and EndpointSlices). Stand-ins, by design: every pod and Service IP reaches the
one real head (two RayClusters of a RayService are one Ray cluster behind them); the auth Secret
the operator makes for each RayCluster is given the real head's token (it made a random one for
heads that kwok does not run); worker pods are Ready because kwok says so (their readiness probe,
the proxy's health, runs nowhere).
"""
from __future__ import annotations

import base64
import http.client
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Optional
from urllib.parse import urlparse

from tests.helpers.cluster_processes import SERVICE_CIDR, binary

HERE = Path(__file__).resolve().parent
BRIDGE = str(HERE / "unix_tcp_bridge.py")
NETWORK = str(HERE / "serve_network.py")
POD_CIDR = "10.244.0.0/16"  # kwok's --cidr (tests/helpers/cluster_processes.py)
CLUSTER_DOMAIN = "cluster.local"  # the operator's default (no CLUSTER_DOMAIN in the chart's env)
DASHBOARD_PORT, SERVE_PORT = 8265, 8000
AUTH_TOKEN_KEY = "auth_token"  # utils.RAY_AUTH_TOKEN_SECRET_KEY


def _wait_for_path(path: Path, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.05)


class ServeReach:
    def __init__(self, sim, ray_head, namespace: str) -> None:
        self.sim, self.ray_head, self.namespace = sim, ray_head, namespace
        self.directory = Path(tempfile.mkdtemp(prefix="rk-serve-"))  # short: unix socket paths
        self.hosts = self.directory / "hosts"
        self.hosts.write_text("127.0.0.1 localhost\n")
        self.answering = self.directory / "answering"
        self.answering.write_text("")
        self.held: Optional[Callable[[object], bool]] = None
        self.dial_socket = self.directory / "dial.sock"
        self.head_sockets = {port: self.directory / f"head-{port}.sock" for port in (DASHBOARD_PORT, SERVE_PORT)}
        self.relays = [ray_head.spawn([sys.executable, NETWORK, "relay", str(path), ray_head.head_ip, str(port)], f"serve-reach-{port}")
                       for port, path in self.head_sockets.items()]
        api = urlparse(sim.plane.server)
        self.apiserver_port = api.port
        self.apiserver_socket = self.directory / "apiserver.sock"
        self.apiserver_relay = subprocess.Popen([sys.executable, BRIDGE, "unix-to-tcp", str(self.apiserver_socket), api.hostname, str(api.port)])
        for path in [*self.head_sockets.values(), self.apiserver_socket]:
            _wait_for_path(path, f"the relay at {path}")
        self._stop = threading.Event()
        self.watcher = threading.Thread(target=self._watch, daemon=True)
        self.watcher.start()
        # SimulatedCluster.start_operator starts operators through the plane: this one, in its network.
        sim.plane.kuberay_operator = self.kuberay_operator
        self.operator_names: list[str] = []

    # --- the operator ---------------------------------------------------------------------------

    def kuberay_operator(self, name: str, flags, env=None) -> tuple[int, str]:
        """cluster_processes.Cluster.kuberay_operator's contract, run inside serve_network.py."""
        processes = self.sim.plane.processes
        metrics, health = processes.port(), processes.port()
        ready = self.directory / f"{name}.ready"
        ready.unlink(missing_ok=True)
        settings = self.directory / f"{name}.json"
        settings.write_text(json.dumps({
            "local_cidrs": [POD_CIDR, SERVICE_CIDR], "hosts": str(self.hosts), "answering": str(self.answering),
            "apiserver_port": self.apiserver_port, "apiserver_socket": str(self.apiserver_socket), "dial_socket": str(self.dial_socket),
            "head_sockets": {str(port): str(path) for port, path in self.head_sockets.items()},
            "argv": [binary("kuberay-operator"), f"--kubeconfig={self.sim.plane.kubeconfig}", "--enable-leader-election=false",
                     f"--metrics-addr=127.0.0.1:{metrics}", f"--health-probe-bind-address=127.0.0.1:{health}", *flags],
            "env": dict(env or {}), "readyz": f"http://127.0.0.1:{health}/readyz", "ready": str(ready),
        }))
        process = processes.start(name, ["unshare", "-rmn", sys.executable, NETWORK, str(settings)], ready=ready.exists)
        self.operator_names.append(name)
        return process.pid, f"127.0.0.1:{metrics}"

    # --- the cluster's DNS and the heads' token -----------------------------------------------

    def _ready_addresses(self, service: str) -> list[tuple[str, Optional[str]]]:
        """(address, pod name) of the Service's ready endpoints, as EndpointSlices list them."""
        from kubernetes import client

        slices = client.DiscoveryV1Api(self.sim.api_client).list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"kubernetes.io/service-name={service}").items
        return [(address, endpoint.target_ref.name if endpoint.target_ref else None)
                for piece in slices for endpoint in piece.endpoints or ()
                if endpoint.conditions and endpoint.conditions.ready for address in endpoint.addresses]

    def _hosts_lines(self, services) -> list[str]:
        lines = ["127.0.0.1 localhost"]
        for service in services:
            name = f"{service.metadata.name}.{self.namespace}.svc.{CLUSTER_DOMAIN}"
            if service.spec.cluster_ip and service.spec.cluster_ip != "None":
                lines.append(f"{service.spec.cluster_ip} {name}")
            else:  # headless: the ready pods' addresses
                lines += [f"{address} {name}" for address, _ in self._ready_addresses(service.metadata.name)]
        return lines

    def _give_heads_the_token(self) -> None:
        from kubernetes.client.rest import ApiException

        clusters = self.sim.dynamic.resources.get(api_version="ray.io/v1", kind="RayCluster").get(namespace=self.namespace).items
        token = base64.b64encode(self.ray_head.auth_token.encode()).decode()
        for cluster in clusters:
            try:
                secret = self.sim.core.read_namespaced_secret(cluster.metadata.name, self.namespace)
            except ApiException as error:
                if error.status == 404:
                    continue
                raise
            if (secret.data or {}).get(AUTH_TOKEN_KEY) != token:
                self.sim.core.patch_namespaced_secret(cluster.metadata.name, self.namespace, {"data": {AUTH_TOKEN_KEY: token}})

    def _answering(self, services) -> set[str]:
        """Addresses whose Ray answers: live pods' (Running, not being deleted, not held back) and Services'."""
        held = self.held or (lambda pod: False)
        pods = {pod.status.pod_ip for pod in self.sim.pods(self.namespace) if pod.status.phase == "Running" and pod.status.pod_ip and not held(pod)}
        return pods | {service.spec.cluster_ip for service in services if service.spec.cluster_ip not in (None, "None")}

    @staticmethod
    def _rewrite(path: Path, text: str) -> None:
        with open(path, "r+") as file:  # in place: the operator's namespace bind-mounts this inode
            file.write(text)
            file.truncate()

    def _watch(self) -> None:
        written = {self.hosts: "", self.answering: ""}
        while not self._stop.wait(0.2):
            try:
                services = self.sim.core.list_namespaced_service(self.namespace).items
                for path, lines in ((self.hosts, self._hosts_lines(services)), (self.answering, sorted(self._answering(services)))):
                    text = "\n".join(lines) + "\n"
                    if text != written[path]:
                        self._rewrite(path, text)
                        written[path] = text
                self._give_heads_the_token()
            except Exception:  # the namespace is not there yet, or is going away
                pass

    # --- what tests do --------------------------------------------------------------------------

    def hold_back(self, held: Optional[Callable[[object], bool]]) -> None:
        """The Ray of pods for which `held(pod)` is true does not answer (connections reset), as pods whose
        Ray is not up yet; judged with each look at the pods, so a new pod never answers before it is
        judged. None ends it."""
        self.held = held

    def dial(self, address: str, port: int, timeout: float = 30) -> socket.socket:
        """A connection to address:port of the cluster's network."""
        connection = socket.socket(socket.AF_UNIX)
        connection.settimeout(timeout)
        connection.connect(str(self.dial_socket))
        connection.sendall(f"{address} {port}\n".encode())
        return connection

    def request(self, address: str, port: int, method: str, path: str, body=None, timeout: float = 30) -> tuple[int, str]:
        reach = self

        class Dialed(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = reach.dial(address, port, timeout)

        connection = Dialed(address, port, timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            connection.request(method, path, data, {"Content-Type": "application/json"} if data else {})
            answer = connection.getresponse()
            return answer.status, answer.read().decode()
        finally:
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self.watcher.join(timeout=5)
        for name in self.operator_names:
            self.sim.plane.stop(name)
        self.sim.plane.__dict__.pop("kuberay_operator", None)
        self.apiserver_relay.kill()
        self.apiserver_relay.wait()
        for relay in self.relays:
            self.ray_head.signal(relay, 9)
        shutil.rmtree(self.directory, ignore_errors=True)


class ServeTraffic:
    """A client of the serve Service the whole time: each request goes to one of the Service's ready
    endpoints (round robin, as kube-proxy would), on the serve port. A request with no ready endpoint to
    go to, or without a 200, is a failure."""

    def __init__(self, reach: ServeReach, service: str, path: str, body: dict, pause: float = 0.2):
        self.reach, self.service, self.path, self.body, self.pause = reach, service, path, body, pause
        self.answered: list[str] = []  # the pod that answered each good request
        self.failures: list[str] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "ServeTraffic":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.thread.join(timeout=60)

    def _run(self) -> None:
        turn = 0
        while not self._stop.is_set():
            try:
                endpoints = self.reach._ready_addresses(self.service)
            except Exception:  # the apiserver, not the service: ask again
                time.sleep(self.pause)
                continue
            if not endpoints:
                self.failures.append(f"{time.strftime('%X')} no ready endpoint in {self.service}")
            else:
                address, pod = endpoints[turn % len(endpoints)]
                turn += 1
                try:
                    status, text = self.reach.request(address, SERVE_PORT, "POST", self.path, self.body)
                    if status == 200:
                        self.answered.append(pod or address)
                    else:
                        self.failures.append(f"{time.strftime('%X')} {pod} {address}: {status} {text[:200]}")
                except OSError as error:
                    self.failures.append(f"{time.strftime('%X')} {pod} {address}: {error}")
            time.sleep(self.pause)
