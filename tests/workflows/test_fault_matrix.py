"""The fault matrix of issue 11 (tests/workflows/fault_matrix.py): every mutating AWS operation of
CreateCluster, CreateNodePool, UpdateNodePool (a roll), DeleteNodePool, UpdateCluster (a
control-plane upgrade) and DeleteCluster throttled three times, failing hard, and with its
response lost after it took effect. The table of each part is printed (and written to
.build/reports/fault-matrix-<part>.txt): nothing left, no record lost, nothing made twice.

The parts are tests of one xdist group (the module's): they share its runtime and the operations
derived once from one clean cluster's life, which each part needs (a part run alone derives
them itself). Three groups, one runtime and one derivation each, cost two more clean lives and
two more runtimes' start and checks for parts that run in parallel threads anyway."""

from __future__ import annotations

import time

import pytest

from .fault_matrix import CREATE, CREATE_POOL, DELETE, DELETE_POOL, PARTS, ROLL_POOL, UPGRADE, Matrix


@pytest.fixture(scope="module")
def derived(runtime, store) -> Matrix:
    """The operations of each workflow, from one clean cluster's life."""
    matrix = Matrix(runtime, store)
    matrix.derive()
    return matrix


@pytest.mark.parametrize("part", PARTS)
def test_every_mutating_operation_under_every_fault(derived, part) -> None:
    started = time.monotonic()
    # Derived from what the clean runs called, not listed by hand: the operations that create
    # and delete what a cluster is made of are among them.
    assert {"ec2:CreateVolume", "autoscaling:CreateAutoScalingGroup", "elasticloadbalancing:CreateLoadBalancer"} <= set(
        derived.operations[CREATE.name]
    )
    assert {"ec2:DeleteVolume", "autoscaling:DeleteAutoScalingGroup", "iam:DeleteRole"} <= set(
        derived.operations[DELETE.name]
    )
    print("derived:", {workflow: len(operations) for workflow, operations in derived.operations.items()})
    for workflow in (CREATE_POOL, ROLL_POOL, DELETE_POOL, UPGRADE):
        print(workflow.name, derived.operations[workflow.name])
    assert {"ec2:CreateLaunchTemplate", "autoscaling:CreateAutoScalingGroup"} <= set(
        derived.operations[CREATE_POOL.name]
    )
    assert "ec2:CreateLaunchTemplateVersion" in derived.operations[ROLL_POOL.name]
    assert "autoscaling:DeleteAutoScalingGroup" in derived.operations[DELETE_POOL.name]
    assert "ec2:CreateLaunchTemplateVersion" in derived.operations[UPGRADE.name]
    # A roll and an upgrade add launch template versions, nothing else of what is counted.
    assert (
        derived.baselines[ROLL_POOL.name]["launchTemplateVersions"]
        > derived.baselines[CREATE_POOL.name]["launchTemplateVersions"]
    )
    matrix = derived.for_part(part)
    matrix.run_all()
    text = matrix.write()
    print(text)
    print(f"fault matrix ({part}): {len(matrix.rows)} cases in {time.monotonic() - started:.0f}s")
    print("jobs (index, started after, took):", [(i, round(a), round(b)) for i, a, b in sorted(matrix.timings)])
    assert matrix.rows
    failing = [r for r in matrix.rows if not r.ok]
    assert not failing, text
