"""Ray Serve applications as KubeRay RayServices: the Serve config, the cluster that runs it, upgrades, the endpoint.

The typed Serve settings are Ray Serve's config (ray.serve.schema.ServeDeploySchema,
Ray 2.60) in camelCase: each maps to the snake_case key Ray reads, and the rules
Ray's schema applies (import path form, route prefixes, replicas or autoscaling,
ranges) are checked here, so a config Ray would refuse stops `pulumi up` before
anything is registered. `extra`, at each level, passes any other key of Ray's
schema through, as Ray spells it; a key Ray's schema does not have is refused.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from components import defaults
from components.ray_service import INCREMENTAL_UPGRADE, RAY_SERVICE_NAME_MAX, SERVE_PORT
from raykube.code_folder import MAX_CODE_BYTES, check_code_folder
from raykube.settings.dashboard import DashboardIngress
from raykube.settings.model import DNS1035, INT32_MAX, Model
from raykube.settings.ray_cluster import AutoscalerOptions, installed_ray_version, require_a_place_for_tasks, require_gpu_images
from raykube.settings.ray_groups import HeadGroup, WorkerGroup

# Ray Serve 2.60's config keys at each level (ray/serve/schema.py, ray/serve/config.py;
# tests/test_ray_services.py holds these to the installed Ray's schema).
SERVE_CONFIG_KEYS = frozenset({
    "proxy_location", "http_options", "grpc_options", "controller_options", "logging_config", "tracing_config", "applications",
    "target_capacity",
})
APPLICATION_KEYS = frozenset({
    "name", "route_prefix", "import_path", "runtime_env", "host", "port", "deployments", "autoscaling_policy", "args",
    "logging_config", "external_scaler_enabled",
})
DEPLOYMENT_KEYS = frozenset({
    "name", "num_replicas", "max_ongoing_requests", "max_queued_requests", "backpressure_config", "user_config",
    "autoscaling_config", "graceful_shutdown_wait_loop_s", "graceful_shutdown_timeout_s", "health_check_period_s",
    "health_check_timeout_s", "ray_actor_options", "placement_group_bundles", "placement_group_strategy",
    "placement_group_bundle_label_selector", "max_replicas_per_node", "logging_config", "request_router_config",
    "gang_scheduling_config", "deployment_actors", "rolling_update_percentage", "max_surge_percent",
})
ACTOR_OPTION_KEYS = frozenset({
    "runtime_env", "num_cpus", "num_gpus", "memory", "resources", "accelerator_type", "label_selector", "fallback_strategy",
})
AUTOSCALING_KEYS = frozenset({
    "min_replicas", "initial_replicas", "max_replicas", "target_ongoing_requests", "metrics_interval_s", "look_back_period_s",
    "smoothing_factor", "upscale_smoothing_factor", "downscale_smoothing_factor", "upscaling_factor", "downscaling_factor",
    "downscale_delay_s", "downscale_to_zero_delay_s", "upscale_delay_s", "aggregation_function", "policy",
})
# Runtime-env fields whose values Ray fetches by URI (Serve takes remote URIs only there).
URI_FIELDS = ("working_dir", "py_modules")
# Ray's keys that have a typed setting, by level, and the setting's name where it is not the camelCase one.
TYPED = {
    "config": {"applications": "applications"},
    "application": {"name": "name", "import_path": "importPath", "route_prefix": "routePrefix", "runtime_env": "runtimeEnv", "deployments": "deployments"},
    "deployment": {"name": "name", "num_replicas": "numReplicas", "max_ongoing_requests": "maxOngoingRequests", "autoscaling_config": "autoscaling",
                   "ray_actor_options": "rayActorOptions"},
    "autoscaling_config": {"min_replicas": "minReplicas", "max_replicas": "maxReplicas", "initial_replicas": "initialReplicas",
                           "target_ongoing_requests": "targetOngoingRequests"},
    "ray_actor_options": {"num_cpus": "numCpus", "num_gpus": "numGpus", "memory": "memory", "resources": "resources"},
}
NEXT_LEVEL = {("config", "applications"): "application", ("application", "deployments"): "deployment",
              ("deployment", "autoscaling_config"): "autoscaling_config", ("deployment", "ray_actor_options"): "ray_actor_options"}


def settings_key(ray_location: tuple[Any, ...]) -> str:
    """Where a Ray Serve schema error's location is in the settings: applications.0.deployments.0.extra.user_config."""
    parts: list[str] = []
    level = "config"
    for index, part in enumerate(ray_location):
        if isinstance(part, int):
            parts.append(str(part))
            continue
        typed = TYPED.get(level, {})
        if part not in typed:
            parts += ["extra", *(str(rest) for rest in ray_location[index:])]
            break
        parts.append(typed[part])
        level = NEXT_LEVEL.get((level, part), level)
    return ".".join(parts)


