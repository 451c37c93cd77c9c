"""Changing a Ray cluster on day 2: upgrades reach every pod, Ray's autoscaler owns
`replicas`, GPU groups get GPU images."""
from __future__ import annotations



from tests.helpers.program import DEPLOYMENT, RAYCLUSTER, run_program, the_cluster, with_cluster


# --- upgrades reach the pods ---------------------------------------------------

def test_a_new_ray_version_changes_the_head_the_workers_and_the_pool_together(stack_runs):
    before = stack_runs["local"]
    after = run_program(with_cluster("local", rayVersion="2.59.0", allowVersionMismatch=True), "local")
    old, new = the_cluster(before)["spec"], the_cluster(after)["spec"]
    assert (old["rayVersion"], new["rayVersion"]) == ("2.60.0", "2.59.0")
    assert new["headGroupSpec"]["template"]["spec"]["containers"][0]["image"] == "rayproject/ray:2.59.0-py311"
    # KubeRay recreates the pods of a changed spec only with this strategy.
    assert new["upgradeStrategy"] == {"type": "Recreate"}
    old_pool = before.of_type(DEPLOYMENT)[0].inputs["spec"]["template"]
    new_pool = after.of_type(DEPLOYMENT)[0].inputs["spec"]["template"]
    assert new_pool["spec"]["containers"][0]["image"] == "rayproject/ray:2.59.0-py311"
    assert new_pool["spec"]["initContainers"][0]["image"] == "rayproject/ray:2.59.0-py311"
    assert new_pool["metadata"]["labels"]["raykube.io/ray-version"] == "2.59.0"
    assert old_pool != new_pool  # a new template: the Deployment rolls


def test_upgrade_strategy_can_be_turned_off(stack_runs):
    result = run_program(with_cluster("eks", upgradeStrategy="None"), "eks")
    assert the_cluster(result)["spec"]["upgradeStrategy"] == {"type": "None"}


# --- Ray's autoscaler owns replicas ---------------------------------------------

def test_ray_mode_groups_carry_no_replicas_and_fixed_groups_do(stack_runs):
    for group in the_cluster(stack_runs["eks"])["spec"]["workerGroupSpecs"]:
        assert "replicas" not in group, group["groupName"]
    serving = next(c for c in stack_runs["gke"].of_type(RAYCLUSTER) if c.inputs["metadata"]["name"] == "serving")
    (fixed,) = serving.inputs["spec"]["workerGroupSpecs"]
    assert (fixed["replicas"], fixed["minReplicas"], fixed["maxReplicas"]) == (2, 2, 2)


# --- images ----------------------------------------------------------------------

def test_gpu_groups_default_to_the_gpu_image_and_groups_can_choose_their_own(stack_runs):
    groups = {g["groupName"]: g for g in the_cluster(stack_runs["eks"])["spec"]["workerGroupSpecs"]}
    assert groups["gpu"]["template"]["spec"]["containers"][0]["image"] == "rayproject/ray:2.60.0-py311-gpu"
    assert groups["cpu"]["template"]["spec"]["containers"][0]["image"] == "rayproject/ray:2.60.0-py311"
    config = with_cluster("eks")
    config["raykube:rayClusters"][0]["workerGroups"][0]["image"] = "my-registry/ray:2.60.0-py311-custom"
    config["raykube:rayClusters"][0]["workerGroups"][1]["idleTimeoutSeconds"] = 600
    groups = {g["groupName"]: g for g in the_cluster(run_program(config, "eks"))["spec"]["workerGroupSpecs"]}
    assert groups["cpu"]["template"]["spec"]["containers"][0]["image"] == "my-registry/ray:2.60.0-py311-custom"
    assert groups["gpu"]["idleTimeoutSeconds"] == 600 and "idleTimeoutSeconds" not in groups["cpu"]
