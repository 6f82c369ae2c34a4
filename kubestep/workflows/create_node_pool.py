"""CreateNodePool: a node pool for a running cluster — its launch template, its Auto Scaling
group (with the autoscaler's tags and the drain hook), its minimum of ready nodes. On failure,
what this operation created goes, through the same steps DeleteNodePool runs."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Task
from kubestep.resources import node_pools
from kubestep.workflows import lifecycle_steps
from kubestep.workflows.envelope import (
    COMPENSATION_FAILED,
    Lock,
    Validation,
    cluster_operation,
    rolled_back_failure,
)
from kubestep.workflows.fragments import NODE_POOL, delete_node_pool_states

WORKFLOW = cluster_operation(
    name="CreateNodePool",
    module=__name__,
    comment="Add a node pool to a running cluster. Input: {clusterName, nodePool: <AWSNodePool>, rollbackOnFailure}.",
    timeout=timedelta(hours=1),
    validation=Validation(
        lifecycle_steps.validate_create_node_pool, fields=("clusterName", "nodePool", "rollbackOnFailure")
    ),
    lock=Lock(lifecycle_steps.acquire_create_node_pool_lock, with_input=True),
    body=[
        Task(node_pools.ensure_node_pool_launch_template, args=NODE_POOL),
        Task(node_pools.ensure_node_pool_group, args=NODE_POOL),
        Task(node_pools.check_node_pool_health, args=NODE_POOL),
        Task(lifecycle_steps.finish_node_pool_operation, name="MarkRunning"),
    ],
    succeeded="Created",
    failure=rolled_back_failure(
        "CreateFailed",
        record_args={"rollbackOnFailure.$": "$.rollbackOnFailure", "failurePhase": "ERROR", **NODE_POOL},
        compensation=[
            *delete_node_pool_states(prefix="Rollback", scope="operation", catch=COMPENSATION_FAILED),
            Task(lifecycle_steps.forget_node_pool, name="RollbackForgetNodePool", args=NODE_POOL),
        ],
    ),
)
