"""UpdateNodePool: bounds, tags and update settings change in place; a spec that needs new
instances (version, instance type, labels, taints, volumes, image, kubelet settings) rolls
the pool within maxSurge / maxUnavailable, draining old nodes through the termination hook."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Task
from kubestep.resources import drift
from kubestep.workflows import lifecycle_steps
from kubestep.workflows.envelope import Lock, Validation, cluster_operation, recorded_failure
from kubestep.workflows.fragments import NODE_POOL, roll_node_pool_states

FAILURE = recorded_failure("UpdateFailed", record_args={"failurePhase": "DEGRADED", **NODE_POOL})

WORKFLOW = cluster_operation(
    name="UpdateNodePool",
    module=__name__,
    comment="Change a node pool: in place, or rolled within its update settings. "
    "Input: {clusterName, nodePool, changes: {minNodeCount, maxNodeCount, version, labels, taints, ...}}.",
    timeout=timedelta(hours=2),
    validation=Validation(lifecycle_steps.validate_update_node_pool, fields=("clusterName", "nodePool")),
    lock=Lock(lifecycle_steps.acquire_update_node_pool_lock, with_input=True),
    body=[
        # A group deleted by hand would fail the update half-way: say "repair" before changing anything.
        Task(drift.check_for_drift),
        *roll_node_pool_states(),
        Task(lifecycle_steps.finish_node_pool_operation, name="MarkRunning"),
    ],
    succeeded="Updated",
    failure=FAILURE,
)
