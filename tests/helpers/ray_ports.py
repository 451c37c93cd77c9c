"""The connections a Ray cluster needs, read from the pinned `ray` package itself.

`ray start --help` is Ray's documentation of its ports: each option's default
(or the default its help text states) for the fixed ports, and "random" for
those Ray picks at start (node manager, object manager, the dashboard agent's
gRPC, the runtime-env agent, metrics export unless set). Nothing here comes
from raykube's constants, so a Ray that moves a port fails the policy tests.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Stand-ins for "a port Ray picks at start": anywhere in the ephemeral range and below it.
RANDOM_PORTS = (20000, 33333, 45678, 61000)


@dataclass(frozen=True)
class Flow:
    source: str  # "worker", "head", "client" (a pod of the namespace that submits jobs)
    destination: str  # "head", "worker"
    port: int
    why: str


def _options() -> dict:
    from ray.scripts.scripts import start

    return {param.name: param for param in start.params}


def _default(option, stated_in_help: str = r"default(?:s)? to (\d+)") -> int | None:
    value = option.default
    if isinstance(value, int) and value > 0:
        return value
    match = re.search(stated_in_help, option.help or "")
    return int(match.group(1)) if match else None


def documented_ports() -> dict[str, list[int]]:
    """{option: ports}: a fixed default, the worker port range, or RANDOM_PORTS."""
    options = _options()
    ports: dict[str, list[int]] = {}
    for name in ("port", "dashboard_port", "ray_client_server_port", "dashboard_agent_listen_port"):
        fixed = _default(options[name])
        assert fixed, f"ray start --{name.replace('_', '-')} documents no default port"
        ports[name] = [fixed]
    low, high = options["min_worker_port"].default, options["max_worker_port"].default
    ports["worker_ports"] = sorted({low, (low + high) // 2, high})
    for name in ("node_manager_port", "object_manager_port", "dashboard_agent_grpc_port", "runtime_env_agent_port", "metrics_export_port"):
        assert name in options, f"ray start has no --{name.replace('_', '-')}"
        fixed = _default(options[name])
        ports[name] = [fixed] if fixed else list(RANDOM_PORTS)
    return ports


def needed_flows() -> list[Flow]:
    """Who connects to whom in a Ray cluster on Kubernetes, on which documented ports."""
    ports = documented_ports()
    flows = [Flow("worker", "head", port, "GCS (--port)") for port in ports["port"]]
    node_to_node = ["node_manager_port", "object_manager_port", "worker_ports", "dashboard_agent_listen_port",
                    "dashboard_agent_grpc_port", "runtime_env_agent_port", "metrics_export_port"]
    for source, destination in (("worker", "head"), ("head", "worker"), ("worker", "worker")):
        flows += [Flow(source, destination, port, option) for option in node_to_node for port in ports[option]]
    flows += [Flow("client", "head", port, option) for option in ("dashboard_port", "ray_client_server_port") for port in ports[option]]
    return flows


def head_service_ports() -> dict[str, int]:
    """GCS, dashboard/Jobs API and Ray Client: what a pod outside the Ray namespace must not reach."""
    ports = documented_ports()
    return {"GCS": ports["port"][0], "Jobs API": ports["dashboard_port"][0], "Ray Client": ports["ray_client_server_port"][0]}


# What the KubeRay operator does to every Ray container it makes: a containerPort
# named `metrics` and `ray start --metrics-export-port` on it (KubeRay's
# DefaultMetricsPort). tests/test_under_the_operator.py reads it off the pods the
# real v1.7.0 operator creates.
KUBERAY_METRICS_PORT = 8080
# In the Ray sandbox every node shares one network namespace and Ray's metrics
# exporter listens on all addresses, so each node there needs a port of its own:
# the head's, and one for a scraped pool worker. Tests map the pods' `metrics`
# port names to these numbers.
SANDBOX_HEAD_METRICS_PORT = 8090  # (pool workers started by other tests keep their own 8080)
SANDBOX_WORKER_METRICS_PORT = 8081
