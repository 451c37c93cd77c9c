"""All settings of one stack, and the rules that span sections (target, namespaces)."""
from __future__ import annotations

import re
from typing import Any, Optional

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components.kuberay_crds import crd_folder_problem
from components.sources import chart_source_problem, file_problem, image_registry_problem, mirrored_image, url_problem
from components.versions import FLANNEL_VERSION, KUBE_PROMETHEUS_STACK_VERSION, METRICS_SERVER_CHART_VERSION

from components.kuberay_operator import EMBEDDED_GCS_STORAGE_GATE, INCREMENTAL_UPGRADE_GATE
from components.ray_service import INCREMENTAL_UPGRADE
from raykube.settings.aws import AwsAccessSettings
from raykube.settings.cluster import AutoscalingSettings, KubeadmSettings, MetricsSettings, NetworkSettings
from raykube.settings.model import Model
from raykube.settings.names import check_derived_names
from raykube.settings.namespaces import ingress_controller_namespace
from raykube.settings.network_policies import NetworkPolicySettings, namespace_name
from raykube.settings.observability import ObservabilitySettings
from raykube.settings.operator import OperatorSettings, ray_version_problem
from raykube.settings.ray_cluster import RayClusterSettings, version_tuple
from raykube.settings.ray_jobs import RayJobSettings
from raykube.settings.ray_services import RayServiceSettings
from raykube.settings.sources import SourcesSettings, project_path
from raykube.targets import TARGETS, TargetName

def _snake(key: str) -> str:
    return re.sub(r"([A-Z])", lambda match: "_" + match.group(1).lower(), key)


# The Kubernetes minor versions raykube renders for: the range the official
# schemas in kubernetes-validate cover, so every object is checked for it.
KUBERNETES_MINOR_RANGE = (25, 37)