def serve_schema_problem(config: dict[str, Any]) -> Optional[tuple[str, str]]:
    """(settings key, Ray's message) where Ray Serve's own models refuse `config`, or None: its
    ServeDeploySchema, and the AutoscalingConfig each deployment's autoscaling_config becomes when
    deployed (the schema keeps that one a plain mapping)."""
    from pydantic import ValidationError

    try:
        from ray.serve.config import AutoscalingConfig
        from ray.serve.schema import ServeDeploySchema
    except ImportError as error:  # ray[serve] is a requirement of the project
        return "", f"checking it needs Ray Serve (pip install -r requirements.txt): {error}"
    checks: list[tuple[tuple[Any, ...], Any, Any]] = [((), ServeDeploySchema, config)]
    for app_index, application in enumerate(config.get("applications") or ()):
        for index, deployment in enumerate(application.get("deployments") or ()):
            if isinstance(deployment.get("autoscaling_config"), dict):
                where = ("applications", app_index, "deployments", index, "autoscaling_config")
                checks.append((where, AutoscalingConfig, deployment["autoscaling_config"]))
    for prefix, model, value in checks:
        try:
            model.model_validate(value)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            location = prefix + tuple(part for part in first["loc"] if not (isinstance(part, str) and ("[" in part or part.startswith("function-"))))
            return settings_key(location), first["msg"].removeprefix("Value error, ")
    return None


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def check_extra(extra: dict[str, Any], known: frozenset[str], typed: set[str], level: str) -> dict[str, Any]:
    """`extra` holds keys of Ray's schema at `level` that have no typed setting; each one once."""
    for key in extra:
        if key in typed:
            raise ValueError(f"__{key}__ has a typed setting: use {_camel(key)} instead of extra.{key}")
        if key not in known:
            raise ValueError(
                f"__{key}__ Ray Serve's {level} has no key {key!r} (Ray 2.60's: {', '.join(sorted(known - typed))}); "
                "extra takes Ray's own snake_case names"
            )
    return extra


def remote_uri_problem(uri: Any) -> Optional[str]:
    """Why Ray Serve refuses `uri` as a working_dir or py_modules entry (it takes remote URIs, or local:// directories)."""
    from ray._common.runtime_env_uri import parse_uri  # Ray's own parser, imported only when a URI is given

    if not isinstance(uri, str):
        return f"{uri!r} is not a URI"
    try:
        parse_uri(uri)
    except (ValueError, TypeError) as error:
        return f"Ray Serve takes a remote URI (s3://, gs://, https://) or a local:// directory of the image: {error}"
    return None


def check_runtime_env(runtime_env: dict[str, Any]) -> dict[str, Any]:
    """What Ray Serve's schema refuses in a runtime env: a local path as working_dir or py_modules."""
    for field in URI_FIELDS:
        if field not in runtime_env:
            continue
        values = runtime_env[field] if field == "py_modules" else [runtime_env[field]]
        if field == "py_modules" and not isinstance(values, list):
            raise ValueError(f"__{field}__ must be a list of URIs")
        for value in values:
            problem = remote_uri_problem(value)
            if problem:
                raise ValueError(f"__{field}__ {problem}")
    pip = runtime_env.get("pip")
    if pip is not None and not (isinstance(pip, list) and all(isinstance(item, str) for item in pip)) and not isinstance(pip, dict):
        raise ValueError("__pip__ must be a list of requirements (e.g. [scikit-learn==1.9.1]) or Ray's {packages: [...]} form")
    return runtime_env


