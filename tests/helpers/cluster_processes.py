"""The real programs of the tests' Kubernetes, started and stopped by the tests.

The binaries are the project's own build (`tools/build-go`: kube-apiserver,
etcd, kube-controller-manager, kube-scheduler, kubeadm, the KubeRay operator,
kwok, metrics-server from the Go module proxy at the pins in tools/go/) in
.tools/bin/. Every program listens on 127.0.0.1 only, on ports picked here;
each gets a log file in the cluster's folder. A missing binary skips the test
locally and fails it in CI (CI=true), naming the command that builds it.
"""
from __future__ import annotations

import ctypes
import datetime
import ipaddress
import json
import os
import random
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Iterable, Mapping, Optional

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".tools" / "bin"
# kwok's upstream stage and metrics configurations, from its Go module (tools/build-go).
KWOK_STAGES = ROOT / ".tools" / "kwok"
BUILD_COMMAND = "tools/build-go"
START_TIMEOUT = 90.0
SERVICE_CIDR = "10.0.0.0/24"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
# The default controllers: what Deployments, HPAs, ServiceAccounts, namespace deletion and
# kwok's Nodes (the not-ready taint lifted once Ready) need.
DEFAULT_CONTROLLERS = (
    "deployment-controller,replicaset-controller,horizontal-pod-autoscaler-controller,serviceaccount-controller,"
    "serviceaccount-token-controller,namespace-controller,garbage-collector-controller,"
    "root-ca-certificate-publisher-controller,node-lifecycle-controller"
)


def require_built(path: Path, what: str, executable: bool = False) -> Path:
    """A product of `tools/build-go`: a missing one skips the test locally and fails it in CI."""
    if not (os.access(path, os.X_OK) if executable else path.exists()):
        import pytest

        message = f"{what} {path} is missing: build the test cluster's programs with `{BUILD_COMMAND}`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def binary(name: str) -> str:
    """The path of one of the project's built programs."""
    return str(require_built(BIN / name, "the program", executable=True))


