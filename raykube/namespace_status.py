"""What `raykube status` reports per Ray namespace besides the clusters: the KubeRay operator,
the AWS credentials the Ray pods get, and the namespace's last RayJobs."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Optional

# The kuberay-operator chart's Deployment (release "kuberay-operator": its fullname).
OPERATOR_DEPLOYMENT = "kuberay-operator"
LAST_JOBS = 5


def operator_status(client, namespace: str) -> dict[str, Any]:
    """The namespace's operator Deployment: ready/desired replicas and its image."""
    from kubernetes import client as k8s
    from kubernetes.client.rest import ApiException

    try:
        deployment = k8s.AppsV1Api(client).read_namespaced_deployment(OPERATOR_DEPLOYMENT, namespace)
    except ApiException as error:
        if error.status != 404:
            raise
        return {"ready": False, "state": "missing", "problem": f"no KubeRay operator Deployment {OPERATOR_DEPLOYMENT}: has `pulumi up` run?"}
    desired = deployment.spec.replicas if deployment.spec.replicas is not None else 1
    ready = deployment.status.ready_replicas or 0
    images = [container.image for container in deployment.spec.template.spec.containers]
    entry: dict[str, Any] = {"ready": ready >= desired > 0, "state": f"{ready}/{desired} ready", "image": images[0] if images else None}
    if not entry["ready"]:
        entry["problem"] = f"KubeRay operator {ready}/{desired} ready: nothing reconciles the namespace's RayClusters and RayJobs"
    return entry


def _expiry_text(expiry: datetime, now: datetime) -> str:
    minutes = int((expiry - now).total_seconds() // 60)
    return f"expires {expiry.isoformat()} (in {minutes} min)" if minutes >= 0 else f"EXPIRED at {expiry.isoformat()}"


def credentials_status(settings, client, namespace: str, now: Optional[datetime] = None) -> dict[str, Any]:
    """The mode, and in mode secret the Secret's expiry (expired or missing: a problem)."""
    from kubernetes import client as k8s
    from kubernetes.client.rest import ApiException

    from raykube.cli.credentials import secret_expiry

    access = settings.aws_access
    if access.mode == "none":
        return {"mode": "none", "ready": True, "state": "no AWS access"}
    if access.mode == "irsa":
        return {"mode": "irsa", "ready": True, "state": f"IRSA through service account {access.service_account_name}: nothing expires"}
    if access.mode == "webIdentity":
        return {"mode": "webIdentity", "ready": True,
                "state": f"the pods' own tokens (service account {access.service_account_name}), renewed by the kubelet: nothing expires"}
    if access.mode == "podIdentity":
        return {"mode": "podIdentity", "ready": True,
                "state": f"EKS Pod Identity for service account {access.service_account_name} in cluster {access.eks_cluster_name}: nothing expires"}
    now = now or datetime.now(timezone.utc)
    try:
        secret = k8s.CoreV1Api(client).read_namespaced_secret(access.secret_name, namespace)
    except ApiException as error:
        if error.status != 404:
            raise
        return {"mode": "secret", "ready": False, "state": "missing", "problem": f"no Secret {access.secret_name}: run `pulumi up`"}
    expiry = secret_expiry(secret)
    if expiry is None:
        return {"mode": "secret", "ready": False, "state": "no credentials",
                "problem": f"Secret {access.secret_name} holds no credentials: run `raykube credentials renew`"}
    entry = {"mode": "secret", "ready": expiry > now, "state": _expiry_text(expiry, now), "expires": expiry.isoformat()}
    if not entry["ready"]:
        entry["problem"] = f"AWS credentials in Secret {access.secret_name} expired: Ray jobs cannot reach S3; run `raykube credentials renew`"
    return entry


def last_jobs(client, namespace: str, count: int = LAST_JOBS) -> list[dict[str, Any]]:
    """The namespace's newest RayJobs: their job status and KubeRay's deployment status."""
    from kubernetes import client as k8s

    items = k8s.CustomObjectsApi(client).list_namespaced_custom_object("ray.io", "v1", namespace, "rayjobs").get("items") or []
    items.sort(key=lambda job: job["metadata"].get("creationTimestamp") or "", reverse=True)
    jobs = []
    for job in items[:count]:
        status = job.get("status") or {}
        jobs.append({
            "name": job["metadata"]["name"],
            "jobStatus": status.get("jobStatus") or "-",
            "deploymentStatus": status.get("jobDeploymentStatus") or "New",
            "started": status.get("startTime"),
            "ended": status.get("endTime"),
            "message": status.get("message"),
        })
    return jobs