class ServeAutoscaling(Model):
    """Ray Serve's autoscaling of one deployment's replicas (Ray's autoscaling_config)."""

    min_replicas: int = Field(default=1, ge=0, le=INT32_MAX, description="fewest replicas (min_replicas)")
    max_replicas: int = Field(default=1, ge=1, le=INT32_MAX, description="most replicas (max_replicas)")
    initial_replicas: Optional[int] = Field(default=None, ge=0, le=INT32_MAX, description="replicas at start (initial_replicas); default minReplicas")
    target_ongoing_requests: Optional[float] = Field(
        default=None, gt=0, description="ongoing requests per replica the autoscaler aims at (target_ongoing_requests); default Ray's, 2"
    )
    extra: dict[str, Any] = Field(default_factory=dict, description="any other key of Ray's autoscaling_config, as Ray spells it (e.g. upscale_delay_s)")

    @field_validator("extra")
    @classmethod
    def _extra(cls, extra: dict[str, Any]) -> dict[str, Any]:
        return check_extra(extra, AUTOSCALING_KEYS, {"min_replicas", "max_replicas", "initial_replicas", "target_ongoing_requests"}, "autoscaling_config")

    @model_validator(mode="after")
    def _range(self) -> "ServeAutoscaling":
        # Ray's AutoscalingConfig.replicas_settings_valid.
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"__maxReplicas__ must be >= minReplicas ({self.min_replicas}), got {self.max_replicas}")
        if self.initial_replicas is not None and not self.min_replicas <= self.initial_replicas <= self.max_replicas:
            raise ValueError(f"__initialReplicas__ must be between minReplicas ({self.min_replicas}) and maxReplicas ({self.max_replicas}), got {self.initial_replicas}")
        return self

    def serve_config(self) -> dict[str, Any]:
        typed = self.model_dump(exclude={"extra"}, exclude_none=True)
        return {**typed, **self.extra}


class ServeActorOptions(Model):
    """What each replica of a deployment asks Ray for (Ray's ray_actor_options)."""

    num_cpus: Optional[float] = Field(default=None, ge=0, description="CPUs per replica (num_cpus); default Ray's, 1")
    num_gpus: Optional[float] = Field(default=None, ge=0, description="GPUs per replica (num_gpus); default 0")
    memory: Optional[float] = Field(default=None, ge=0, description="memory per replica in bytes (memory); default none")
    resources: dict[str, float] = Field(default_factory=dict, description="custom Ray resources per replica (resources)")
    extra: dict[str, Any] = Field(default_factory=dict, description="any other key of Ray's ray_actor_options, as Ray spells it (e.g. accelerator_type)")

    @field_validator("extra")
    @classmethod
    def _extra(cls, extra: dict[str, Any]) -> dict[str, Any]:
        check_extra(extra, ACTOR_OPTION_KEYS, {"num_cpus", "num_gpus", "memory", "resources"}, "ray_actor_options")
        if isinstance(extra.get("runtime_env"), dict):
            check_runtime_env(extra["runtime_env"])
        return extra

    @field_validator("resources")
    @classmethod
    def _resources(cls, resources: dict[str, float]) -> dict[str, float]:
        for name, amount in resources.items():
            if amount < 0:
                raise ValueError(f"__{name}__ must be >= 0, got {amount}")
        return resources

    def serve_config(self) -> dict[str, Any]:
        typed = self.model_dump(exclude={"extra"}, exclude_none=True)
        if not typed.get("resources"):
            typed.pop("resources", None)
        return {**typed, **self.extra}