def free_port(taken: set[int]) -> int:
    """A free loopback port below the ephemeral range, so that no outgoing
    connection of this machine takes it between here and the program's bind."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = random.randint(10000, max(10001, low - 1))
        if port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise RuntimeError("no free loopback port")


# --- certificates -----------------------------------------------------------------------

def _key():
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _certificate(subject: list, key, issuer_cert=None, issuer_key=None, *, ca: bool = False,
                 server: bool = False, client: bool = False, sans: Iterable = ()):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID

    name = x509.Name(subject)
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_cert.subject if issuer_cert is not None else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=not ca, key_cert_sign=ca, crl_sign=ca,
                                     content_commitment=False, data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
    )
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] * server + [ExtendedKeyUsageOID.CLIENT_AUTH] * client
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    sans = list(sans)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key if issuer_key is not None else key, hashes.SHA256())


def _write_certificate(path: Path, certificate) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def write_pki(pki: Path) -> None:
    """A cluster CA, the apiserver's serving certificate, an admin client (system:masters), the
    ServiceAccount signing keys, the aggregation layer's front-proxy CA and client, and kwok's
    kubelet serving certificate. Kept when already there (a restart in the same folder)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.x509.oid import NameOID

    if (pki / "kwok.crt").exists():
        return
    pki.mkdir(parents=True, exist_ok=True)
    pki.chmod(0o700)
    cn = lambda value: x509.NameAttribute(NameOID.COMMON_NAME, value)  # noqa: E731
    ca_key = _key()
    ca = _certificate([cn("raykube-tests-ca")], ca_key, ca=True)
    _write_key(pki / "ca.key", ca_key)
    _write_certificate(pki / "ca.crt", ca)
    service_ip = next(ipaddress.ip_network(SERVICE_CIDR).hosts())
    dns = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"]
    loopback = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    signed = {
        "apiserver": ([cn("kube-apiserver")], dict(server=True, sans=[*map(x509.DNSName, dns), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                                      x509.IPAddress(service_ip)])),
        "admin": ([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:masters"), cn("raykube-tests-admin")], dict(client=True)),
        "kwok": ([cn("kwok")], dict(server=True, sans=loopback)),
    }
    for name, (subject, usage) in signed.items():
        key = _key()
        _write_key(pki / f"{name}.key", key)
        _write_certificate(pki / f"{name}.crt", _certificate(subject, key, ca, ca_key, **usage))
    front_proxy_key = _key()
    front_proxy_ca = _certificate([cn("raykube-tests-front-proxy-ca")], front_proxy_key, ca=True)
    _write_key(pki / "front-proxy-ca.key", front_proxy_key)
    _write_certificate(pki / "front-proxy-ca.crt", front_proxy_ca)
    client_key = _key()
    _write_key(pki / "front-proxy-client.key", client_key)
    _write_certificate(pki / "front-proxy-client.crt",
                       _certificate([cn("front-proxy-client")], client_key, front_proxy_ca, front_proxy_key, client=True))
    service_accounts = _key()
    _write_key(pki / "sa.key", service_accounts)
    (pki / "sa.pub").write_bytes(service_accounts.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


# --- processes --------------------------------------------------------------------------

PR_SET_PDEATHSIG = 1


def _end_with_parent() -> None:
    """In the child before exec: SIGKILL when the process that started it ends, so a pytest or
    benchmark killed without its clean-up leaves no control plane behind (Linux's prctl)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class ProcessError(RuntimeError):
    pass


class Processes:
    """Long-running programs of one cluster folder, by name; each logs to DIR/<name>.log."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.running: dict[str, subprocess.Popen] = {}
        self.ports: set[int] = set()

    def port(self) -> int:
        return free_port(self.ports)

    def log(self, name: str) -> Path:
        return self.directory / f"{name}.log"

    def start(self, name: str, argv: list[str], ready, env: Optional[Mapping[str, str]] = None,
              timeout: float = START_TIMEOUT) -> subprocess.Popen:
        """Start `argv` as `name` (its own session: a test's Ctrl-C does not reach it first) and wait
        until `ready()` is true. On failure: the log's last lines, the process stopped, ProcessError."""
        if name in self.running:
            raise ProcessError(f"{name} already runs for {self.directory}")
        with open(self.log(name), "ab") as log:
            log.write(f"--- {datetime.datetime.now(datetime.timezone.utc):%FT%TZ} starting {' '.join(argv)}\n".encode())
            log.flush()
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True, close_fds=True, env={**os.environ, **(env or {})},
                                       preexec_fn=_end_with_parent)
        self.running[name] = process
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            try:
                if ready():
                    return process
            except Exception:  # not listening yet
                pass
            time.sleep(0.25)
        state = f"exited with status {process.returncode}" if process.poll() is not None else f"not ready within {timeout:.0f} s"
        self.stop(name)
        raise ProcessError(f"{name} {state}; last lines of {self.log(name)}:\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 15) -> str:
        try:
            text = self.log(name).read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(line[:400] for line in text[-lines:])

    def stop(self, *names: str) -> None:
        """Stop these (default: all, newest first): SIGTERM, then SIGKILL after 20 s."""
        for name in names or reversed(list(self.running)):
            process = self.running.pop(name, None)
            if process is None:
                continue
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=20)


# --- HTTP probes --------------------------------------------------------------------------

def get(url: str, context: Optional[ssl.SSLContext] = None, timeout: float = 3) -> bytes:
    with urllib.request.urlopen(url, context=context, timeout=timeout) as response:
        return response.read()


def unverified() -> ssl.SSLContext:
    """For the components' self-signed health endpoints, which serve no data."""
    return ssl._create_unverified_context()


def admin_context(pki: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    return context


def kubeconfig_text(server: str, pki: Path) -> str:
    import base64

    data = lambda name: base64.b64encode((pki / name).read_bytes()).decode()  # noqa: E731
    return json.dumps({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "tests", "cluster": {"server": server, "certificate-authority-data": data("ca.crt")}}],
        "users": [{"name": "tests-admin", "user": {"client-certificate-data": data("admin.crt"), "client-key-data": data("admin.key")}}],
        "contexts": [{"name": "tests", "context": {"cluster": "tests", "user": "tests-admin", "namespace": "default"}}],
        "current-context": "tests",
    }, indent=1)


def apiserver_flags(pki: Path, port: int, etcd_url: str, cert_dir: Path) -> list[str]:
    """kube-apiserver on loopback: Node+RBAC, the default admission plugins, the aggregation
    layer (for metrics.k8s.io). --endpoint-reconciler-type=none: Endpoints may not hold a
    loopback address (the kubernetes Service stays, without endpoints)."""
    return [
        "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={port}",
        f"--etcd-servers={etcd_url}",
        f"--tls-cert-file={pki}/apiserver.crt", f"--tls-private-key-file={pki}/apiserver.key",
        f"--client-ca-file={pki}/ca.crt",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={pki}/sa.pub", f"--service-account-signing-key-file={pki}/sa.key",
        f"--service-cluster-ip-range={SERVICE_CIDR}", "--authorization-mode=Node,RBAC",
        "--allow-privileged=true", "--profiling=false", f"--cert-dir={cert_dir}",
        "--endpoint-reconciler-type=none",
        f"--requestheader-client-ca-file={pki}/front-proxy-ca.crt", "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki}/front-proxy-client.crt", f"--proxy-client-key-file={pki}/front-proxy-client.key",
        "--v=1",
    ]


def with_retries(start, attempts: int = 5):
    """Start again on new ports when another process took one between pick and bind."""
    for attempt in range(attempts):
        try:
            return start()
        except ProcessError as error:
            if "address already in use" not in str(error) or attempt == attempts - 1:
                raise


class Cluster:
    """etcd + kube-apiserver in `directory`; the other programs on demand."""

    def __init__(self, directory: Path, apiserver_extra_flags: Iterable[str] = ()) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.pki = self.directory / "pki"
        self.processes = Processes(self.directory)
        write_pki(self.pki)
        try:
            self.etcd_url = with_retries(self._start_etcd)
            self.server = with_retries(lambda: self._start_apiserver(list(apiserver_extra_flags)))
        except BaseException:
            self.processes.stop()
            raise
        self.kubeconfig = self.directory / "kubeconfig"
        self.kubeconfig.write_text(kubeconfig_text(self.server, self.pki))
        self.kubeconfig.chmod(0o600)

    def _start_etcd(self) -> str:
        client, peer = self.processes.port(), self.processes.port()
        url = f"http://127.0.0.1:{client}"
        self.processes.start("etcd", [
            binary("etcd"), "--name=tests", f"--data-dir={self.directory / 'etcd-data'}",
            f"--listen-client-urls={url}", f"--advertise-client-urls={url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}", f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=tests=http://127.0.0.1:{peer}",
            # A test cluster's data need not survive a power cut: no fsync, far less I/O wait.
            "--unsafe-no-fsync",
        ], ready=lambda: json.loads(get(f"{url}/health"))["health"] == "true")
        return url

    def _start_apiserver(self, extra: list[str]) -> str:
        port = self.processes.port()
        context = admin_context(self.pki)
        self.processes.start("kube-apiserver", [
            binary("kube-apiserver"), *apiserver_flags(self.pki, port, self.etcd_url, self.pki / "generated"), *extra,
        ], ready=lambda: get(f"https://127.0.0.1:{port}/readyz", context) == b"ok")
        return f"https://127.0.0.1:{port}"

    def _secure_component(self, name: str, flags: list[str], health: str = "healthz", env=None) -> int:
        def start() -> int:
            port = self.processes.port()
            self.processes.start(name, [binary(name), *self._client_flags(), "--bind-address=127.0.0.1",
                                        f"--secure-port={port}", f"--cert-dir={self.pki / name}", *flags],
                                 ready=lambda: get(f"https://127.0.0.1:{port}/{health}", unverified()) == b"ok", env=env)
            return port

        return with_retries(start)

    def _client_flags(self) -> list[str]:
        return [f"--kubeconfig={self.kubeconfig}", f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}"]

    def controller_manager(self, flags: Iterable[str] = ()) -> None:
        """kube-controller-manager with the default controllers unless `--controllers` is given."""
        flags = list(flags)
        controllers = [] if any(flag.startswith("--controllers") for flag in flags) else [f"--controllers={DEFAULT_CONTROLLERS}"]
        self._secure_component("kube-controller-manager", [
            "--leader-elect=false", "--use-service-account-credentials=true",
            f"--service-account-private-key-file={self.pki}/sa.key", f"--root-ca-file={self.pki}/ca.crt",
            *controllers, *flags,
        ])

    def scheduler(self, flags: Iterable[str] = ()) -> None:
        self._secure_component("kube-scheduler", ["--leader-elect=false", *flags])

    def kwok(self, flags: Iterable[str] = ()) -> None:
        """kwok as the kubelet of every Node annotated kwok.x-k8s.io/node=fake, with its upstream stages."""
        stages = sorted(require_built(KWOK_STAGES, "kwok's stage configurations").glob("*.yaml"))
        config = self.directory / "kwok-config.yaml"
        config.write_text("\n---\n".join(path.read_text() for path in stages))

        def start() -> None:
            port = self.processes.port()
            self.processes.start("kwok", [
                binary("kwok"), f"--kubeconfig={self.kubeconfig}", "-c", str(config),
                "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--node-ip=127.0.0.1", f"--node-port={port}", f"--server-address=127.0.0.1:{port}",
                f"--tls-cert-file={self.pki}/kwok.crt", f"--tls-private-key-file={self.pki}/kwok.key",
                "--cidr=10.244.0.0/16", *flags,
            ], ready=lambda: get(f"https://127.0.0.1:{port}/healthz", unverified()) is not None)

        with_retries(start)

    def metrics_server(self, flags: Iterable[str] = ()) -> None:
        """metrics-server scraping kwok's Nodes, registered as metrics.k8s.io through a Service of type
        ExternalName (an Endpoints object may not hold a loopback address). It serves data after its first
        scrape of a Node that runs Pods."""
        flags = list(flags)
        resolution = [] if any(flag.startswith("--metric-resolution=") for flag in flags) else ["--metric-resolution=15s"]
        port = self._secure_component("metrics-server", [
            "--kubelet-insecure-tls", "--kubelet-preferred-address-types=InternalIP", "--kubelet-use-node-status-port",
            *resolution, *flags,
        ], health="livez")
        self.metrics_server_port = port
        self.register_metrics_server()

    def register_metrics_server(self) -> None:
        """metrics.k8s.io served by the harness's metrics-server (again, after a stack's own chart went)."""
        from tests.helpers.envtest import server_side_apply

        client, port = self.dynamic(), self.metrics_server_port
        server_side_apply(client, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "metrics-server", "namespace": "kube-system"},
                                   "spec": {"type": "ExternalName", "externalName": "localhost", "ports": [{"name": "https", "port": port}]}},
                          "tests-cluster", force=True)
        server_side_apply(client, {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1beta1.metrics.k8s.io"},
                                   "spec": {"service": {"name": "metrics-server", "namespace": "kube-system", "port": port},
                                            "group": "metrics.k8s.io", "version": "v1beta1", "insecureSkipTLSVerify": True,
                                            "groupPriorityMinimum": 100, "versionPriority": 100}},
                          "tests-cluster", force=True)

    def unregister_metrics_server(self) -> None:
        """Leave metrics.k8s.io to a stack that installs metrics-server's chart (its APIService and Service
        take those names), as on a kubeadm cluster that has none yet. The process keeps running."""
        from kubernetes.client.rest import ApiException

        client = self.dynamic()
        for api_version, kind, name, namespace in (("apiregistration.k8s.io/v1", "APIService", "v1beta1.metrics.k8s.io", None),
                                                   ("v1", "Service", "metrics-server", "kube-system")):
            try:
                client.resources.get(api_version=api_version, kind=kind).delete(name=name, namespace=namespace)
            except ApiException as error:
                if error.status != 404:
                    raise

    def node(self, name: str, cpu: str = "32", memory: str = "256Gi", pods: str = "110") -> None:
        """A Node kwok acts for; returns once it is Ready and its start-up taints are gone."""
        from tests.helpers.envtest import server_side_apply, wait_for

        client = self.dynamic()
        server_side_apply(client, {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0",
                                                       "metrics.k8s.io/resource-metrics-path": f"/metrics/nodes/{name}/metrics/resource"},
                         "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok"}},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods}, "capacity": {"cpu": cpu, "memory": memory, "pods": pods}},
        }, "tests-cluster", force=True)
        nodes = client.resources.get(api_version="v1", kind="Node")

        def ready() -> bool:
            node = nodes.get(name=name).to_dict()
            conditions = {c["type"]: c["status"] for c in (node.get("status") or {}).get("conditions") or ()}
            taints = [t for t in (node.get("spec") or {}).get("taints") or () if t["key"].startswith("node.kubernetes.io/")]
            return conditions.get("Ready") == "True" and not taints

        wait_for(ready, START_TIMEOUT, f"Node {name} to be Ready and untainted (kwok log: {self.processes.log('kwok')})")

    def kuberay_operator(self, name: str, flags: Iterable[str], env: Optional[Mapping[str, str]] = None) -> tuple[int, str]:
        """The KubeRay operator out of cluster against this apiserver (no leader election, loopback
        metrics and probes). Returns its PID and its metrics address."""
        def start() -> tuple[int, str]:
            metrics, health = self.processes.port(), self.processes.port()
            process = self.processes.start(name, [
                binary("kuberay-operator"), f"--kubeconfig={self.kubeconfig}", "--enable-leader-election=false",
                f"--metrics-addr=127.0.0.1:{metrics}", f"--health-probe-bind-address=127.0.0.1:{health}", *flags,
            ], ready=lambda: get(f"http://127.0.0.1:{health}/readyz") == b"ok", env=env)
            return process.pid, f"127.0.0.1:{metrics}"

        return with_retries(start)

    def api_client(self):
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig), client_configuration=configuration)
        return client.ApiClient(configuration)

    def dynamic(self):
        from kubernetes import dynamic

        return dynamic.DynamicClient(self.api_client())

    def stop(self, *names: str) -> None:
        self.processes.stop(*names)
