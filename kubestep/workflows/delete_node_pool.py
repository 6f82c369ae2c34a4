"""DeleteNodePool: the pool's group (its instances terminate), any instance left, its launch
template, then its record."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Task, Workflow
from kubestep.workflows import lifecycle_steps
from kubestep.workflows.envelope import Lock, Validation, lifecycle_head, operation, recorded_failure
from kubestep.workflows.fragments import CLUSTER_PAYLOAD, NODE_POOL, delete_node_pool_states

FAILURE = recorded_failure("DeleteFailed", record_args={"failurePhase": "DEGRADED", **NODE_POOL})

WORKFLOW = Workflow(
    name="DeleteNodePool",
    module=__name__,
    comment="Delete a node pool and its AWS resources. Input: {clusterName, nodePool}.",
    timeout=timedelta(hours=1),
    function="ClusterTasks",
    base_payload=CLUSTER_PAYLOAD,
    chains=operation(
        head=lifecycle_head(
            Validation(lifecycle_steps.validate_delete_node_pool, fields=("clusterName", "nodePool")),
            Lock(lifecycle_steps.acquire_delete_node_pool_lock, reads=("clusterName", "nodePool")),
        ),
        body=[
            *delete_node_pool_states(prefix="", scope="cluster", catch=FAILURE.catch),
            Task(lifecycle_steps.delete_node_pool_record, name="DeleteRecord", args=NODE_POOL),
            Task(lifecycle_steps.finish_node_pool_operation, name="MarkRunning"),
        ],
        succeeded="Deleted",
        failure=FAILURE,
    ),
)