class ServeDeployment(Model):
    """Options of one deployment of an application, over those its code sets (Ray's deployments[])."""

    name: str = Field(description="the deployment's name, as the application's code names it (the class name by default)")
    num_replicas: Optional[int] = Field(default=None, ge=1, le=INT32_MAX, description="a fixed number of replicas (num_replicas); not with autoscaling")
    autoscaling: Optional[ServeAutoscaling] = Field(default=None, description="Ray Serve's replica autoscaling (autoscaling_config); not with numReplicas")
    max_ongoing_requests: Optional[int] = Field(default=None, gt=0, le=INT32_MAX, description="requests sent to one replica at a time (max_ongoing_requests); default Ray's, 5")
    ray_actor_options: Optional[ServeActorOptions] = Field(default=None, description="CPUs, GPUs, memory and resources per replica (ray_actor_options)")
    extra: dict[str, Any] = Field(default_factory=dict, description="any other key of Ray's deployment schema, as Ray spells it (e.g. user_config, health_check_period_s)")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("must be the deployment's name, e.g. WineModel")
        return name

    @field_validator("extra")
    @classmethod
    def _extra(cls, extra: dict[str, Any]) -> dict[str, Any]:
        return check_extra(extra, DEPLOYMENT_KEYS, {"name", "num_replicas", "autoscaling_config", "max_ongoing_requests", "ray_actor_options"}, "deployment")

    @model_validator(mode="after")
    def _replicas_or_autoscaling(self) -> "ServeDeployment":
        # Ray's DeploymentSchema.validate_num_replicas_and_autoscaling_config.
        if self.num_replicas is not None and self.autoscaling is not None:
            raise ValueError("__numReplicas__ Ray Serve takes a fixed number of replicas or autoscaling, not both: remove one")
        return self

    def serve_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"name": self.name}
        if self.num_replicas is not None:
            config["num_replicas"] = self.num_replicas
        if self.autoscaling is not None:
            config["autoscaling_config"] = self.autoscaling.serve_config()
        if self.max_ongoing_requests is not None:
            config["max_ongoing_requests"] = self.max_ongoing_requests
        if self.ray_actor_options is not None:
            config["ray_actor_options"] = self.ray_actor_options.serve_config()
        return {**config, **self.extra}


class ServeApplication(Model):
    """One Ray Serve application (Ray's applications[])."""

    name: str = Field(description="application name, unique in the service (name)")
    import_path: str = Field(description="the bound application, module:attribute or module.attribute (import_path), e.g. serve_app:app")
    route_prefix: str = Field(default="/", description="HTTP path prefix the application answers under (route_prefix), unique in the service")
    runtime_env: dict[str, Any] = Field(
        default_factory=dict,
        description="Ray runtime environment as Ray spells it: pip, env_vars, working_dir (a remote URI; code sets it instead)",
    )
    deployments: list[ServeDeployment] = Field(default_factory=list, description="per-deployment options over the code's")
    extra: dict[str, Any] = Field(default_factory=dict, description="any other key of Ray's application schema, as Ray spells it (e.g. args, logging_config)")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not name:
            raise ValueError("must be a non-empty name")  # Ray's application_names_nonempty
        return name

    @field_validator("import_path")
    @classmethod
    def _import_path(cls, path: str) -> str:
        # Ray's ServeApplicationSchema.import_path_format_valid.
        example = "e.g. serve_app:app (module serve_app, attribute app)"
        if ":" in path:
            if path.count(":") > 1 or path.startswith(":") or path.endswith(":"):
                raise ValueError(f"{path!r} must be module:attribute, with one colon inside ({example})")
        elif path.count(".") < 1 or path.startswith(".") or path.endswith("."):
            raise ValueError(f"{path!r} must name a module and its bound application, module:attribute or module.attribute ({example})")
        return path

    @field_validator("route_prefix")
    @classmethod
    def _route_prefix(cls, prefix: str) -> str:
        if not prefix.startswith("/"):
            raise ValueError(f"{prefix!r} must start with '/' (Ray Serve refuses it otherwise)")
        return prefix

    @field_validator("runtime_env")
    @classmethod
    def _runtime_env(cls, runtime_env: dict[str, Any]) -> dict[str, Any]:
        return check_runtime_env(runtime_env)

    @field_validator("deployments")
    @classmethod
    def _unique_deployments(cls, deployments: list[ServeDeployment]) -> list[ServeDeployment]:
        seen: dict[str, int] = {}
        for index, deployment in enumerate(deployments):
            if deployment.name in seen:
                raise ValueError(f"__{index}.name__ duplicate deployment {deployment.name!r} (also deployments[{seen[deployment.name]}])")
            seen[deployment.name] = index
        return deployments

    @field_validator("extra")
    @classmethod
    def _extra(cls, extra: dict[str, Any]) -> dict[str, Any]:
        typed = {"name", "import_path", "route_prefix", "runtime_env", "deployments"}
        for key in ("host", "port"):
            if key in extra:
                # Ray's ServeDeploySchema.nested_host_and_port; KubeRay's serve Service is port 8000.
                raise ValueError(f"__{key}__ Ray Serve takes the HTTP {key} for all applications (serveConfig.extra.http_options), not per application")
        check_extra(extra, APPLICATION_KEYS, typed, "application")
        if extra.get("external_scaler_enabled"):
            raise ValueError("__external_scaler_enabled__ nothing outside Ray scales a RayService's replicas: use the deployments' autoscaling")
        return extra

    def serve_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {"name": self.name, "import_path": self.import_path, "route_prefix": self.route_prefix}
        if self.runtime_env:
            config["runtime_env"] = dict(self.runtime_env)
        if self.deployments:
            config["deployments"] = [deployment.serve_config() for deployment in self.deployments]
        return {**config, **self.extra}


