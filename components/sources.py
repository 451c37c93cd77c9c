"""Where charts, manifests and images come from: upstream by default, or a local copy or mirror (air-gapped clusters).

Charts: `ChartSourceArgs` picks one of a chart folder, a packaged `.tgz`, an
`oci://` reference or a mirror Helm repository (with its CA, client
certificate and credentials); `chart_location` turns it into helm.v4.Chart's
`chart`, `repository_opts` and `plain_http`. A local chart must be the chart
and version raykube pins (its Chart.yaml says so): Helm ignores `version` for
a path, so nothing else would notice another version.

Images: `mirrored_image` moves an image to a registry prefix, keeping its
path below the registry host: `quay.io/kuberay/operator` ->
`<prefix>/kuberay/operator`, `rayproject/ray:2.60.0-py311` (Docker Hub) ->
`<prefix>/rayproject/ray:2.60.0-py311`, a Docker Hub official image
`busybox` -> `<prefix>/library/busybox`, `registry.k8s.io/x/y` and
`ghcr.io/x/y` -> `<prefix>/x/y`.

Every `*_problem` function returns why a value is refused, or None: the
settings (raykube/settings/sources.py) and the components judge alike.
"""

import os
import re
import tarfile
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, TypedDict
from urllib.parse import urlsplit

import pulumi
import yaml

from components.args import ComponentArgsError
from components.kubernetes_names import host_problem, repository_problem

CHART_KINDS = ("path", "tgz", "oci", "repository")
CREDENTIALS = ("ca_file", "cert_file", "key_file", "username", "password")


class ChartSourceArgs(TypedDict, total=False):
    """Where a chart comes from; set at most one of path, tgz, oci, repository (default: the chart's upstream repository)."""

    path: str
    """an unpacked chart folder (its Chart.yaml names the chart and the pinned version; default unset)."""
    tgz: str
    """a packaged chart file, as `helm package` or `helm pull` writes it (default unset)."""
    oci: str
    """an OCI reference oci://host[:port]/path/<chart>, without a tag: the version is the pinned one (default unset)."""
    repository: str
    """a mirror Helm repository URL (https://, or http:// with allow_http) holding the chart (default unset)."""
    ca_file: str
    """CA bundle (PEM file) of the repository or OCI registry (default unset: the system's)."""
    cert_file: str
    """client certificate (PEM file) for the repository or OCI registry (default unset)."""
    key_file: str
    """the client certificate's key (PEM file); passed as a secret (default unset)."""
    username: pulumi.Input[str]
    """user for HTTP basic authentication; passed as a secret (default unset)."""
    password: pulumi.Input[str]
    """password for HTTP basic authentication; passed as a secret (default unset)."""
    allow_http: bool
    """allow an http:// repository, and plain HTTP to the oci registry (Chart's plain_http; default False: https only)."""


_OCI = re.compile(r"^oci://(?P<host>[^/]+)/(?P<path>[^@]+)$")
_OCI_PATH = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")


def oci_problem(reference: Any, chart: str) -> Optional[str]:
    """Why `reference` is no OCI chart reference for `chart` (oci://host[:port]/path/<chart>, no tag)."""
    if not isinstance(reference, str):
        return f"{reference!r} is not an OCI reference (oci://host/path/{chart})"
    match = _OCI.match(reference)
    if not match:
        return f"{reference!r} is not an OCI reference: oci://host[:port]/path/{chart} (no digest)"
    host, path = match.group("host"), match.group("path")
    hostname, _, port = host.partition(":")
    if (hostname != "localhost" and host_problem(hostname)) or (port and not (port.isdigit() and 0 < int(port) < 65536)):
        return f"{reference!r}: {host!r} is not a registry host[:port]"
    if ":" in path.rsplit("/", 1)[-1]:
        return f"{reference!r} names a tag: leave it out, the version is the one raykube installs"
    if not _OCI_PATH.match(path):
        return f"{reference!r}: {path!r} is not a repository path (lowercase letters, digits, '.', '_', '-', '/')"
    if path.rsplit("/", 1)[-1] != chart:
        return f"{reference!r} must end in the chart's name /{chart} (where `helm push` puts it)"
    return None


def url_problem(url: Any, allow_http: bool, what: str) -> Optional[str]:
    """Why `url` is no mirror URL: https (http only with allow_http), a host, no credentials in it."""
    if not isinstance(url, str):
        return f"{url!r} is not a URL"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises for a bad port)
    except ValueError:
        return f"{url!r} is not a URL"
    if parts.scheme == "http" and not allow_http:
        return f"{url!r} is plain http: use https, or set allowHttp: true for a mirror inside your network"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"{url!r} is not an https:// URL of {what}"
    if parts.username or parts.password:
        return f"{url!r} holds credentials: give them as username and a secure password instead"
    if parts.query or parts.fragment:
        return f"{url!r} has a query or fragment; give the plain URL of {what}"
    return None


