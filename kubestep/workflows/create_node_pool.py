"""CreateNodePool: a node pool for a running cluster — its launch template, its Auto Scaling
group (with the autoscaler's tags and the drain hook), its minimum of ready nodes. On failure,
what this operation created goes, through the same steps DeleteNodePool runs."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Catch, Choice, Fail, Pass, Succeed, Task, Workflow, guarded
from kubestep.resources import node_pools
from kubestep.workflows import cluster_steps, lifecycle_steps
from kubestep.workflows.fragments import CLUSTER_PAYLOAD, IDENTITY_PAYLOAD, delete_node_pool_states

FAILED = Catch("RecordFailure", result_path="$.error")
COMPENSATION_FAILED = Catch("RecordCompensationFailure", result_path="$.compensationError")
POOL = {"nodePool.$": "$.nodePool"}

WORKFLOW = Workflow(
    name="CreateNodePool",
    module=__name__,
    comment="Add a node pool to a running cluster. Input: {clusterName, nodePool: <AWSNodePool>, rollbackOnFailure}.",
    timeout=timedelta(hours=1),
    function="ClusterTasks",
    base_payload=CLUSTER_PAYLOAD,
    chains=[
        [
            Task(
                lifecycle_steps.validate_create_node_pool,
                name="ValidateRequest",
                base=False,
                args={"request.$": "$", **IDENTITY_PAYLOAD},
                output="$.validated",
                select={
                    "clusterName.$": "$.Payload.clusterName",
                    "nodePool.$": "$.Payload.nodePool",
                    "rollbackOnFailure.$": "$.Payload.rollbackOnFailure",
                },
            ),
            Task(
                lifecycle_steps.acquire_create_node_pool_lock,
                name="AcquireLock",
                base=False,
                args={
                    "request.$": "$$.Execution.Input",
                    "clusterName.$": "$.validated.clusterName",
                    **IDENTITY_PAYLOAD,
                },
                output=None,
            ),
            Pass(
                "Context",
                parameters={
                    "clusterName.$": "$.validated.clusterName",
                    "nodePool.$": "$.validated.nodePool",
                    "rollbackOnFailure.$": "$.validated.rollbackOnFailure",
                },
            ),
            *guarded(
                [
                    Task(node_pools.ensure_node_pool_launch_template, args=POOL),
                    Task(node_pools.ensure_node_pool_group, args=POOL),
                    Task(node_pools.check_node_pool_health, args=POOL),
                    Task(lifecycle_steps.finish_node_pool_operation, name="MarkRunning"),
                ],
                FAILED,
            ),
            Succeed("Created"),
        ],
        [
            Task(
                cluster_steps.record_failure,
                args={
                    "error.$": "$.error",
                    "rollbackOnFailure.$": "$.rollbackOnFailure",
                    "failurePhase": "ERROR",
                    **POOL,
                },
            ),
            Choice(
                "RollbackWanted",
                choices=[({"Variable": "$.rollbackOnFailure", "BooleanEquals": False}, "FinishFailure")],
                default="RollbackDeleteNodePoolGroup",
            ),
        ],
        [
            *delete_node_pool_states(prefix="Rollback", scope="operation", catch=COMPENSATION_FAILED),
            *guarded(
                [Task(lifecycle_steps.forget_node_pool, name="RollbackForgetNodePool", args=POOL)], COMPENSATION_FAILED
            ),
            Task(cluster_steps.record_rollback, next="FinishFailure"),
        ],
        [
            Task(
                cluster_steps.record_compensation_failure,
                args={"compensationError.$": "$.compensationError"},
                next="FinishFailure",
            )
        ],
        [
            Task(cluster_steps.finish_failure, args={"error.$": "$.error"}),
            Fail("CreateFailed", error_path="$.error.Error", cause_path="$.error.Cause"),
        ],
    ],
)
