"""RayNetworkPolicies: a Ray namespace that denies by default and allows what Ray needs.

The Ray head runs arbitrary code for whoever reaches its GCS, dashboard/Jobs
API or Ray Client port, so a Ray namespace starts closed:

- every pod: no ingress, egress to DNS only (`<prefix>-default-deny`); in a
  namespace other workloads share (`owns_namespace` False), Ray's pods alone;
- Ray pods (KubeRay's and the HPA pool's, label ray.io/is-ray-node=yes) reach
  each other on every port (`<prefix>-ray-nodes`): Ray's raylet, object
  manager, runtime-env agent and dashboard-agent gRPC ports are random by
  default, and its worker ports a wide range, so the namespace is the trust
  boundary, as in KubeRay's own NetworkPolicy controller;
- the heads' dashboard/Jobs API and Ray Client ports are open to the sources
  listed in `head_access_from` only (default: the namespace's own pods: the
  operator, RayJob submitters) (`<prefix>-ray-heads`), and every pod of the
  namespace may call them (`<prefix>-ray-head-clients`); in a shared namespace
  the default is the operator and KubeRay's submitters alone, and the
  operator's own policy gives it DNS and the heads (no head-clients policy);
- Ray Serve's HTTP port (8000) on the pods of RayService clusters (label
  raykube.io/ray-serve=true) to `serve_access_from` and the operator, whose
  health checks call it (`<prefix>-ray-serve`, when given), and every pod of
  the namespace may call it (`<prefix>-ray-serve-clients`; in a shared
  namespace the operator alone);
- Ray's metrics ports to `metrics_from` (`<prefix>-ray-metrics`, when given);
- the API server to the pods that call it: a head with the autoscaler sidecar
  (label raykube.io/kubernetes-api-client) and the KubeRay operator
  (`<prefix>-kubernetes-api`, `<prefix>-kuberay-operator`);
- HTTPS out of Ray pods when jobs need it (S3, package indexes), plus any
  egress rule given in `extra_egress`; the heads alone get `head_egress` (the
  Ray dashboard asks Prometheus and Grafana for its graphs).

Plain NetworkPolicies, not KubeRay's `spec.networkPolicy`: that field needs
the operator's alpha RayClusterNetworkPolicy gate (off in KubeRay 1.7), covers
only KubeRay's own pods (not the HPA pool, whose pods are a Deployment) and
creates policies the `pulumi preview` diff never shows. These are reviewed
like every other object. kubectl port-forward enters the pod's own network
namespace, so the dashboard port-forward works whatever the policies say.
"""

from typing import Any, Mapping, Optional, Required, Sequence, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.args import ComponentArgsError, check_args, component_label
from components.ray_pod import KUBERNETES_API_CLIENT_LABEL, RAY_NODE_LABEL, RAY_SERVE_LABEL

# Ray's listening ports that a NetworkPolicy names (Ray's own defaults, which
# raykube and KubeRay keep): the dashboard and Jobs API, the Ray Client server,
# and the metrics endpoints Prometheus scrapes: every node's (KubeRay and the
# pool start Ray with --metrics-export-port=8080), the autoscaler's and the
# dashboard's on the head.
DASHBOARD_PORT = 8265
CLIENT_PORT = 10001
METRICS_EXPORT_PORT = 8080
AUTOSCALER_METRICS_PORT = 44217
DASHBOARD_METRICS_PORT = 44227
HEAD_API_PORTS = (DASHBOARD_PORT, CLIENT_PORT)
# Ray Serve's HTTP proxy (every node of a RayService's cluster runs one).
SERVE_PORT = 8000
METRICS_PORTS = (METRICS_EXPORT_PORT, AUTOSCALER_METRICS_PORT, DASHBOARD_METRICS_PORT)
OPERATOR_METRICS_PORT = 8080
# The KubeRay chart's pod labels (release "kuberay-operator", see KubeRayOperator).
OPERATOR_POD_LABELS = {"app.kubernetes.io/name": "kuberay-operator", "app.kubernetes.io/instance": "kuberay-operator"}
# Every managed Kubernetes' DNS and kubeadm's CoreDNS carry this label in kube-system.
DEFAULT_DNS_PEERS = ({"namespace": "kube-system", "pod_labels": {"k8s-app": "kube-dns"}},)
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# KubeRay's label on the pods it makes (Ray's, and RayJob submitters', which call the Jobs API).
KUBERAY_CREATED_LABELS = {"app.kubernetes.io/created-by": "kuberay-operator"}


def own_pods(owns_namespace: bool) -> list[dict[str, Any]]:
    """The peers "this namespace's pods" means for the heads' API: every pod of a namespace of
    Ray's own; in a shared one, the operator and KubeRay's RayJob submitters alone (another
    workload there must not run code on a head)."""
    if owns_namespace:
        return [{}]
    return [{"pod_labels": dict(OPERATOR_POD_LABELS)}, {"pod_labels": dict(KUBERAY_CREATED_LABELS)}]