class ServeConfig(Model):
    """The Ray Serve config a RayService runs (KubeRay's serveConfigV2)."""

    applications: list[ServeApplication] = Field(description="the Serve applications (at least one)")
    extra: dict[str, Any] = Field(
        default_factory=dict,
        description="any other top-level key of Ray's Serve config, as Ray spells it (e.g. proxy_location, logging_config); "
        "http_options.port stays 8000 (the serve Service's)",
    )

    @field_validator("applications")
    @classmethod
    def _applications(cls, applications: list[ServeApplication]) -> list[ServeApplication]:
        if not applications:
            raise ValueError("a RayService serves at least one application")
        # Ray's application_names_unique and application_routes_unique.
        names: dict[str, int] = {}
        routes: dict[str, int] = {}
        for index, application in enumerate(applications):
            if application.name in names:
                raise ValueError(f"__{index}.name__ duplicate application {application.name!r} (also applications[{names[application.name]}])")
            if application.route_prefix in routes:
                raise ValueError(
                    f"__{index}.routePrefix__ {application.route_prefix!r} is applications[{routes[application.route_prefix]}]'s too: "
                    "each application needs a route prefix of its own"
                )
            names[application.name] = index
            routes[application.route_prefix] = index
        return applications

    @field_validator("extra")
    @classmethod
    def _extra(cls, extra: dict[str, Any]) -> dict[str, Any]:
        check_extra(extra, SERVE_CONFIG_KEYS, {"applications"}, "config")
        http = extra.get("http_options")
        if http is not None:
            if not isinstance(http, dict):
                raise ValueError("__http_options__ must be a mapping of Ray's HTTP options")
            if http.get("port", SERVE_PORT) != SERVE_PORT:
                raise ValueError(f"__http_options.port__ KubeRay's serve Service and health checks use port {SERVE_PORT}: leave it out")
        location = extra.get("proxy_location")
        if location is not None and location not in ("EveryNode", "HeadOnly", "Disabled"):
            raise ValueError(f"__proxy_location__ Ray takes EveryNode, HeadOnly or Disabled, not {location!r}")
        return extra

    @model_validator(mode="after")
    def _rays_own_schema(self) -> "ServeConfig":
        # The typed rules above say clearly what is wrong; Ray's own models judge the rest (the values in extra).
        problem = serve_schema_problem(self.serve_config())
        if problem:
            key, message = problem
            raise ValueError(f"__{key}__ Ray Serve {installed_ray_version()} refuses it: {message}" if key else message)
        return self

    def serve_config(self) -> dict[str, Any]:
        """The config as Ray Serve reads it (snake_case), without the code's working_dir (the program adds it)."""
        return {**self.extra, "applications": [application.serve_config() for application in self.applications]}


