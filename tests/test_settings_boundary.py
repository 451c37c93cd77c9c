"""The settings -> component boundary is typed: every settings section the program
hands a component as a whole (model_dump) has only fields that component's Args
declare, or fields the program consumes itself and says so
(raykube.composition.CONSUMED_BY_THE_PROGRAM / POOL_GROUP_CONSUMED). A new
setting that reaches no component fails here instead of being dropped; one the
program hands on undeclared is refused by the component's own check (every
stack's run in the other tests goes through it)."""
from __future__ import annotations

import pytest

from components.dashboard_ingress import DashboardIngressArgs
from components.kuberay_operator import OperatorImageArgs
from components.ray_cluster import AutoscalerArgs, GcsFaultToleranceArgs, GcsStorageArgs, HeadGroupArgs, RedisArgs, WorkerGroupArgs
from components.ray_service import ClusterUpgradeOptionsArgs
from components.ray_worker_pool import ScaleUpArgs, WorkerPoolGroupArgs
from raykube.composition import CONSUMED_BY_THE_PROGRAM, POOL_GROUP_CONSUMED
from raykube.settings import (AutoscalerOptions, DashboardIngress, GcsFaultTolerance, GcsStorage, HeadGroup, OperatorImage,
                              RedisSettings, ScaleUpPolicy, WorkerGroup)
from raykube.settings.ray_services import ClusterUpgradeOptions, ServeIngress
from tests.helpers.program import run_program, stack_file_config

# (settings model, the component Args it is handed as, fields the program consumes itself)
HANDED_WHOLE = [
    (HeadGroup, HeadGroupArgs, CONSUMED_BY_THE_PROGRAM),
    (WorkerGroup, WorkerGroupArgs, CONSUMED_BY_THE_PROGRAM),
    (WorkerGroup, WorkerPoolGroupArgs, POOL_GROUP_CONSUMED),
    (AutoscalerOptions, AutoscalerArgs, set()),
    (GcsFaultTolerance, GcsFaultToleranceArgs, set()),
    (GcsStorage, GcsStorageArgs, set()),
    (RedisSettings, RedisArgs, set()),
    (DashboardIngress, DashboardIngressArgs, set()),
    (OperatorImage, OperatorImageArgs, set()),
    (ScaleUpPolicy, ScaleUpArgs, set()),
    (ServeIngress, DashboardIngressArgs, set()),
    (ClusterUpgradeOptions, ClusterUpgradeOptionsArgs, set()),
]


@pytest.mark.parametrize("model, args, consumed", HANDED_WHOLE, ids=lambda x: getattr(x, "__name__", ""))
def test_every_setting_of_a_section_reaches_its_component_or_is_consumed_by_the_program(model, args, consumed):
    declared = set(args.__annotations__)
    fields = set(model.model_fields)
    assert fields - declared - consumed == set(), f"{model.__name__} fields that reach no component ({args.__name__})"


def group_template(result, group_name: str) -> dict:
    (cluster,) = result.of_type("kubernetes:ray.io/v1:RayCluster")
    return next(g for g in cluster.inputs["spec"]["workerGroupSpecs"] if g["groupName"] == group_name)["template"]


@pytest.mark.parametrize("mode", ["ray", "fixed"])
def test_termination_grace_reaches_kuberay_workers(mode):
    config = stack_file_config("eks")
    group = config["raykube:rayClusters"][0]["workerGroups"][0]
    group["terminationGracePeriodSeconds"] = 900
    if mode == "fixed":
        group.update(autoscaling="fixed", replicas=2)
        for key in ("minReplicas", "maxReplicas"):
            group.pop(key)
    result = run_program(config, "eks")
    assert group_template(result, "cpu")["spec"]["terminationGracePeriodSeconds"] == 900
