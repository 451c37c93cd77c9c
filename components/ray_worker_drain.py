"""preStop hook of an HPA-scaled Ray worker: drain the node, wait until idle.

Runs inside the Ray container, so it uses nothing but `ray` itself. Ray's own
drain facility (`ray drain-node`, reason PREEMPTION) stops new work from being
scheduled on the node while running tasks finish; once the node is draining
and idle its raylet exits by itself, which this hook waits for (bounded by the
deadline) before Kubernetes sends SIGTERM.

Environment: RAY_GCS_ADDRESS (host:port of the head's GCS), RAY_NODE_IP (this
pod's IP, which the worker started with), RAYKUBE_DRAIN_DEADLINE_SECONDS.
"""
import os
import subprocess
import sys
import time

STARTED = time.monotonic()


def _alive_node_id(client, node_ip):
    from ray.core.generated.gcs_pb2 import GcsNodeInfo

    nodes = client.get_all_node_info(timeout=10, state_filter=GcsNodeInfo.GcsNodeState.ALIVE)
    for info in nodes.values():
        if info.node_manager_address == node_ip:
            return info.node_id.hex()
    return None


def main():
    from ray._raylet import GcsClient

    gcs = os.environ["RAY_GCS_ADDRESS"]
    node_ip = os.environ["RAY_NODE_IP"]
    deadline_s = int(os.environ.get("RAYKUBE_DRAIN_DEADLINE_SECONDS", "300"))
    # The deadline counts from the hook's start: the grace period does too.
    stop = STARTED + deadline_s
    client = GcsClient(address=gcs)
    node_id = _alive_node_id(client, node_ip)
    if node_id is None:
        print(f"raykube drain: no live Ray node at {node_ip}; nothing to drain", flush=True)
        return 0
    subprocess.run(
        [
            "ray", "drain-node", f"--address={gcs}", f"--node-id={node_id}",
            "--reason=DRAIN_NODE_REASON_PREEMPTION",
            "--reason-message=raykube: pod scale-down",
            f"--deadline-remaining-seconds={max(int(stop - time.monotonic()), 1)}",
        ],
        check=True,
    )
    print(f"raykube drain: node {node_id} draining; waiting up to {deadline_s}s for its tasks", flush=True)
    while time.monotonic() < stop:
        if _alive_node_id(client, node_ip) != node_id:
            print(f"raykube drain: node {node_id} drained", flush=True)
            return 0
        time.sleep(1)
    print(f"raykube drain: deadline reached with work still running on {node_id}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