class ClusterUpgradeOptions(Model):
    """Incremental upgrades: traffic moves to the new cluster in steps, through a Gateway (Gateway API)."""

    gateway_class_name: str = Field(description="the GatewayClass of the Gateway KubeRay creates (required)")
    step_size_percent: int = Field(default=defaults.INCREMENTAL_STEP_SIZE_PERCENT, ge=0, le=100, description="traffic moved per step, percent")
    interval_seconds: int = Field(default=defaults.INCREMENTAL_INTERVAL_SECONDS, ge=1, le=INT32_MAX, description="time between steps")
    max_surge_percent: int = Field(default=defaults.INCREMENTAL_MAX_SURGE_PERCENT, ge=0, le=100, description="capacity the new cluster may add, percent")

    @model_validator(mode="after")
    def _step_within_surge(self) -> "ClusterUpgradeOptions":
        if self.step_size_percent > self.max_surge_percent:
            raise ValueError(f"__stepSizePercent__ must be <= maxSurgePercent ({self.max_surge_percent}), got {self.step_size_percent}")
        return self


class ServeIngress(DashboardIngress):
    """An Ingress to a RayService's Serve endpoint (the <name>-serve-svc Service, port 8000)."""

    @model_validator(mode="after")
    def _sub_path_needs_a_rewrite(self) -> "ServeIngress":
        # Unlike the dashboard, Serve answers any path its route prefixes cover: a sub-path
        # is stripped for ingress-nginx classes, and reaches Serve as is with other controllers.
        return self

    @model_validator(mode="after")
    def _tls_hosts(self) -> "ServeIngress":
        if self.tls is not None and not self.tls.hosts and not self.host:
            raise ValueError("__tls.hosts__ name the hosts the certificate covers (or set serveIngress.host)")
        return self