class Settings(Model):
    """All of raykube's settings for one stack."""

    target: TargetName = Field(default="local", description="local | eks | aks | gke")
    kubernetes_version: str = Field(default="1.33", description="Kubernetes minor version (1.25-1.37), or x.y.z")
    kubeconfig: Optional[str] = Field(default=None, description="kubeconfig path; default KUBECONFIG / ~/.kube/config")
    kube_context: Optional[str] = Field(default=None, description="kubeconfig context; default the current one")
    network: Optional[NetworkSettings] = Field(default=None, description="pod/Service networks (local only)")
    kubeadm: Optional[KubeadmSettings] = Field(default=None, description="kubeadm config file (local only)")
    autoscaling: AutoscalingSettings = Field(default_factory=AutoscalingSettings, description="HPA behaviour")
    metrics: Optional[MetricsSettings] = Field(default=None, description="metrics-server (local, eks)")
    operator: OperatorSettings = Field(default_factory=OperatorSettings, description="KubeRay")
    ray_clusters: list[RayClusterSettings] = Field(
        default_factory=lambda: [RayClusterSettings()], description="Ray clusters, each in its namespace"
    )
    adopt_namespaces: list[str] = Field(
        default_factory=list,
        description="Ray namespaces that exist already and hold other workloads too: raykube neither creates, labels nor deletes them, "
        "and its NetworkPolicies there select Ray's and the operator's pods alone; default none: raykube creates every Ray namespace "
        "(the API server refuses one that exists) and denies all traffic there but Ray's",
    )
    aws_access: AwsAccessSettings = Field(default_factory=AwsAccessSettings, description="AWS access for Ray jobs")
    ray_jobs: list[RayJobSettings] = Field(default_factory=list, description="RayJobs: jobs KubeRay runs, each on its own cluster or a RayCluster")
    ray_services: list[RayServiceSettings] = Field(
        default_factory=list, description="RayServices: Ray Serve applications, each on a cluster KubeRay upgrades without dropping traffic (docs/serving.md)"
    )
    network_policies: NetworkPolicySettings = Field(
        default_factory=NetworkPolicySettings, description="NetworkPolicies of the Ray namespaces (on by default)"
    )
    observability: ObservabilitySettings = Field(
        default_factory=ObservabilitySettings, description="Prometheus scraping, Grafana dashboards, the Ray dashboard's graphs (off by default)"
    )
    sources: SourcesSettings = Field(
        default_factory=SourcesSettings,
        description="air-gapped clusters: charts, KubeRay CRDs, manifests and images from local files or mirrors (docs/air-gapped.md); default upstream",
    )

    @field_validator("sources")
    @classmethod
    def _image_registry(cls, sources: SourcesSettings) -> SourcesSettings:
        if sources.image_registry is not None:
            problem = image_registry_problem(sources.image_registry)
            if problem:
                raise ValueError(f"__imageRegistry__ {problem}")
        return sources

    @field_validator("kubernetes_version", mode="before")
    @classmethod
    def _version(cls, version: Any) -> str:
        if not isinstance(version, str):
            raise ValueError(f"{version!r} must be a quoted string such as \"1.33\" (YAML reads 1.30 as 1.3)")
        match = re.match(r"^v?1\.(\d+)(?:\.(\d+))?$", version)
        low, high = KUBERNETES_MINOR_RANGE
        if not match or not low <= int(match.group(1)) <= high:
            raise ValueError(f"{version!r} is not a supported Kubernetes version (1.{low} to 1.{high}, e.g. \"1.33\")")
        return version.lstrip("v")

    @field_validator("kubeconfig", "kube_context")
    @classmethod
    def _empty_is_default(cls, value: Optional[str]) -> Optional[str]:
        return value or None

    @field_validator("network", "kubeadm")
    @classmethod
    def _local_only(cls, value: Any, info: ValidationInfo) -> Any:
        target = info.data.get("target")
        profile = TARGETS.get(target) if target else None
        if profile is not None and not profile.kubeadm_config:
            raise ValueError(f"only the local target uses this section; {profile.title} manages its own nodes and network")
        return value

    @field_validator("metrics")
    @classmethod
    def _metrics_target(cls, value: Any, info: ValidationInfo) -> Any:
        target = info.data.get("target")
        profile = TARGETS.get(target) if target else None
        if profile is not None and not profile.metrics_server:
            raise ValueError(f"{profile.title} runs its own metrics-server; remove this section")
        return value

    @field_validator("ray_clusters")
    @classmethod
    def _unique_clusters(cls, clusters: list[RayClusterSettings]) -> list[RayClusterSettings]:
        seen: dict[tuple[str, str], int] = {}
        for index, cluster in enumerate(clusters):
            key = (cluster.namespace, cluster.name)
            if key in seen:
                raise ValueError(f"__{index}.name__ duplicate cluster {cluster.name!r} in namespace {cluster.namespace!r}")
            seen[key] = index
        if not clusters:
            raise ValueError("at least one Ray cluster is needed")
        return clusters

    @field_validator("adopt_namespaces")
    @classmethod
    def _adopted_are_ray_namespaces(cls, adopted: list[str], info: ValidationInfo) -> list[str]:
        clusters = info.data.get("ray_clusters")
        ray_namespaces = list(dict.fromkeys(cluster.namespace for cluster in clusters)) if clusters else None
        for index, namespace in enumerate(adopted):
            namespace_name(namespace)
            if adopted.index(namespace) != index:
                raise ValueError(f"__{index}__ {namespace!r} is listed twice")
            if ray_namespaces is not None and namespace not in ray_namespaces:
                # Adopting is about a namespace Ray runs in: anything else would be a silent no-op.
                raise ValueError(f"__{index}__ {namespace!r} is no Ray namespace (rayClusters[].namespace: {', '.join(ray_namespaces)})")
        return adopted

    @field_validator("aws_access")
    @classmethod
    def _aws_target(cls, aws: AwsAccessSettings, info: ValidationInfo) -> AwsAccessSettings:
        target = info.data.get("target")
        profile = TARGETS.get(target) if target else None
        if aws.mode == "irsa" and target is not None and target != "eks":
            raise ValueError(f"__mode__ irsa needs the eks target (this stack's target is {target})")
        if profile is not None and aws.mode not in profile.aws_access_modes:
            raise ValueError(f"__mode__ {aws.mode} is not available on {profile.title} (there: {', '.join(profile.aws_access_modes)})")
        # A kubeadm cluster's own issuer (https://kubernetes.default.svc.cluster.local) is not reachable by AWS:
        # raykube sets one it publishes. A managed cluster's issuer is the cloud's, already public.
        if profile is not None and profile.kubeadm_config and aws.oidc_issuer:
            raise ValueError(f"__oidcIssuer__ on {profile.title} the issuer is the one raykube publishes: remove oidcIssuer, set issuerBucket")
        if profile is not None and not profile.kubeadm_config and aws.issuer_bucket:
            raise ValueError(f"__issuerBucket__ {profile.title}'s issuer is the cloud's, already public: set oidcIssuer instead")
        if profile is not None and aws.mode == "webIdentity":
            if profile.kubeadm_config and not aws.issuer_bucket:
                raise ValueError(
                    f"__issuerBucket__ webIdentity on {profile.title} needs a bucket to publish the cluster's issuer in "
                    "(AWS cannot reach https://kubernetes.default.svc.cluster.local): name one raykube may create"
                )
            if not profile.kubeadm_config and not aws.oidc_issuer:
                raise ValueError(
                    "__oidcIssuer__ webIdentity needs the cluster's service-account issuer, as AWS reaches it "
                    "(EKS: oidc.eks.<region>.amazonaws.com/id/<id>; GKE: container.googleapis.com/v1/projects/<p>/locations/<l>/clusters/<c>; "
                    "AKS: the cluster's oidcIssuerProfile.issuerUrl)"
                )
        return aws

    @field_validator("network_policies")
    @classmethod
    def _enforcer_target(cls, policies: NetworkPolicySettings, info: ValidationInfo) -> NetworkPolicySettings:
        target = info.data.get("target")
        profile = TARGETS.get(target) if target else None
        if policies.enforcer != "none" and profile is not None and not profile.flannel:
            raise ValueError(f"__enforcer__ only the local target installs a NetworkPolicy enforcer; {profile.title}'s network plugin enforces them (or is set up to)")
        return policies

    @model_validator(mode="after")
    def _jobs_have_an_operator_and_their_cluster(self) -> "Settings":
        namespaces = self.namespaces
        clusters = {(cluster.namespace, cluster.name) for cluster in self.ray_clusters}
        seen: set[tuple[str, str]] = set()
        for index, job in enumerate(self.ray_jobs):
            if job.namespace not in namespaces:
                raise ValueError(
                    f"__rayJobs.{index}.namespace__ {job.namespace!r} has no KubeRay operator: use a namespace of rayClusters[] ({', '.join(namespaces)})"
                )
            if job.cluster is not None and (job.namespace, job.cluster) not in clusters:
                names = sorted(name for namespace, name in clusters if namespace == job.namespace)
                raise ValueError(f"__rayJobs.{index}.cluster__ no RayCluster {job.cluster!r} in namespace {job.namespace} (there: {', '.join(names)})")
            if job.code is not None and self.aws_access.mode == "none":
                raise ValueError(f"__rayJobs.{index}.code__ the job's code is uploaded to awsAccess.bucket: set awsAccess (mode secret or irsa), or use runtimeEnv.working_dir")
            if (job.namespace, job.name) in seen:
                raise ValueError(f"__rayJobs.{index}.name__ duplicate RayJob {job.name!r} in namespace {job.namespace}")
            seen.add((job.namespace, job.name))
        return self

    @model_validator(mode="after")
    def _services_have_an_operator_and_their_code_a_bucket(self) -> "Settings":
        namespaces = self.namespaces
        seen: set[tuple[str, str]] = set()
        operator = version_tuple(self.operator.version)
        for index, service in enumerate(self.ray_services):
            if service.namespace not in namespaces:
                raise ValueError(
                    f"__rayServices.{index}.namespace__ {service.namespace!r} has no KubeRay operator: use a namespace of rayClusters[] ({', '.join(namespaces)})"
                )
            if service.code is not None and self.aws_access.mode == "none":
                raise ValueError(
                    f"__rayServices.{index}.code__ the service's code is uploaded to awsAccess.bucket: set awsAccess (mode secret or irsa), "
                    "or give each application a runtimeEnv.working_dir"
                )
            if (service.namespace, service.name) in seen:
                raise ValueError(f"__rayServices.{index}.name__ duplicate RayService {service.name!r} in namespace {service.namespace}")
            seen.add((service.namespace, service.name))
            if operator < (1, 5, 1):
                # The service's cluster has token authentication, as every cluster raykube makes.
                raise ValueError(
                    f"__rayServices.{index}__ a RayService's cluster uses token authentication, which needs KubeRay 1.5.1 or later "
                    f"(operator.version is {self.operator.version}): upgrade the operator"
                )
            if service.upgrade_strategy == INCREMENTAL_UPGRADE and not self.operator.gate_enabled(INCREMENTAL_UPGRADE_GATE):
                raise ValueError(
                    f"__rayServices.{index}.upgradeStrategy__ {INCREMENTAL_UPGRADE} needs the operator's {INCREMENTAL_UPGRADE_GATE} feature gate, "
                    f"off for KubeRay {self.operator.version} as this stack sets it: set operator.featureGates.{INCREMENTAL_UPGRADE_GATE}: true "
                    "(and install the Gateway API CRDs and a controller for clusterUpgradeOptions.gatewayClassName), or use upgradeStrategy: NewCluster"
                )
        return self

    @model_validator(mode="after")
    def _monitoring_namespace_is_not_a_ray_namespace(self) -> "Settings":
        observability = self.observability
        if observability.enabled and observability.namespace in self.namespaces:
            # A Ray namespace denies every ingress but Ray's: Prometheus and Grafana would be cut off.
            raise ValueError(
                f"__observability.namespace__ {observability.namespace!r} is a Ray namespace (its NetworkPolicies let only Ray in): use a namespace of its own"
            )
        return self

    @model_validator(mode="after")
    def _ray_namespaces_are_not_the_networks(self) -> "Settings":
        """The namespaces the policies name as other parties (Ingress controllers, DNS) are shared, never Ray's."""
        policies = self.network_policies
        shared: dict[str, str] = {}
        for peer in policies.dns or ():
            if peer.namespace:
                shared.setdefault(peer.namespace, "networkPolicies.dns")
        if policies.ingress_controller_namespace:
            shared.setdefault(policies.ingress_controller_namespace, "networkPolicies.ingressControllerNamespace")
        for index, cluster in enumerate(self.ray_clusters):
            if cluster.dashboard_ingress.enabled:
                controller = ingress_controller_namespace(cluster.dashboard_ingress.class_name, policies.ingress_controller_namespace)
                shared.setdefault(controller, f"the Ingress controller of rayClusters[{index}].dashboardIngress")
        for index, service in enumerate(self.ray_services):
            if service.serve_ingress.enabled:
                controller = ingress_controller_namespace(service.serve_ingress.class_name, policies.ingress_controller_namespace)
                shared.setdefault(controller, f"the Ingress controller of rayServices[{index}].serveIngress")
        for index, cluster in enumerate(self.ray_clusters):
            if cluster.namespace in shared:
                raise ValueError(
                    f"__rayClusters.{index}.namespace__ {cluster.namespace!r} is {shared[cluster.namespace]}'s namespace: "
                    "Ray needs a namespace of its own"
                )
        return self

    @model_validator(mode="after")
    def _every_derived_name_is_unique_and_fits(self) -> "Settings":
        check_derived_names(self)
        return self

    @model_validator(mode="after")
    def _renewer_namespace_is_its_own(self) -> "Settings":
        access = self.aws_access
        if access.mode == "secret" and access.effective_renewal == "cluster" and access.renewer_namespace in self.namespaces:
            # A Ray namespace denies all egress but DNS and Ray's own: the renewer could reach neither STS nor the API.
            raise ValueError(f"__awsAccess.renewerNamespace__ {access.renewer_namespace!r} is a Ray namespace: use a namespace of its own")
        return self

    @model_validator(mode="after")
    def _published_issuer_keeps_the_clusters_tokens(self) -> "Settings":
        if self.aws_access.issuer_bucket and self.profile.kubeadm_config and version_tuple(self.kubernetes_version) < (1, 31):
            # kubeadm's v1beta3 extraArgs are a map: the old issuer cannot stay accepted beside the published one,
            # and every token the cluster has handed out would stop working.
            raise ValueError(
                f"__kubernetesVersion__ awsAccess.issuerBucket needs Kubernetes 1.31 or later (kubeadm v1beta4 lists the old issuer "
                f"beside the published one, so the cluster's tokens stay valid); this stack has {self.kubernetes_version}"
            )
        return self

    @model_validator(mode="after")
    def _operator_supports_the_clusters(self) -> "Settings":
        """Features the KubeRay operator must know, or it ignores them silently."""
        operator = version_tuple(self.operator.version)
        problems = []
        for index, cluster in enumerate(self.ray_clusters):
            unsupported = ray_version_problem(cluster.effective_ray_version, self.operator.version)
            if unsupported:
                problems.append(f"__{index}.rayVersion__ {cluster.effective_ray_version}: {unsupported} (operator.version is {self.operator.version})")
            needs = []
            if cluster.auth.mode == "token":
                needs.append(((1, 5, 1), "auth.mode", "token authentication (authOptions)", "set auth.mode: disabled"))
            if cluster.upgrade_strategy == "Recreate":
                needs.append(((1, 6, 0), "upgradeStrategy", "upgradeStrategy", "set upgradeStrategy: None"))
            if cluster.gcs_fault_tolerance is not None and cluster.gcs_fault_tolerance.backend == "rocksdb":
                needs.append(((1, 7, 0), "gcsFaultTolerance.backend", "the rocksdb GCS backend", "use backend: redis"))
            if (
                cluster.gcs_fault_tolerance is not None and cluster.gcs_fault_tolerance.backend == "rocksdb"
                and self.operator.feature_gates.get(EMBEDDED_GCS_STORAGE_GATE) is False
            ):
                problems.append(
                    f"__{index}.gcsFaultTolerance.backend__ rocksdb needs the operator's {EMBEDDED_GCS_STORAGE_GATE} feature gate, "
                    "which operator.featureGates turns off: remove that entry, or use backend: redis"
                )
            for minimum, key, what, instead in needs:
                if operator < minimum:
                    problems.append(
                        f"__{index}.{key}__ {what} needs KubeRay {'.'.join(map(str, minimum))} or later "
                        f"(operator.version is {self.operator.version}): upgrade the operator or {instead}"
                    )
        if problems:
            # One message per cluster key; pydantic reports the first, naming it.
            raise ValueError(problems[0].replace("__", "__rayClusters.", 1))
        return self

    @model_validator(mode="after")
    def _sources_can_be_fetched(self, info: ValidationInfo) -> "Settings":
        """Each source holds what raykube installs, for a part this stack installs; passwords are secrets."""
        sources = self.sources
        secret_keys = (info.context or {}).get("secret_keys", ()) if info else ()
        profile = self.profile
        charts = {
            "kuberayOperator": ("kuberay-operator", self.operator.version, None),
            "metricsServer": ("metrics-server", METRICS_SERVER_CHART_VERSION, None if profile.metrics_server else f"{profile.title} runs its own metrics-server"),
            "flannel": ("flannel", FLANNEL_VERSION, None if profile.flannel else f"{profile.title} has its own pod network (no Flannel)"),
            "kubePrometheusStack": (
                "kube-prometheus-stack", KUBE_PROMETHEUS_STACK_VERSION,
                None if self.observability.mode == "install" else "only observability.mode install installs kube-prometheus-stack",
            ),
        }
        for key, (chart, version, unused) in charts.items():
            source = getattr(sources.charts, _snake(key))
            if source is None:
                continue
            where = f"sources.charts.{key}"
            if unused:
                raise ValueError(f"__{where}__ {unused}: remove this source")
            if source.password is not None and not (source.password.written_secure or "sources" in secret_keys):
                raise ValueError(
                    f"__{where}.password__ is plaintext in the stack file: set it as a secret "
                    f"(pulumi config set --secret --path 'sources.charts.{key}.password' ...), it is then written as `secure:`"
                )
            problem = chart_source_problem(source.component_args(), chart, version)
            if problem:
                raise ValueError(f"__{where}.{to_camel(problem[0])}__ {problem[1]}")
        crds = sources.crds
        if crds is not None:
            if not self.operator.install_crds:
                raise ValueError("__sources.crds__ operator.installCrds is false: this stack installs no CRDs, remove this source")
            if (crds.path is None) == (crds.base_url is None):
                raise ValueError("__sources.crds__ set one of path (a local folder) or baseUrl (a mirror)")
            problem = crd_folder_problem(project_path(crds.path), self.operator.version) if crds.path is not None else url_problem(crds.base_url, crds.allow_http, "a folder of CRD files")
            if problem:
                raise ValueError(f"__sources.crds.{'path' if crds.path is not None else 'baseUrl'}__ {problem}")
        manifest = sources.manifests.kube_network_policies
        if manifest is not None:
            where = "sources.manifests.kubeNetworkPolicies"
            if self.network_policies.enforcer != "kube-network-policies":
                raise ValueError(f"__{where}__ only networkPolicies.enforcer kube-network-policies applies this manifest: remove this source")
            if (manifest.path is None) == (manifest.url is None):
                raise ValueError(f"__{where}__ set one of path (a local file) or url (a mirror)")
            problem = file_problem(project_path(manifest.path)) if manifest.path is not None else url_problem(manifest.url, manifest.allow_http, "install.yaml")
            if problem:
                raise ValueError(f"__{where}.{'path' if manifest.path is not None else 'url'}__ {problem}")
        return self

    def ray_image(self, cluster: RayClusterSettings, group: Any = None) -> str:
        """A Ray image as pods pull it: from sources.imageRegistry, unless the stack names the image itself."""
        image = cluster.image_for(group) if group is not None else cluster.pinned_image
        own = cluster.image is not None or (group is not None and group.image is not None)
        return image if own else mirrored_image(image, self.sources.image_registry)

    # Effective values: the target profile fills what the stack left out.
    @property
    def profile(self):
        return TARGETS[self.target]

    @property
    def kubernetes_minor(self) -> str:
        return ".".join(self.kubernetes_version.split(".")[:2])

    @property
    def effective_network(self) -> NetworkSettings:
        return self.network or NetworkSettings()

    @property
    def effective_kubeadm(self) -> KubeadmSettings:
        return self.kubeadm or KubeadmSettings()

    @property
    def effective_metrics(self) -> MetricsSettings:
        return self.metrics or MetricsSettings()

    @property
    def kubelet_insecure_tls(self) -> bool:
        chosen = self.effective_metrics.kubelet_insecure_tls
        return self.profile.kubelet_insecure_tls if chosen is None else chosen

    @property
    def namespaces(self) -> list[str]:
        """Ray namespaces in first-use order."""
        return list(dict.fromkeys(cluster.namespace for cluster in self.ray_clusters))

    @property
    def created_namespaces(self) -> list[str]:
        """The Ray namespaces raykube creates and owns (all but the adopted ones)."""
        return [namespace for namespace in self.namespaces if namespace not in self.adopt_namespaces]
