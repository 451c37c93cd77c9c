"""The read-only preview identity of docs/previews.md on the real API server: it may read every kind a
stack manages (what `pulumi preview` diffs against) and change none of them."""
from __future__ import annotations

import copy

import yaml

from tests.helpers.envtest import ApplyError, server_side_apply
from tests.helpers.program import ROOT, STACKS

IDENTITY = ("kube-system", "raykube-preview")
READS, WRITES = ("get", "list", "watch"), ("create", "patch", "update", "delete")
# Kinds the stacks' charts create (helm.v4.Chart objects are not in the offline run).
CHART_KINDS = [("v1", "ServiceAccount"), ("v1", "Service"), ("v1", "ConfigMap"), ("apps/v1", "Deployment"), ("apps/v1", "DaemonSet"),
               ("rbac.authorization.k8s.io/v1", "Role"), ("rbac.authorization.k8s.io/v1", "RoleBinding"),
               ("rbac.authorization.k8s.io/v1", "ClusterRole"), ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
               ("apiregistration.k8s.io/v1", "APIService"), ("apiextensions.k8s.io/v1", "CustomResourceDefinition")]


def readme_rbac() -> list[dict]:
    page = (ROOT / "docs" / "previews.md").read_text()
    section = page[page.index("## Read-only previews"):]
    block = section[section.index("```yaml") + len("```yaml"): section.index("```", section.index("```yaml") + 3)]
    return [doc for doc in yaml.safe_load_all(block) if doc]


def allowed(control_plane, verb: str, api_version: str, resource: str, namespace: str | None) -> bool:
    from kubernetes import client

    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    namespace_, name = IDENTITY
    review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=f"system:serviceaccount:{namespace_}:{name}",
        groups=["system:serviceaccounts", f"system:serviceaccounts:{namespace_}", "system:authenticated"],
        resource_attributes=client.V1ResourceAttributes(group=group, resource=resource, verb=verb, namespace=namespace)))
    return client.AuthorizationV1Api(control_plane.api_client()).create_subject_access_review(review).status.allowed


def preview_client(control_plane):
    """A client that authenticates as the preview ServiceAccount (a TokenRequest token), as its kubeconfig would."""
    from kubernetes import client, dynamic

    core = client.CoreV1Api(control_plane.api_client())
    namespace, name = IDENTITY
    try:
        core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name)))
    except client.ApiException as error:
        if error.status != 409:
            raise
    token = core.create_namespaced_service_account_token(name, namespace, client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600))).status.token
    admin = control_plane.api_client().configuration
    configuration = client.Configuration(host=admin.host)
    configuration.ssl_ca_cert = admin.ssl_ca_cert
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return dynamic.DynamicClient(client.ApiClient(configuration))


def test_the_preview_identity_reads_what_every_stack_manages_and_writes_nothing(control_plane, stack_runs):
    admin = control_plane.dynamic()
    for doc in readme_rbac():
        server_side_apply(admin, doc, "readme")
    kinds = {(obj.inputs["apiVersion"], obj.inputs["kind"], bool((obj.inputs.get("metadata") or {}).get("namespace")))
             for stack in STACKS for obj in stack_runs[stack].kubernetes_objects()}
    kinds |= {(api_version, kind, kind not in ("ClusterRole", "ClusterRoleBinding", "APIService", "CustomResourceDefinition"))
              for api_version, kind in CHART_KINDS}
    refused, granted = [], []
    for api_version, kind, namespaced in sorted(kinds):
        resource = admin.resources.get(api_version=api_version, kind=kind).name
        namespace = "ray" if namespaced else None
        refused += [f"{verb} {kind}" for verb in READS if not allowed(control_plane, verb, api_version, resource, namespace)]
        granted += [f"{verb} {kind}" for verb in WRITES if allowed(control_plane, verb, api_version, resource, namespace)]
    assert refused == [] and granted == []

    # And for real, with the identity's own token: it reads the stack's RayClusters, and even a
    # dry run of an apply is refused (pulumi-kubernetes then previews client-side).
    preview = preview_client(control_plane)
    preview.resources.get(api_version="ray.io/v1", kind="RayCluster").get()
    cluster = copy.deepcopy(next(obj.inputs for obj in stack_runs["eks"].kubernetes_objects() if obj.inputs["kind"] == "RayCluster"))
    try:
        server_side_apply(preview, cluster, "pulumi-kubernetes", dry_run=True)
    except ApplyError as error:
        assert error.status == 403, error
    else:
        raise AssertionError("the preview identity could apply a RayCluster")