class RayServiceSettings(Model):
    """One RayService: Ray Serve applications on a cluster of their own, upgraded without dropping traffic."""

    name: str = Field(description=f"RayService name (DNS-1035 label, at most {RAY_SERVICE_NAME_MAX} characters)")
    namespace: str = Field(default="ray", description="a namespace of rayClusters[] (its operator runs the service)")
    serve_config: ServeConfig = Field(description="the Ray Serve applications (KubeRay's serveConfigV2)")
    code: Optional[str] = Field(
        default=None,
        description="a folder of this project (e.g. examples/wine_shap) that pulumi up uploads to awsAccess.bucket, as rayJobs[].code, "
        f"and every application runs in (its runtimeEnv working_dir); the rest must fit {MAX_CODE_BYTES // 2**20} MiB",
    )
    head: HeadGroup = Field(default_factory=HeadGroup, description="head group, as rayClusters[].head")
    worker_groups: list[WorkerGroup] = Field(
        default_factory=lambda: [WorkerGroup(name="cpu", min_replicas=1)],
        description="worker groups (ray or fixed), as rayClusters[].workerGroups; Serve replicas run here",
    )
    autoscaler: AutoscalerOptions = Field(default_factory=AutoscalerOptions, description="Ray's autoscaler options (on with any ray group)")
    read_only_root_filesystem: bool = Field(default=True, description="Ray containers cannot write their image, as rayClusters[].readOnlyRootFilesystem")
    upgrade_strategy: Literal["NewCluster", "None", "NewClusterWithIncrementalUpgrade"] = Field(
        default=defaults.SERVICE_UPGRADE_STRATEGY,
        description="NewCluster: a changed cluster spec brings up a new RayCluster, traffic moves once it is healthy; "
        "None: cluster changes are not applied; NewClusterWithIncrementalUpgrade: traffic moves in steps through a Gateway "
        "(the operator's RayServiceIncrementalUpgrade gate and clusterUpgradeOptions)",
    )
    cluster_upgrade_options: Optional[ClusterUpgradeOptions] = Field(
        default=None, description="NewClusterWithIncrementalUpgrade only: gatewayClassName, stepSizePercent, intervalSeconds, maxSurgePercent"
    )
    ray_cluster_deletion_delay_seconds: Optional[int] = Field(
        default=None, ge=0, le=INT32_MAX, description="how long an old RayCluster stays after traffic left it; default KubeRay's, 60"
    )
    service_unhealthy_second_threshold: Optional[int] = Field(
        default=None, description="KubeRay's field, unused since KubeRay 1.1 (ray-project/kuberay#1685): refused"
    )
    deployment_unhealthy_second_threshold: Optional[int] = Field(
        default=None, description="KubeRay's field, unused since KubeRay 1.1 (ray-project/kuberay#1685): refused"
    )
    ready_timeout_seconds: int = Field(
        default=defaults.READY_TIMEOUT_SECONDS, ge=60, le=7200,
        description="how long `pulumi up` waits for the service to be Ready with no upgrade in progress",
    )
    serve_ingress: ServeIngress = Field(
        default_factory=ServeIngress,
        description="an Ingress to the <name>-serve-svc Service (port 8000), with dashboardIngress's keys; "
        "a sub-path is stripped for ingress-nginx classes, passed on as is otherwise",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        # KubeRay's ValidateRayServiceMetadata.
        if len(name) > RAY_SERVICE_NAME_MAX or not DNS1035.match(name):
            raise ValueError(f"{name!r} must be a DNS-1035 label (lowercase letter first) of at most {RAY_SERVICE_NAME_MAX} characters")
        return name

    @field_validator("code")
    @classmethod
    def _code(cls, code: Optional[str]) -> Optional[str]:
        if code is not None:
            check_code_folder(code, Path.cwd())
        return code

    @field_validator("worker_groups")
    @classmethod
    def _groups(cls, groups: list[WorkerGroup]) -> list[WorkerGroup]:
        seen: dict[str, int] = {}
        for index, group in enumerate(groups):
            if group.autoscaling == "hpa":
                raise ValueError(f"__{index}.autoscaling__ a RayService's cluster scales with Ray (ray or fixed), not an HPA")
            if group.name in seen:
                raise ValueError(f"__{index}.name__ duplicate group name {group.name!r} (also workerGroups[{seen[group.name]}])")
            seen[group.name] = index
        return groups

    @field_validator("service_unhealthy_second_threshold", "deployment_unhealthy_second_threshold")
    @classmethod
    def _unused(cls, value: Optional[int]) -> Optional[int]:
        if value is not None:
            raise ValueError(
                "KubeRay has ignored it since 1.1 (ray-project/kuberay#1685): a RayService is as healthy as Ray Serve reports; "
                "remove it (Serve's own health checks: a deployment's extra health_check_period_s, health_check_timeout_s)"
            )
        return value

    @model_validator(mode="after")
    def _cluster_rules(self) -> "RayServiceSettings":
        require_a_place_for_tasks(self.head, self.worker_groups)
        require_gpu_images(self.worker_groups)
        for index, group in enumerate(self.worker_groups):
            if group.idle_timeout_seconds is not None and self.autoscaler.version != "v2":
                raise ValueError(f"__workerGroups.{index}.idleTimeoutSeconds__ per-group idle timeouts need autoscaler.version: v2")
        return self

    @model_validator(mode="after")
    def _one_working_dir(self) -> "RayServiceSettings":
        if self.code is None:
            return self
        for index, application in enumerate(self.serve_config.applications):
            if "working_dir" in application.runtime_env:
                raise ValueError(
                    f"__serveConfig.applications.{index}.runtimeEnv.working_dir__ code sets every application's working_dir "
                    "(the uploaded folder): remove one of them"
                )
        return self

    @model_validator(mode="after")
    def _upgrade_options(self) -> "RayServiceSettings":
        if self.upgrade_strategy == INCREMENTAL_UPGRADE:
            if self.cluster_upgrade_options is None:
                raise ValueError(
                    f"__clusterUpgradeOptions__ {INCREMENTAL_UPGRADE} moves traffic through a Gateway: "
                    "set clusterUpgradeOptions.gatewayClassName (a GatewayClass of your Gateway API controller)"
                )
            if not any(group.autoscaling == "ray" for group in self.worker_groups):
                # KubeRay's ValidateClusterUpgradeOptions: the new cluster grows with Ray's autoscaler.
                raise ValueError(f"__workerGroups__ {INCREMENTAL_UPGRADE} needs Ray's autoscaler: give a worker group autoscaling: ray")
        elif self.cluster_upgrade_options is not None:
            raise ValueError(f"__clusterUpgradeOptions__ only upgradeStrategy {INCREMENTAL_UPGRADE} uses them: remove them")
        return self
