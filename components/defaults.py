"""The defaults a component and raykube's settings share, each in one place.

Components fall back to these when an argument is left out; the settings
model (raykube/settings/) declares them as its defaults; the Args docstrings
state them, and tests/test_defaults.py holds the docstrings to these values.
"""

# Worker groups (RayCluster groups and HPA pools).
MIN_WORKERS = 0  # a Ray-scaled group may shrink to nothing: Ray adds workers on demand
MAX_WORKERS = 4
POOL_MIN_WORKERS = 1  # an HPA never scales to zero
TERMINATION_GRACE_SECONDS = 300  # time a stopping worker gets to finish its tasks (and drain)

# KubeRay's in-tree Ray autoscaler.
AUTOSCALER_VERSION = "v2"
AUTOSCALER_UPSCALING_MODE = "Default"
AUTOSCALER_IDLE_TIMEOUT_SECONDS = 60

# A RayCluster.
READY_TIMEOUT_SECONDS = 900  # how long `pulumi up` waits for `ready` (image pulls of several GB)
UPGRADE_STRATEGY = "Recreate"  # a changed pod spec reaches every pod
AUTH_MODE = "token"  # nobody without the token runs code on the cluster
HEAD_SERVICE_TYPE = "ClusterIP"

# A RayService: a changed cluster spec brings up a new cluster; traffic moves once it is healthy.
SERVICE_UPGRADE_STRATEGY = "NewCluster"
# NewClusterWithIncrementalUpgrade: traffic moved per step, time between steps, extra capacity.
INCREMENTAL_STEP_SIZE_PERCENT = 10
INCREMENTAL_INTERVAL_SECONDS = 30
INCREMENTAL_MAX_SURGE_PERCENT = 100  # KubeRay's CRD default

# HPA-scaled pools (seed 000: scale down 15 s after the work ends).
HPA_TARGET_CPU_PERCENT = 50
HPA_SCALE_DOWN_STABILIZATION_SECONDS = 15
HPA_SCALE_UP_PODS = 4
HPA_SCALE_UP_PERCENT = 100
HPA_SCALE_UP_PERIOD_SECONDS = 15
HPA_SCALE_UP_STABILIZATION_SECONDS = 0
