"""KubeadmConfig: the file `kubeadm init --config` reads, for the local target.

Sets the pod and Service networks (Flannel reads the same pod CIDR) and the
controller-manager's HPA flags, so HPAs scale down 15 s after work ends
instead of the default 5 minutes (seed 000).
"""

import re
from typing import Any, Optional, Required, TypedDict

import pulumi
import yaml

from components.local_file import LocalFile
from components.args import ComponentArgsError, check_args, component_label

KUBELET_API = "kubelet.config.k8s.io/v1beta1"
# kubeadm's own issuer (https://kubernetes.default.svc.<dnsDomain>), and the audience of every in-cluster token.
DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"
JWKS_PATH = "/openid/v1/jwks"


def issuer_flags(issuer: str) -> list[tuple[str, str]]:
    """kube-apiserver flags that sign the cluster's ServiceAccount tokens as `issuer`, a public https
    URL that serves the discovery document and the JWKS (what AWS reads to trust the tokens).

    The first issuer signs; the default one stays accepted, so tokens the cluster handed out before
    the change keep working until the kubelet renews them. api-audiences stays the default issuer:
    otherwise it follows the issuers, and every new in-cluster token would also name the public
    bucket address as its audience, which in-cluster verifiers are not set up for.
    """
    return [
        ("service-account-issuer", issuer),
        ("service-account-issuer", DEFAULT_ISSUER),
        ("service-account-jwks-uri", issuer + JWKS_PATH),
        ("api-audiences", DEFAULT_ISSUER),
    ]


def kubeadm_api_version(kubernetes_version: str) -> str:
    """v1beta4 from Kubernetes 1.31 (extraArgs as name/value list); v1beta3 for 1.22-1.30 (a map)."""
    match = re.match(r"^v?1\.(\d+)(?:\.\d+)?$", kubernetes_version)
    minor = int(match.group(1)) if match else -1
    if minor >= 31:
        return "kubeadm.k8s.io/v1beta4"
    if 22 <= minor <= 30:
        return "kubeadm.k8s.io/v1beta3"
    raise ValueError(f"kubeadm config for Kubernetes {kubernetes_version!r} is not supported (1.22 or later)")


def _extra_args(api_version: str, args: dict[str, str] | list[tuple[str, str]]) -> Any:
    pairs = list(args.items()) if isinstance(args, dict) else list(args)
    if api_version.endswith("v1beta4"):
        return [{"name": name, "value": value} for name, value in pairs]
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError(f"kubeadm {api_version} takes each extraArgs flag once (a map): {', '.join(sorted(set(n for n in names if names.count(n) > 1)))}")
    return dict(pairs)


class KubeadmConfigArgs(TypedDict, total=False):
    """Arguments of KubeadmConfig (plain values)."""

    kubernetes_version: Required[str]
    """"1.33" (kubeadm installs the latest 1.33 patch) or "1.33.4" (required)."""
    pod_subnet: str
    """pod network CIDR, the one Flannel uses (default 10.244.0.0/16)."""
    service_subnet: str
    """Service network CIDR (default 10.96.0.0/12)."""
    scale_down_stabilization_seconds: int
    """--horizontal-pod-autoscaler-downscale-stabilization (default 15)."""
    sync_period_seconds: int
    """--horizontal-pod-autoscaler-sync-period (default 15)."""
    cri_socket: str
    """container runtime socket (default containerd's)."""
    advertise_address: Optional[str]
    """API server address (default kubeadm's choice)."""
    node_name: Optional[str]
    """node name (default the host name)."""
    path: Optional[str]
    """where `pulumi up` writes the file (default: not written, only exported)."""
    service_account_issuer: Optional[str]
    """https URL that signs the cluster's ServiceAccount tokens and serves its JWKS at /openid/v1/jwks
    (default: kubeadm's https://kubernetes.default.svc.cluster.local); Kubernetes 1.31 or later."""


def kubeadm_documents(args: KubeadmConfigArgs) -> list[dict[str, Any]]:
    version = args["kubernetes_version"].lstrip("v")
    api_version = kubeadm_api_version(version)
    node_registration: dict[str, Any] = {"criSocket": args.get("cri_socket") or "unix:///var/run/containerd/containerd.sock"}
    if args.get("node_name"):
        node_registration["name"] = args["node_name"]
    init: dict[str, Any] = {"apiVersion": api_version, "kind": "InitConfiguration", "nodeRegistration": node_registration}
    if args.get("advertise_address"):
        init["localAPIEndpoint"] = {"advertiseAddress": args["advertise_address"], "bindPort": 6443}
    hpa_flags = {
        "horizontal-pod-autoscaler-downscale-stabilization": f"{args.get('scale_down_stabilization_seconds', 15)}s",
        "horizontal-pod-autoscaler-sync-period": f"{args.get('sync_period_seconds', 15)}s",
    }
    cluster = {
        "apiVersion": api_version,
        "kind": "ClusterConfiguration",
        # "1.33" -> the newest 1.33 patch; "1.33.4" -> exactly that.
        "kubernetesVersion": f"v{version}" if version.count(".") == 2 else f"stable-{version}",
        "networking": {
            "podSubnet": args.get("pod_subnet") or "10.244.0.0/16",
            "serviceSubnet": args.get("service_subnet") or "10.96.0.0/12",
        },
        "controllerManager": {"extraArgs": _extra_args(api_version, hpa_flags)},
    }
    if args.get("service_account_issuer"):
        cluster["apiServer"] = {"extraArgs": _extra_args(api_version, issuer_flags(args["service_account_issuer"]))}
    kubelet = {"apiVersion": KUBELET_API, "kind": "KubeletConfiguration", "cgroupDriver": "systemd"}
    return [init, cluster, kubelet]


HINT = "# Written by raykube (pulumi up). Use: sudo kubeadm init --config <this file>"


def render_kubeadm_config(args: KubeadmConfigArgs) -> str:
    """The file kubeadm reads: only documents with apiVersion and kind.

    kubeadm splits the file on `---` lines and decodes every part, so a
    comment-only part (a header before the first `---`) makes it reject the
    whole file. The hint therefore sits inside the first document, after its
    `apiVersion:` line.
    """
    text = yaml.safe_dump_all(kubeadm_documents(args), sort_keys=False)
    first_line, rest = text.split("\n", 1)
    return f"{first_line}\n{HINT}\n{rest}"


class KubeadmConfig(pulumi.ComponentResource):
    """The kubeadm config as an output (`config_yaml`), written to `path` if given."""

    config_yaml: pulumi.Output[str]
    """The kubeadm config file's text."""
    api_version: pulumi.Output[str]
    """kubeadm API version of the file (v1beta3 or v1beta4)."""

    def __init__(self, name: str, args: KubeadmConfigArgs, opts: Optional[pulumi.ResourceOptions] = None):
        label = component_label("KubeadmConfig", name)
        check_args(label, KubeadmConfigArgs, args)
        try:  # before anything is registered
            text = render_kubeadm_config(args)
        except ValueError as error:
            raise ComponentArgsError(label, "kubernetes_version", str(error)) from None
        super().__init__("raykube:index:KubeadmConfig", name, None, opts)
        self.file: Optional[LocalFile] = None
        if args.get("path"):
            self.file = LocalFile(f"{name}-file", path=args["path"], content=text, opts=pulumi.ResourceOptions(parent=self))
        self.config_yaml = pulumi.Output.from_input(text)
        self.api_version = pulumi.Output.from_input(kubeadm_api_version(args["kubernetes_version"]))
        self.register_outputs({"config_yaml": self.config_yaml, "api_version": self.api_version})