def _chart_yaml(location: Path, kind: str, chart: str) -> dict[str, Any]:
    """The Chart.yaml of a chart folder or packaged chart, or ValueError."""
    try:
        if kind == "path":
            text = (location / "Chart.yaml").read_text(encoding="utf-8")
        else:
            with tarfile.open(location, "r:*") as archive:
                member = next((item for item in archive.getmembers() if item.isfile() and item.name.count("/") == 1 and item.name.endswith("/Chart.yaml")), None)
                if member is None:
                    raise ValueError(f"{location} holds no <chart>/Chart.yaml: not a packaged chart (helm package writes one)")
                text = archive.extractfile(member).read().decode("utf-8")  # type: ignore[union-attr]
        document = yaml.safe_load(text)
    except tarfile.TarError:
        raise ValueError(f"{location} is not a packaged chart (a .tgz as helm package or helm pull writes it)") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        reason = getattr(error, "strerror", None) or " ".join(str(error).split())
        raise ValueError(f"{location}: cannot read its Chart.yaml ({reason})") from None
    if not isinstance(document, dict):
        raise ValueError(f"{location}: its Chart.yaml is no mapping")
    return document


def local_chart_problem(location: Any, kind: str, chart: str, version: str) -> Optional[str]:
    """Why a chart folder (`path`) or packaged chart (`tgz`) at `location` is not `chart` at `version`."""
    if not isinstance(location, (str, Path)) or not str(location):
        return f"{location!r} is not a path"
    place = Path(location)
    if kind == "path" and not place.is_dir():
        return f"{location} is not a folder" + (" (a packaged chart goes in tgz)" if place.is_file() else "")
    if kind == "path" and not (place / "Chart.yaml").is_file():
        return f"{location} holds no Chart.yaml: not a chart folder"
    if kind == "tgz" and not place.is_file():
        return f"{location} is not a file" + (" (an unpacked chart folder goes in path)" if place.is_dir() else "")
    try:
        document = _chart_yaml(place, kind, chart)
    except ValueError as error:
        return str(error)
    name, found = document.get("name"), str(document.get("version", ""))
    if name != chart:
        return f"{location} is the chart {name!r}, not {chart!r}"
    if found.lstrip("v") != str(version).lstrip("v"):
        return f"{location} is {chart} {found or '(no version)'}, not the {version} raykube installs: use that release's chart"
    return None


def file_problem(path: Any) -> Optional[str]:
    if not isinstance(path, (str, Path)) or not str(path):
        return f"{path!r} is not a path"
    if not Path(path).is_file():
        return f"{path} is not a file"
    return None


def local_or_mirror(args: Mapping[str, Any], component: str, path_problem: Callable[[Any], Optional[str]],
                    url_key: str, what: str) -> Optional[tuple[str, str]]:
    """What a manifest component's `path` / `<url_key>` / `allow_http` args pick: ("path", its
    absolute path), ("url", the mirror URL), or None for upstream; ComponentArgsError naming the
    field when both are set or the one set cannot give `what`."""
    if args.get("path") and args.get(url_key):
        raise ComponentArgsError(component, url_key, f"set path or {url_key}, not both")
    if args.get("path"):
        problem = path_problem(args["path"])
        if problem:
            raise ComponentArgsError(component, "path", problem)
        return "path", os.path.abspath(args["path"])
    if args.get(url_key):
        problem = url_problem(args[url_key], bool(args.get("allow_http")), what)
        if problem:
            raise ComponentArgsError(component, url_key, problem)
        return "url", args[url_key]
    return None


def chart_source_problem(source: Mapping[str, Any], chart: str, version: str) -> Optional[tuple[str, str]]:
    """(field, why) for a ChartSourceArgs that cannot fetch `chart` at `version`, or None."""
    kinds = [kind for kind in CHART_KINDS if source.get(kind)]
    if len(kinds) > 1:
        return kinds[1], f"set one of {', '.join(CHART_KINDS)}, not {' and '.join(kinds)}"
    kind = kinds[0] if kinds else None
    given = [field for field in CREDENTIALS if source.get(field) is not None]
    if given and kind not in ("oci", "repository"):
        return given[0], "credentials and certificates are for an oci reference or a repository"
    if source.get("allow_http") and kind not in ("oci", "repository"):
        return "allow_http", "plain HTTP is for an oci reference or a repository"
    if kind in ("path", "tgz"):
        problem = local_chart_problem(source[kind], kind, chart, version)
        return (kind, problem) if problem else None
    if kind == "oci":
        problem = oci_problem(source["oci"], chart)
        if problem:
            return "oci", problem
    if kind == "repository":
        problem = url_problem(source["repository"], bool(source.get("allow_http")), "a Helm repository")
        if problem:
            return "repository", problem
    for field in ("ca_file", "cert_file", "key_file"):
        if source.get(field) is not None and file_problem(source[field]):
            return field, file_problem(source[field])  # type: ignore[return-value]
    if (source.get("cert_file") is None) != (source.get("key_file") is None):
        return ("key_file" if source.get("cert_file") else "cert_file"), "a client certificate needs both cert_file and key_file"
    if (source.get("username") is None) != (source.get("password") is None):
        return ("password" if source.get("username") is not None else "username"), "basic authentication needs both username and password"
    return None


