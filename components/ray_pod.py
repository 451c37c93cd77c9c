"""Pod templates for Ray containers, shared by RayCluster groups and worker pools.

One builder so that every Ray pod, whoever creates it, runs non-root with the
same security context, the same secret injection and the same passthrough.
"""

from typing import Any, Mapping, Optional, Required, Sequence, TypedDict

from components.merge import deep_merge

# rayproject/ray images run as user `ray` (uid 1000, group users 100).
RAY_UID = 1000
RAY_GID = 100

POD_SECURITY_CONTEXT: dict[str, Any] = {
    "runAsNonRoot": True,
    "runAsUser": RAY_UID,
    "runAsGroup": RAY_GID,
    "fsGroup": RAY_GID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY_CONTEXT: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    # Ray writes its sessions, logs, sockets and runtime environments under
    # /tmp/ray and its object store in /dev/shm: both are emptyDirs, the image
    # stays read-only (a compromised task cannot change Ray's own code).
    "readOnlyRootFilesystem": True,
}
# The writable scratch space of every Ray container (/tmp, so /tmp/ray too).
TMP_VOLUME = "tmp"
TMP_MOUNT = {"name": TMP_VOLUME, "mountPath": "/tmp"}


def container_security_context(read_only_root_filesystem: bool = True) -> dict[str, Any]:
    """The security context of every Ray container; a writable image only on request."""
    return {**CONTAINER_SECURITY_CONTEXT, "readOnlyRootFilesystem": read_only_root_filesystem}


# Every Ray pod, whoever creates it (KubeRay labels its own pods so; the HPA
# pool's pods carry it too): what raykube's NetworkPolicies call a Ray node.
RAY_NODE_LABEL = ("ray.io/is-ray-node", "yes")
# Pods that call the Kubernetes API (a head with the autoscaler sidecar).
KUBERNETES_API_CLIENT_LABEL = "raykube.io/kubernetes-api-client"
# The Ray pods of a RayService's clusters (head and workers run Serve's HTTP proxy on
# port 8000): what the NetworkPolicy that opens that port selects.
RAY_SERVE_LABEL = ("raykube.io/ray-serve", "true")

# Secret files: owner and group (the pod's fsGroup, the ray user's group) may
# read them, nobody else, nobody may write.
SECRET_FILE_MODE = 0o440
# The file name of a projected token in its directory.
TOKEN_FILE = "token"
# Web identity: the audience AWS STS takes, and where a pod finds its token for it.
STS_AUDIENCE = "sts.amazonaws.com"
WEB_IDENTITY_TOKEN_DIR = "/var/run/secrets/raykube/aws"


def token_projection(audience: str, expiration_seconds: int = 3600) -> dict[str, Any]:
    """A projected ServiceAccount token source: for `audience`, renewed by the kubelet at 80 % of its life."""
    return {"serviceAccountToken": {"audience": audience, "expirationSeconds": int(expiration_seconds), "path": TOKEN_FILE}}


class SecretVolume(TypedDict):
    """A Secret mounted read-only, as a whole directory: the kubelet then
    replaces its files in place when the Secret changes (a `subPath` mount
    would keep the first version forever)."""

    secret_name: str
    """The Secret."""
    mount_path: str
    """Where every Ray container mounts it, read-only."""


class TokenVolume(TypedDict, total=False):
    """A projected ServiceAccount token for another audience (e.g. AWS STS), which the kubelet
    renews before it expires: the pod's identity, proved to someone outside the cluster."""

    audience: Required[str]
    """Who the token is for, e.g. sts.amazonaws.com (required)."""
    mount_path: Required[str]
    """The directory every Ray container mounts read-only; the token is its file `token` (required)."""
    expiration_seconds: int
    """The token's lifetime; the kubelet renews it at 80% (default 3600, at least 600)."""


class SecretInjection(TypedDict, total=False):
    """How Secrets reach Ray containers: every one of them, head, KubeRay workers and pool workers."""

    secret_volumes: Sequence[SecretVolume]
    """Secrets mounted read-only, mode 0440 with the pod's fsGroup (default none)."""
    token_volumes: Sequence[TokenVolume]
    """Projected ServiceAccount tokens mounted read-only, mode 0440 with the pod's fsGroup (default none)."""
    env: Mapping[str, str]
    """plain environment variables, e.g. AWS_CONFIG_FILE pointing into a volume (default none)."""
    env_from_secrets: Sequence[str]
    """Secrets whose keys become environment variables (default none). Kubernetes sets them once, at container start: never use it for credentials that rotate."""


