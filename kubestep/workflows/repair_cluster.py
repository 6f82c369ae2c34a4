"""RepairCluster: find what was deleted or changed by hand (drift), make it again with the create
steps (each is idempotent: it finds what exists and makes what does not), reconcile what
changed, replace the instances whose launch template changed (replicas one at a time, each
through the health gate), report what it changed."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Catch, Choice, Fail, Pass, Succeed, Task, Workflow, guarded
from kubestep.resources import (
    drift,
)
from kubestep.workflows import cluster_steps, repair_steps
from kubestep.workflows.fragments import (
    CLUSTER_PAYLOAD,
    IDENTITY_PAYLOAD,
    NODE_POOL,
    ensure_cluster_states,
    ensure_node_pools_states,
    roll_replicas_states,
)

FAILED = Catch("RecordFailure", result_path="$.error")

WORKFLOW = Workflow(
    name="RepairCluster",
    module=__name__,
    comment="Repair a cluster after hand changes: detect drift, make missing resources again, reconcile changed "
    "ones, replace instances whose launch template changed, report. Input: {clusterName, detectOnly (default "
    "false: only detect and record the drift, change nothing)}.",
    timeout=timedelta(hours=2),
    function="ClusterTasks",
    base_payload=CLUSTER_PAYLOAD,
    chains=[
        [
            Task(
                repair_steps.validate_repair_request,
                name="ValidateRequest",
                base=False,
                args={"request.$": "$", **IDENTITY_PAYLOAD},
                output="$.validated",
                select={"clusterName.$": "$.Payload.clusterName", "detectOnly.$": "$.Payload.detectOnly"},
            ),
            Task(
                repair_steps.acquire_repair_lock,
                name="AcquireLock",
                base=False,
                args={"clusterName.$": "$.validated.clusterName", **IDENTITY_PAYLOAD},
                output="$.lock",
                select={"uid.$": "$.Payload.uid", "phase.$": "$.Payload.phase"},
            ),
            Pass(
                "Context",
                parameters={
                    "clusterName.$": "$.validated.clusterName",
                    "detectOnly.$": "$.validated.detectOnly",
                    "phase.$": "$.lock.phase",
                    "uid.$": "$.lock.uid",
                },
            ),
            *guarded([Task(drift.detect_drift, output="$.drift", select={"found.$": "$.Payload.found"})], FAILED),
            Choice(
                "DetectOnly",
                choices=[({"Variable": "$.detectOnly", "BooleanEquals": True}, "FinishDetection")],
                default="EnsureSecurityGroups",
            ),
        ],
        [
            *guarded(
                [
                    Task(repair_steps.finish_detection, args={"phase.$": "$.phase", "found.$": "$.drift.found"}),
                ],
                FAILED,
            ),
            Succeed("Reported"),
        ],
        [
            *guarded(
                [
                    *ensure_cluster_states(replicas_map="RestoreReplicas"),
                    *roll_replicas_states("One replica at a time: etcd keeps its quorum while a replica is replaced."),
                    *ensure_node_pools_states(
                        pools_map="RestoreNodePools",
                        before_gate=(Task(repair_steps.replace_stale_nodes, args=NODE_POOL),),
                    ),
                    Task(repair_steps.record_repair, args={"found.$": "$.drift.found"}),
                    Task(cluster_steps.mark_cluster_running, name="MarkRunning"),
                ],
                FAILED,
            ),
            Succeed("Repaired"),
        ],
        [
            # A repair works on a cluster that ran: what it could not put back leaves it DEGRADED.
            Task(cluster_steps.record_failure, args={"error.$": "$.error", "failurePhase": "DEGRADED"}),
            Task(cluster_steps.finish_failure, args={"error.$": "$.error"}),
            Fail("RepairFailed", error_path="$.error.Error", cause_path="$.error.Cause"),
        ],
    ],
)
