"""DeleteNodePool: the pool's group (its instances terminate), any instance left, its launch
template, then its record."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Catch, Fail, Pass, Succeed, Task, Workflow, guarded
from kubestep.workflows import cluster_steps, lifecycle_steps
from kubestep.workflows.fragments import CLUSTER_PAYLOAD, IDENTITY_PAYLOAD, delete_node_pool_states

FAILED = Catch("RecordFailure", result_path="$.error")
POOL = {"nodePool.$": "$.nodePool"}

WORKFLOW = Workflow(
    name="DeleteNodePool",
    module=__name__,
    comment="Delete a node pool and its AWS resources. Input: {clusterName, nodePool}.",
    timeout=timedelta(hours=1),
    function="ClusterTasks",
    base_payload=CLUSTER_PAYLOAD,
    chains=[
        [
            Task(
                lifecycle_steps.validate_delete_node_pool,
                name="ValidateRequest",
                base=False,
                args={"request.$": "$", **IDENTITY_PAYLOAD},
                output="$.validated",
                select={"clusterName.$": "$.Payload.clusterName", "nodePool.$": "$.Payload.nodePool"},
            ),
            Task(
                lifecycle_steps.acquire_delete_node_pool_lock,
                name="AcquireLock",
                base=False,
                args={
                    "clusterName.$": "$.validated.clusterName",
                    "nodePool.$": "$.validated.nodePool",
                    **IDENTITY_PAYLOAD,
                },
                output=None,
            ),
            Pass(
                "Context", parameters={"clusterName.$": "$.validated.clusterName", "nodePool.$": "$.validated.nodePool"}
            ),
            *delete_node_pool_states(prefix="", scope="cluster", catch=FAILED),
            *guarded(
                [
                    Task(lifecycle_steps.delete_node_pool_record, name="DeleteRecord", args=POOL),
                    Task(lifecycle_steps.finish_node_pool_operation, name="MarkRunning"),
                ],
                FAILED,
            ),
            Succeed("Deleted"),
        ],
        [
            Task(cluster_steps.record_failure, args={"error.$": "$.error", "failurePhase": "DEGRADED", **POOL}),
            Task(cluster_steps.finish_failure, args={"error.$": "$.error"}),
            Fail("DeleteFailed", error_path="$.error.Error", cause_path="$.error.Cause"),
        ],
    ],
)
