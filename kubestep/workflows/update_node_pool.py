"""UpdateNodePool: bounds, tags and update settings change in place; a spec that needs new
instances (version, instance type, labels, taints, volumes, image, kubelet settings) rolls
the pool within maxSurge / maxUnavailable, draining old nodes through the termination hook."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Catch, Fail, Pass, Succeed, Task, Workflow, guarded
from kubestep.resources import drift
from kubestep.workflows import cluster_steps, lifecycle_steps
from kubestep.workflows.fragments import CLUSTER_PAYLOAD, IDENTITY_PAYLOAD, roll_node_pool_states

FAILED = Catch("RecordFailure", result_path="$.error")
POOL = {"nodePool.$": "$.nodePool"}

WORKFLOW = Workflow(
    name="UpdateNodePool",
    module=__name__,
    comment="Change a node pool: in place, or rolled within its update settings. "
    "Input: {clusterName, nodePool, changes: {minNodeCount, maxNodeCount, version, labels, taints, ...}}.",
    timeout=timedelta(hours=2),
    function="ClusterTasks",
    base_payload=CLUSTER_PAYLOAD,
    chains=[
        [
            Task(
                lifecycle_steps.validate_update_node_pool,
                name="ValidateRequest",
                base=False,
                args={"request.$": "$", **IDENTITY_PAYLOAD},
                output="$.validated",
                select={"clusterName.$": "$.Payload.clusterName", "nodePool.$": "$.Payload.nodePool"},
            ),
            Task(
                lifecycle_steps.acquire_update_node_pool_lock,
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
                "Context", parameters={"clusterName.$": "$.validated.clusterName", "nodePool.$": "$.validated.nodePool"}
            ),
            # A group deleted by hand would fail the update half-way: say "repair" before changing anything.
            *guarded([Task(drift.check_for_drift)], FAILED),
            *roll_node_pool_states(catch=FAILED),
            *guarded([Task(lifecycle_steps.finish_node_pool_operation, name="MarkRunning")], FAILED),
            Succeed("Updated"),
        ],
        [
            Task(cluster_steps.record_failure, args={"error.$": "$.error", "failurePhase": "DEGRADED", **POOL}),
            Task(cluster_steps.finish_failure, args={"error.$": "$.error"}),
            Fail("UpdateFailed", error_path="$.error.Error", cause_path="$.error.Cause"),
        ],
    ],
)