class NetworkPeerArgs(TypedDict, total=False):
    """One NetworkPolicy peer: pods by labels (in this namespace, or in `namespace`),
    a whole namespace, or an IP block. Nothing set: every pod of this namespace."""

    namespace: str
    """namespace by name (default: the policy's own namespace)."""
    pod_labels: Mapping[str, str]
    """pods with these labels (default: every pod of the namespace)."""
    cidr: str
    """an IP block instead of pods, e.g. 10.0.0.0/8 (default none)."""
    except_cidrs: Sequence[str]
    """parts of `cidr` left out (default [])."""


class RayNetworkPoliciesArgs(TypedDict, total=False):
    """Arguments of RayNetworkPolicies (plain values)."""

    namespace: Required[str]
    """the Ray namespace (required)."""
    name_prefix: str
    """prefix of the policies' names (default "raykube")."""
    head_access_from: Sequence[NetworkPeerArgs]
    """who reaches the heads' dashboard/Jobs API (8265) and Ray Client (10001) port (default [{}]: the namespace's own pods; with owns_namespace False: the operator's and RayJob submitters')."""
    metrics_from: Sequence[NetworkPeerArgs]
    """who scrapes Ray's and the operator's metrics ports, e.g. Prometheus (default []: nobody)."""
    serve_access_from: Sequence[NetworkPeerArgs]
    """who reaches Ray Serve's HTTP port (8000) on RayService pods (label raykube.io/ray-serve=true), besides the operator, whose health checks need it (default []: no serve policy; give [{}] for the namespace's own pods)."""
    api_server_cidrs: Sequence[str]
    """where the Kubernetes API server is, as seen from pods (default ["0.0.0.0/0"])."""
    api_server_ports: Sequence[int]
    """its ports: the Service's and the endpoints' (default [443, 6443])."""
    https_egress: bool
    """Ray pods may open HTTPS connections (S3, STS, package indexes) (default False)."""
    https_egress_cidrs: Sequence[str]
    """where HTTPS may go (default ["0.0.0.0/0"])."""
    extra_egress: Sequence[Mapping[str, Any]]
    """more egress rules for Ray pods, as NetworkPolicyEgressRule objects (default [])."""
    head_egress: Sequence[Mapping[str, Any]]
    """egress rules of the heads alone, e.g. the dashboard's queries to Prometheus and Grafana (default [])."""
    dns: Sequence[NetworkPeerArgs]
    """the cluster DNS (default kube-system pods labelled k8s-app=kube-dns)."""
    owns_namespace: bool
    """the namespace holds Ray alone, so the default deny selects every pod in it (default True); False for a namespace other workloads share: every policy selects Ray's pods (ray.io/is-ray-node=yes) or the operator's alone, and the others' traffic is left as it was."""


def network_peer(peer: Mapping[str, Any], where: str, component: str) -> dict[str, Any]:
    """A NetworkPolicyPeer (API field names) for NetworkPeerArgs."""
    if peer.get("cidr"):
        if peer.get("namespace") or peer.get("pod_labels"):
            raise ComponentArgsError(component, where, "a peer is pods (namespace, pod_labels) or an IP block (cidr), not both")
        block: dict[str, Any] = {"cidr": peer["cidr"]}
        if peer.get("except_cidrs"):
            block["except"] = list(peer["except_cidrs"])
        return {"ipBlock": block}
    if peer.get("except_cidrs"):
        raise ComponentArgsError(component, where, "except_cidrs needs a cidr")
    result: dict[str, Any] = {"podSelector": {"matchLabels": dict(peer["pod_labels"])} if peer.get("pod_labels") else {}}
    if peer.get("namespace"):
        result["namespaceSelector"] = {"matchLabels": {NAMESPACE_NAME_LABEL: peer["namespace"]}}
    return result


def _ports(ports: Sequence[int]) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def _cidrs(cidrs: Sequence[str]) -> list[dict[str, Any]]:
    return [{"ipBlock": {"cidr": cidr}} for cidr in cidrs]


def _policy(name: str, namespace: str, selector: Mapping[str, Any], ingress: Optional[list] = None, egress: Optional[list] = None) -> dict[str, Any]:
    types = [kind for kind, rules in (("Ingress", ingress), ("Egress", egress)) if rules is not None]
    spec: dict[str, Any] = {"podSelector": dict(selector), "policyTypes": types}
    if ingress:
        spec["ingress"] = ingress
    if egress:
        spec["egress"] = egress
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/managed-by": "raykube"}},
        "spec": spec,
    }


