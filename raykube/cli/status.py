"""`raykube status --stack NAME`: is every Ray cluster of the stack ready, and if not, why.

One screen per stack, read from the live cluster: each RayCluster's state and
conditions; each worker group's desired, min, max and ready workers and who
scales it (Ray's autoscaler, an HPA, or fixed), with the HPA's current and
target CPU; per Ray namespace the KubeRay operator, the AWS credentials' mode
and expiry, and the last RayJobs; and every pod that is not running, with the scheduler's reason
(e.g. "0/6 nodes are available: 6 Insufficient cpu") or the container's
(ImagePullBackOff). `pulumi up` waits for each RayCluster's `ready` and, when
that wait times out, says only that it timed out: this says why.

  --output table   for people (default)
  --output json    for scripts

Exit status: 0 every cluster, operator and credential ready (a failed RayJob
is reported, not counted); 1 something is not ready; 2 unusable stack
file or settings; 3 the cluster's API server cannot be reached (one line says
which and why).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional

from raykube.cluster_api import ClusterUnreachable, api_client, reaching
from raykube.stack_file import EXIT_INVALID_SETTINGS, StackFileError, add_stack_arguments, read_stack_file

EXIT_NOT_READY = 1
EXIT_UNREACHABLE = 3


def _pod_problem(pod) -> Optional[str]:
    """Why a pod is not running and ready, in the words of whoever knows (None: it is fine)."""
    status = pod.status
    for condition in status.conditions or ():
        if condition.type == "PodScheduled" and condition.status == "False":
            return f"not scheduled: {condition.message or condition.reason}"
    for container in [*(status.init_container_statuses or ()), *(status.container_statuses or ())]:
        waiting = container.state.waiting if container.state else None
        if waiting and waiting.reason not in (None, "PodInitializing", "ContainerCreating"):
            return f"{container.name}: {waiting.reason}: {waiting.message or ''}".rstrip(": ")
    if status.phase != "Running":
        return f"phase {status.phase}"
    if not any(c.type == "Ready" and c.status == "True" for c in status.conditions or ()):
        return "running, not ready"
    return None


def _ready(pod) -> bool:
    return pod.status.phase == "Running" and any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or ())


def _pods(core, namespace: str, selector: str) -> list:
    return [pod for pod in core.list_namespaced_pod(namespace, label_selector=selector).items if not pod.metadata.deletion_timestamp]


def _hpa_group(client, core, namespace: str, cluster: str, group, pool_name: str) -> tuple[dict[str, Any], list]:
    from kubernetes import client as k8s
    from kubernetes.client.rest import ApiException

    selector = f"raykube.io/cluster={cluster},raykube.io/worker-group={group.name}"
    pods = _pods(core, namespace, selector)
    entry: dict[str, Any] = {"name": group.name, "scaledBy": "hpa", "min": group.min_replicas, "max": group.max_replicas,
                             "ready": sum(map(_ready, pods)), "target": f"{group.hpa.target_cpu_utilization_percent}% CPU"}
    try:
        hpa = k8s.AutoscalingV2Api(client).read_namespaced_horizontal_pod_autoscaler(pool_name, namespace)
        entry["desired"] = hpa.status.desired_replicas
        current = [m.resource.current.average_utilization for m in hpa.status.current_metrics or () if m.resource]
        entry["current"] = f"{current[0]}% CPU" if current and current[0] is not None else "no metrics yet"
    except ApiException as error:
        if error.status != 404:
            raise
        entry.update(desired=None, current="no HPA")
    return entry, pods


def cluster_status(settings, client) -> dict[str, Any]:
    """The stack's clusters as the API server sees them (JSON-ready)."""
    from kubernetes import client as k8s
    from kubernetes.client.rest import ApiException

    from components.ray_worker_pool import pool_name

    core, custom = k8s.CoreV1Api(client), k8s.CustomObjectsApi(client)
    clusters = []
    for cluster in settings.ray_clusters:
        namespace, name = cluster.namespace, cluster.name
        entry: dict[str, Any] = {"namespace": namespace, "name": name, "groups": [], "problems": []}
        try:
            live = custom.get_namespaced_custom_object("ray.io", "v1", namespace, "rayclusters", name)
        except ApiException as error:
            if error.status != 404:
                raise
            entry.update(state="missing", conditions=[], problems=["no RayCluster: has `pulumi up` run for this stack?"])
            clusters.append(entry)
            continue
        status = live.get("status") or {}
        entry["state"] = status.get("state") or "pending"
        entry["conditions"] = [f"{c['type']}={c['status']}" + (f" ({c['reason']})" if c.get("reason") else "") for c in status.get("conditions") or ()]
        pods = _pods(core, namespace, f"ray.io/cluster={name}")
        live_groups = {group["groupName"]: group for group in live["spec"].get("workerGroupSpecs") or ()}
        for group in cluster.worker_groups:
            if group.autoscaling == "hpa":
                pool, pool_pods = _hpa_group(client, core, namespace, name, group, pool_name(name, group.name))
                entry["groups"].append(pool)
                pods += pool_pods
                continue
            spec = live_groups.get(group.name, {})
            members = [pod for pod in pods if (pod.metadata.labels or {}).get("ray.io/group") == group.name]
            entry["groups"].append({"name": group.name, "scaledBy": "ray" if group.autoscaling == "ray" else "fixed",
                                    "desired": spec.get("replicas", 0), "min": spec.get("minReplicas"), "max": spec.get("maxReplicas"),
                                    "ready": sum(map(_ready, members))})
        for pod in pods:
            problem = _pod_problem(pod)
            if problem:
                entry["problems"].append(f"pod {pod.metadata.name}: {problem}")
        for group in entry["groups"]:
            if group["scaledBy"] == "hpa" and group["ready"] < group["min"]:
                entry["problems"].append(f"group {group['name']}: {group['ready']} of at least {group['min']} workers ready")
        entry["ready"] = entry["state"] == "ready" and not entry["problems"]
        clusters.append(entry)
    return {"clusters": clusters, "ready": all(cluster["ready"] for cluster in clusters)}


