"""KubeNetworkPolicies: kubernetes-sigs' NetworkPolicy enforcer, for clusters whose CNI has none (Flannel)."""

from typing import Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from components.args import check_args, component_label
from components.pinned_chart import check_image_registry
from components.sources import file_problem, local_or_mirror, mirror_images_transform
from components.versions import KUBE_NETWORK_POLICIES_URL, KUBE_NETWORK_POLICIES_VERSION


class KubeNetworkPoliciesArgs(TypedDict, total=False):
    """Arguments of KubeNetworkPolicies."""

    version: str
    """release whose install.yaml is applied (default components.versions.KUBE_NETWORK_POLICIES_VERSION)."""
    path: str
    """a local copy of that release's install.yaml (default unset: the release tag on GitHub)."""
    url: str
    """a mirror URL (https) of that release's install.yaml (default unset: the release tag on GitHub)."""
    allow_http: bool
    """allow an http:// url (default False)."""
    image_registry: str
    """registry prefix the manifest's images are pulled from, e.g. registry.example.com/mirror (default unset: as the manifest says)."""


def manifest_source(args: KubeNetworkPoliciesArgs, component: str = "KubeNetworkPolicies") -> str:
    """The install.yaml to apply: a local file, a mirror URL, or the release tag's."""
    chosen = local_or_mirror(args, component, file_problem, "url", "install.yaml")
    if chosen:
        return chosen[1]
    return KUBE_NETWORK_POLICIES_URL.format(version=args.get("version") or KUBE_NETWORK_POLICIES_VERSION)


class KubeNetworkPolicies(pulumi.ComponentResource):
    """The release's own install.yaml (a DaemonSet in kube-system with its RBAC), fetched at `pulumi up`."""

    manifest_url: pulumi.Output[str]
    """The install.yaml applied."""

    def __init__(self, name: str, args: KubeNetworkPoliciesArgs, opts: Optional[pulumi.ResourceOptions] = None):
        label = component_label("KubeNetworkPolicies", name)
        check_args(label, KubeNetworkPoliciesArgs, args)
        url = manifest_source(args, label)
        registry = args.get("image_registry")
        check_image_registry(label, registry)
        super().__init__("raykube:index:KubeNetworkPolicies", name, None, opts)
        # The manifest's images are rewritten as its objects are registered (a transform reaches yaml.v2's children).
        transforms = [mirror_images_transform(registry)] if registry else None
        self.manifests = k8s.yaml.v2.ConfigFile(f"{name}-manifests", file=url, opts=pulumi.ResourceOptions(parent=self, transforms=transforms))
        self.manifest_url = pulumi.Output.from_input(url)
        self.register_outputs({"manifest_url": self.manifest_url})