def ray_network_policies(args: Mapping[str, Any], component: str = "RayNetworkPolicies") -> list[dict[str, Any]]:
    """The NetworkPolicies (API field names) of one Ray namespace."""
    namespace, prefix = args["namespace"], args.get("name_prefix") or "raykube"

    def peers(key: str, default: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        given = args.get(key)
        return [network_peer(peer, f"{key}[{index}]", component) for index, peer in enumerate(default if given is None else given)]

    ray_nodes = {"matchLabels": {RAY_NODE_LABEL[0]: RAY_NODE_LABEL[1]}}
    heads = {"matchLabels": {"ray.io/node-type": "head"}}
    dns_ports = [{"protocol": protocol, "port": 53} for protocol in ("UDP", "TCP")]
    api = [{"to": _cidrs(args.get("api_server_cidrs") or ["0.0.0.0/0"]), "ports": _ports(args.get("api_server_ports") or [443, 6443])}]
    ray_egress: list[dict[str, Any]] = [{"to": [{"podSelector": ray_nodes}]}]
    if args.get("https_egress"):
        ray_egress.append({"to": _cidrs(args.get("https_egress_cidrs") or ["0.0.0.0/0"]), "ports": _ports([443])})
    ray_egress += [dict(rule) for rule in args.get("extra_egress") or ()]
    owns_namespace = args.get("owns_namespace", True)
    if not isinstance(owns_namespace, bool):
        raise ComponentArgsError(component, "owns_namespace", f"must be true or false, not {owns_namespace!r}")
    head_sources = peers("head_access_from", own_pods(owns_namespace))
    metrics_sources = peers("metrics_from", [])
    serve_sources = peers("serve_access_from", [])
    dns = {"to": peers("dns", DEFAULT_DNS_PEERS), "ports": dns_ports}
    head_clients = {"to": [{"podSelector": heads}], "ports": _ports(HEAD_API_PORTS)}
    # A namespace of Ray's own: deny every pod, then let the namespace's pods (the
    # operator, RayJob submitters) call the heads. A shared namespace: deny Ray's
    # pods alone (a policy that selected every pod would cut the other workloads'
    # traffic), and give the operator, the one other pod raykube runs there, its
    # DNS and the heads in its own policy.
    deny_selector = {} if owns_namespace else ray_nodes
    serving = {"matchLabels": {RAY_NODE_LABEL[0]: RAY_NODE_LABEL[1], RAY_SERVE_LABEL[0]: RAY_SERVE_LABEL[1]}}
    serve_clients = {"to": [{"podSelector": serving}], "ports": _ports([SERVE_PORT])}
    operator_egress = api if owns_namespace else [*api, dns, head_clients, *([serve_clients] if serve_sources else [])]
    policies = [
        _policy(f"{prefix}-default-deny", namespace, deny_selector, ingress=[], egress=[dns]),
        _policy(f"{prefix}-ray-nodes", namespace, ray_nodes, ingress=[{"from": [{"podSelector": ray_nodes}]}], egress=ray_egress),
        *([_policy(f"{prefix}-ray-head-clients", namespace, {}, egress=[head_clients])] if owns_namespace else []),
        _policy(f"{prefix}-kubernetes-api", namespace, {"matchLabels": {KUBERNETES_API_CLIENT_LABEL: "true"}}, egress=api),
        _policy(
            f"{prefix}-kuberay-operator", namespace, {"matchLabels": dict(OPERATOR_POD_LABELS)},
            ingress=[{"from": metrics_sources, "ports": _ports([OPERATOR_METRICS_PORT])}] if metrics_sources else [],
            egress=operator_egress,
        ),
    ]
    head_egress = [dict(rule) for rule in args.get("head_egress") or ()]
    if head_sources or head_egress:
        policies.insert(2, _policy(
            f"{prefix}-ray-heads", namespace, heads,
            ingress=[{"from": head_sources, "ports": _ports(HEAD_API_PORTS)}] if head_sources else [],
            egress=head_egress or None,
        ))
    if serve_sources:
        # The operator's health checks reach the serving head's proxy whatever serve_access_from says.
        operator = {"podSelector": {"matchLabels": dict(OPERATOR_POD_LABELS)}}
        sources = serve_sources + ([] if operator in serve_sources or {"podSelector": {}} in serve_sources else [operator])
        policies.append(_policy(f"{prefix}-ray-serve", namespace, serving, ingress=[{"from": sources, "ports": _ports([SERVE_PORT])}]))
        if owns_namespace:
            policies.append(_policy(f"{prefix}-ray-serve-clients", namespace, {}, egress=[serve_clients]))
    if metrics_sources:
        policies.append(_policy(f"{prefix}-ray-metrics", namespace, ray_nodes, ingress=[{"from": metrics_sources, "ports": _ports(METRICS_PORTS)}]))
    return policies


class RayNetworkPolicies(pulumi.ComponentResource):
    """The NetworkPolicies of one Ray namespace: closed by default, open where Ray needs it."""

    policy_names: pulumi.Output[Sequence[str]]
    """Names of the NetworkPolicies, in the namespace."""

    def __init__(self, name: str, args: RayNetworkPoliciesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        label = component_label("RayNetworkPolicies", name)
        check_args(label, RayNetworkPoliciesArgs, args)
        manifests = ray_network_policies(args, label)
        super().__init__("raykube:index:RayNetworkPolicies", name, None, opts)
        self.policies = [
            k8s.networking.v1.NetworkPolicy(
                f"{name}-{manifest['metadata']['name']}",
                metadata=manifest["metadata"],
                spec=manifest["spec"],
                opts=pulumi.ResourceOptions(parent=self),
            )
            for manifest in manifests
        ]
        self.policy_names = pulumi.Output.from_input([manifest["metadata"]["name"] for manifest in manifests])
        self.register_outputs({"policy_names": self.policy_names})
