"""The fault matrix of issue 11 (tests/workflows/fault_matrix.py): every mutating AWS operation of
CreateCluster, CreateNodePool, UpdateNodePool (a roll), DeleteNodePool, UpdateCluster (a
control-plane upgrade) and DeleteCluster throttled three times, failing hard, and with its
response lost after it took effect. The table is printed (and written to .build/reports/fault-matrix.txt, which
the session summary prints): nothing left, no record lost, nothing made twice."""

from __future__ import annotations

import time

from .fault_matrix import CREATE, CREATE_POOL, DELETE, DELETE_POOL, ROLL_POOL, UPGRADE, Matrix


def test_every_mutating_operation_under_every_fault(runtime, store) -> None:
    started = time.monotonic()
    matrix = Matrix(runtime, store)
    matrix.derive()
    # Derived from what the clean runs called, not listed by hand: the operations that create
    # and delete what a cluster is made of are among them.
    assert {"ec2:CreateVolume", "autoscaling:CreateAutoScalingGroup", "elasticloadbalancing:CreateLoadBalancer"} <= set(
        matrix.operations[CREATE.name]
    )
    assert {"ec2:DeleteVolume", "autoscaling:DeleteAutoScalingGroup", "iam:DeleteRole"} <= set(
        matrix.operations[DELETE.name]
    )
    print("derived:", {workflow: len(operations) for workflow, operations in matrix.operations.items()})
    for workflow in (CREATE_POOL, ROLL_POOL, DELETE_POOL, UPGRADE):
        print(workflow.name, matrix.operations[workflow.name])
    assert {"ec2:CreateLaunchTemplate", "autoscaling:CreateAutoScalingGroup"} <= set(
        matrix.operations[CREATE_POOL.name]
    )
    assert "ec2:CreateLaunchTemplateVersion" in matrix.operations[ROLL_POOL.name]
    assert "autoscaling:DeleteAutoScalingGroup" in matrix.operations[DELETE_POOL.name]
    assert "ec2:CreateLaunchTemplateVersion" in matrix.operations[UPGRADE.name]
    # A roll and an upgrade add launch template versions, nothing else of what is counted.
    assert (
        matrix.baselines[ROLL_POOL.name]["launchTemplateVersions"]
        > matrix.baselines[CREATE_POOL.name]["launchTemplateVersions"]
    )
    matrix.run_all()
    text = matrix.write()
    print(text)
    print(f"fault matrix: {len(matrix.rows)} cases in {time.monotonic() - started:.0f}s")
    print("jobs (index, started after, took):", [(i, round(a), round(b)) for i, a, b in sorted(matrix.timings)])
    failing = [r for r in matrix.rows if not r.ok]
    assert not failing, text