def secret_volume_name(secret_name: str) -> str:
    return f"secret-{secret_name}"[:63].rstrip("-")


def ray_pod_template(
    *,
    group: Mapping[str, Any],
    container_name: str,
    image: str,
    injection: Optional[Mapping[str, Any]] = None,
    service_account_name: Optional[str] = None,
    extra_labels: Optional[Mapping[str, str]] = None,
    extra_env: Sequence[Mapping[str, Any]] = (),
    command: Optional[Sequence[str]] = None,
    args: Optional[Sequence[str]] = None,
    ports: Sequence[Mapping[str, Any]] = (),
    lifecycle: Optional[Mapping[str, Any]] = None,
    termination_grace_period_seconds: Optional[int] = None,
    automount_service_account_token: bool = False,
    read_only_root_filesystem: bool = True,
) -> dict[str, Any]:
    """A PodTemplateSpec (API field names) for one Ray group.

    `group` has the RayGroup fields in snake_case: resources, node_selector,
    tolerations, affinity, labels, env, pod_template (merged last).
    Only a pod that calls the Kubernetes API (a head with the autoscaler
    sidecar) gets its ServiceAccount token mounted.
    """
    injection = injection or {}
    env = [{"name": key, "value": value} for key, value in sorted((group.get("env") or {}).items())]
    env += [{"name": key, "value": value} for key, value in sorted((injection.get("env") or {}).items())]
    env += [dict(item) for item in extra_env]
    container: dict[str, Any] = {
        "name": container_name,
        "image": image,
        "resources": {kind: dict(values) for kind, values in (group.get("resources") or {}).items() if values},
        "securityContext": container_security_context(read_only_root_filesystem),
    }
    if command:
        container["command"] = list(command)
    if args:
        container["args"] = list(args)
    if env:
        container["env"] = env
    env_from = [{"secretRef": {"name": name}} for name in injection.get("env_from_secrets") or ()]
    if env_from:
        container["envFrom"] = env_from
    if ports:
        container["ports"] = [dict(port) for port in ports]
    if lifecycle:
        container["lifecycle"] = dict(lifecycle)
    volumes: list[dict[str, Any]] = [{"name": TMP_VOLUME, "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [dict(TMP_MOUNT)]
    for volume in injection.get("secret_volumes") or ():
        volume_name = secret_volume_name(volume["secret_name"])
        volumes.append({"name": volume_name, "secret": {"secretName": volume["secret_name"], "defaultMode": SECRET_FILE_MODE}})
        mounts.append({"name": volume_name, "mountPath": volume["mount_path"], "readOnly": True})
    for index, token in enumerate(injection.get("token_volumes") or ()):
        volume_name = f"token-{index}-{token['audience']}".replace(".", "-")[:63].rstrip("-")
        projection = token_projection(token["audience"], token.get("expiration_seconds", 3600))
        volumes.append({"name": volume_name, "projected": {"sources": [projection], "defaultMode": SECRET_FILE_MODE}})
        mounts.append({"name": volume_name, "mountPath": token["mount_path"], "readOnly": True})
    container["volumeMounts"] = mounts
    spec: dict[str, Any] = {
        "containers": [container],
        "securityContext": dict(POD_SECURITY_CONTEXT),
        "automountServiceAccountToken": automount_service_account_token,
        "volumes": volumes,
    }
    if service_account_name:
        spec["serviceAccountName"] = service_account_name
    if group.get("node_selector"):
        spec["nodeSelector"] = dict(group["node_selector"])
    if group.get("tolerations"):
        spec["tolerations"] = [dict(item) for item in group["tolerations"]]
    if group.get("affinity"):
        spec["affinity"] = dict(group["affinity"])
    if termination_grace_period_seconds is not None:
        spec["terminationGracePeriodSeconds"] = termination_grace_period_seconds
    labels = {**(extra_labels or {}), **(group.get("labels") or {})}
    template: dict[str, Any] = {"spec": spec}
    if labels:
        template["metadata"] = {"labels": labels}
    return deep_merge(template, group.get("pod_template") or {})
