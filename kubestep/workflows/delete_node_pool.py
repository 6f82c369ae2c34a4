"""DeleteNodePool: the pool's group (its instances terminate), any instance left, its launch
template, then its record."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Task
from kubestep.workflows import lifecycle_steps
from kubestep.workflows.envelope import Lock, Validation, cluster_operation, recorded_failure
from kubestep.workflows.fragments import NODE_POOL, delete_node_pool_states

FAILURE = recorded_failure("DeleteFailed", record_args={"failurePhase": "DEGRADED", **NODE_POOL})

WORKFLOW = cluster_operation(
    name="DeleteNodePool",
    module=__name__,
    comment="Delete a node pool and its AWS resources. Input: {clusterName, nodePool}.",
    timeout=timedelta(hours=1),
    validation=Validation(lifecycle_steps.validate_delete_node_pool, fields=("clusterName", "nodePool")),
    lock=Lock(lifecycle_steps.acquire_delete_node_pool_lock, reads=("clusterName", "nodePool")),
    body=[
        *delete_node_pool_states(prefix="", scope="cluster", catch=FAILURE.catch),
        Task(lifecycle_steps.delete_node_pool_record, name="DeleteRecord", args=NODE_POOL),
        Task(lifecycle_steps.finish_node_pool_operation, name="MarkRunning"),
    ],
    succeeded="Deleted",
    failure=FAILURE,
)