def stack_status(settings, client) -> dict[str, Any]:
    """The clusters, and per Ray namespace its operator, AWS credentials and last RayJobs."""
    from raykube.namespace_status import credentials_status, last_jobs, operator_status

    report = cluster_status(settings, client)
    namespaces = []
    for namespace in settings.namespaces:
        entry = {"namespace": namespace, "operator": operator_status(client, namespace),
                 "credentials": credentials_status(settings, client, namespace), "jobs": last_jobs(client, namespace)}
        entry["ready"] = entry["operator"]["ready"] and entry["credentials"]["ready"]
        namespaces.append(entry)
    report["namespaces"] = namespaces
    report["ready"] = report["ready"] and all(entry["ready"] for entry in namespaces)
    return report


def as_table(report: dict[str, Any], stack: str) -> str:
    lines = [f"stack {stack}: {'ready' if report['ready'] else 'NOT READY'}"]
    for cluster in report["clusters"]:
        lines.append(f"  RayCluster {cluster['namespace']}/{cluster['name']}: {cluster['state']}"
                     + (f"  [{', '.join(cluster['conditions'])}]" if cluster.get("conditions") else ""))
        for group in cluster["groups"]:
            desired = "-" if group.get("desired") is None else group["desired"]
            line = f"    group {group['name']:<12} scaled by {group['scaledBy']:<5}  ready {group['ready']}/{desired}  (min {group['min']}, max {group['max']})"
            if group["scaledBy"] == "hpa":
                line += f"  CPU {group['current']} of {group['target']}"
            lines.append(line)
        lines += [f"    ! {problem}" for problem in cluster["problems"]]
    for entry in report.get("namespaces") or ():
        operator, credentials = entry["operator"], entry["credentials"]
        lines.append(f"  namespace {entry['namespace']}")
        lines.append(f"    operator     {operator['state']}" + (f"  ({operator['image']})" if operator.get("image") else ""))
        lines.append(f"    AWS access   {credentials['mode']}: {credentials['state']}")
        lines += [f"    ! {item['problem']}" for item in (operator, credentials) if item.get("problem")]
        for job in entry["jobs"]:
            ended = f", ended {job['ended']}" if job.get("ended") else ""
            lines.append(f"    RayJob {job['name']:<20} {job['jobStatus']:<10} ({job['deploymentStatus']}{ended})")
        if not entry["jobs"]:
            lines.append("    RayJobs      none")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="raykube status", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    add_stack_arguments(parser)
    parser.add_argument("--output", choices=("table", "json"), default="table")
    args = parser.parse_args(argv)

    from raykube.settings import SettingsError

    try:
        stack_file = read_stack_file(args.stack, args.config)
        settings = stack_file.settings()
        client = api_client(settings)
        with reaching(client):
            report = stack_status(settings, client)
    except (StackFileError, SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID_SETTINGS
    except ClusterUnreachable as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    print(json.dumps({"stack": stack_file.stack, **report}, indent=2) if args.output == "json" else as_table(report, stack_file.stack))
    return 0 if report["ready"] else EXIT_NOT_READY


if __name__ == "__main__":
    sys.exit(main())