def chart_location(source: Optional[Mapping[str, Any]], chart: str, repository: str) -> dict[str, Any]:
    """helm.v4.Chart's chart, repository_opts (and plain_http) for `source`; upstream `repository` when it is empty."""
    source = source or {}
    if source.get("path") or source.get("tgz"):
        return {"chart": os.path.abspath(source.get("path") or source["tgz"])}
    opts: dict[str, Any] = {}
    for field in ("ca_file", "cert_file"):
        if source.get(field):
            opts[field] = pulumi.FileAsset(os.path.abspath(source[field]))
    if source.get("key_file"):
        opts["key_file"] = pulumi.Output.secret(pulumi.FileAsset(os.path.abspath(source["key_file"])))
    for field in ("username", "password"):
        if source.get(field) is not None:
            opts[field] = pulumi.Output.secret(source[field])
    location: dict[str, Any] = {}
    if source.get("oci"):
        location["chart"] = source["oci"]
        if source.get("allow_http"):
            location["plain_http"] = True
    else:
        location["chart"] = chart
        opts["repo"] = source.get("repository") or repository
    if opts:
        location["repository_opts"] = opts
    return location


def image_registry_problem(registry: Any) -> Optional[str]:
    """Why `registry` is no registry prefix (host[:port][/path], the host with a '.' or ':' or localhost)."""
    if not isinstance(registry, str) or not registry:
        return f"{registry!r} is not a registry prefix such as registry.example.com/mirror"
    if "://" in registry:
        return f"{registry!r}: a registry prefix has no scheme (registry.example.com/mirror)"
    host = registry.split("/", 1)[0]
    if not ("." in host or ":" in host or host == "localhost"):
        # Docker reads `mirror/rayproject/ray` as Docker Hub's user "mirror": the internet again.
        return f"{registry!r} does not start with a registry host (a name with '.' or ':port', or localhost); it would mean Docker Hub"
    if repository_problem(f"{registry.rstrip('/')}/image"):
        return f"{registry!r} is not a registry host[:port][/path] (lowercase path, no tag)"
    return None


def _registry_host(first: str) -> bool:
    return "." in first or ":" in first or first == "localhost"


def mirrored_image(image: str, registry: Optional[str]) -> str:
    """`image` pulled from `registry` instead: its registry host replaced by the prefix (module docstring)."""
    if not registry:
        return image
    first, _, rest = image.partition("/")
    if rest and _registry_host(first):
        path = rest
        if first in ("docker.io", "index.docker.io", "registry-1.docker.io") and "/" not in path:
            path = f"library/{path}"
    else:
        path = image if "/" in image else f"library/{image}"  # Docker Hub, implicit
    return f"{registry.rstrip('/')}/{path}"


_POD_TEMPLATE_KINDS = {"DaemonSet", "Deployment", "StatefulSet", "ReplicaSet", "Job"}


def rewrite_pod_images(props: Mapping[str, Any], registry: str) -> Optional[dict[str, Any]]:
    """A workload object's props with every container image mirrored; None when it has no pod template."""
    if props.get("kind") not in _POD_TEMPLATE_KINDS and props.get("kind") != "CronJob":
        return None
    import copy

    props = copy.deepcopy(dict(props))
    spec = props.get("spec") or {}
    if props.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    pod = ((spec.get("template") or {}).get("spec")) or {}
    for key in ("initContainers", "containers"):
        for container in pod.get(key) or []:
            if isinstance(container.get("image"), str):
                container["image"] = mirrored_image(container["image"], registry)
    return props


def mirror_images_transform(registry: str) -> Callable[[pulumi.ResourceTransformArgs], Optional[pulumi.ResourceTransformResult]]:
    """A transform for a manifest's objects (yaml.v2 children): every pod template's images from `registry`."""

    def transform(args: pulumi.ResourceTransformArgs) -> Optional[pulumi.ResourceTransformResult]:
        rewritten = rewrite_pod_images(args.props, registry)
        if rewritten is None:
            return None
        return pulumi.ResourceTransformResult(props=rewritten, opts=args.opts)

    return transform
