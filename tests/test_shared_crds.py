"""The KubeRay CRDs outlive a stack, several stacks share them, and clusters go before their operator."""
from __future__ import annotations

from components.kuberay_crds import CRD_TYPE, retain_crds
from tests.helpers.program import RAYCLUSTER, STACKS, run_program, stack_file_config


# --- CRDs survive a destroy; several stacks share them --------------------------

def test_crds_are_kept_on_destroy(stack_runs):
    (group,) = stack_runs["eks"].of_type("kubernetes:yaml/v2:ConfigGroup")
    assert group.retain_on_delete and group.transforms == 1
    # The transform marks the CRDs inside the group (remote children) retained, and nothing else.
    import pulumi

    def args(type_):
        return pulumi.ResourceTransformArgs(custom=True, type_=type_, name="x", props={}, opts=pulumi.ResourceOptions())

    assert retain_crds(args(CRD_TYPE)).opts.retain_on_delete is True
    assert retain_crds(args("kubernetes:core/v1:ConfigMap")) is None


def test_a_second_stack_uses_the_crds_the_first_installed():
    config = {**stack_file_config("eks"), "raykube:operator": {"version": "1.7.0", "installCrds": False}}
    result = run_program(config, "eks-b")
    assert result.of_type("kubernetes:yaml/v2:ConfigGroup") == []
    assert result.of_type("raykube:index:KubeRayCrds") == []
    assert result.of_type("raykube:index:KubeRayOperator")


def test_rayclusters_are_deleted_before_their_operator(stack_runs):
    """Pulumi deletes dependents first: the operator is still there to run KubeRay's finalizers."""
    for stack in STACKS:
        result = stack_runs[stack]
        for cluster in result.of_type(RAYCLUSTER):
            waited = set()
            current = cluster
            while current is not None:
                waited.update(current.dependencies)
                current = next((r for r in result.resources if r.urn == current.parent), None)
            namespace = cluster.inputs["metadata"]["namespace"]
            operator = next(r for r in result.of_type("raykube:index:KubeRayOperator") if r.name.endswith(f"-{namespace}"))
            # Pulumi records a dependency on a component as one on its children (the chart).
            operator_parts = {operator.urn} | {r.urn for r in result.resources if r.parent == operator.urn}
            assert operator_parts & waited, f"{stack}: {cluster.name} does not wait for its operator"
