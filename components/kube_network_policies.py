"""KubeNetworkPolicies: kubernetes-sigs' NetworkPolicy enforcer, for clusters whose CNI has none (Flannel)."""

from typing import Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.args import check_args, component_label
from components.versions import KUBE_NETWORK_POLICIES_URL, KUBE_NETWORK_POLICIES_VERSION


class KubeNetworkPoliciesArgs(TypedDict, total=False):
    """Arguments of KubeNetworkPolicies."""

    version: str
    """release whose install.yaml is applied (default components.versions.KUBE_NETWORK_POLICIES_VERSION)."""


class KubeNetworkPolicies(pulumi.ComponentResource):
    """The release's own install.yaml (a DaemonSet in kube-system with its RBAC), fetched at `pulumi up`."""

    manifest_url: pulumi.Output[str]
    """The install.yaml applied."""

    def __init__(self, name: str, args: KubeNetworkPoliciesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        check_args(component_label("KubeNetworkPolicies", name), KubeNetworkPoliciesArgs, args)
        super().__init__("raykube:index:KubeNetworkPolicies", name, None, opts)
        url = KUBE_NETWORK_POLICIES_URL.format(version=args.get("version") or KUBE_NETWORK_POLICIES_VERSION)
        self.manifests = k8s.yaml.v2.ConfigFile(f"{name}-manifests", file=url, opts=pulumi.ResourceOptions(parent=self))
        self.manifest_url = pulumi.Output.from_input(url)
        self.register_outputs({"manifest_url": self.manifest_url})
