"""RepairCluster: find what was deleted or changed by hand (drift), make it again with the create
steps (each is idempotent: it finds what exists and makes what does not), reconcile what
changed, replace the instances whose launch template changed (replicas one at a time, each
through the health gate), report what it changed."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Choice, Succeed, Task
from kubestep.resources import drift
from kubestep.workflows import cluster_steps, repair_steps
from kubestep.workflows.envelope import Lock, Validation, cluster_operation, recorded_failure
from kubestep.workflows.fragments import (
    NODE_POOL,
    ensure_cluster_states,
    ensure_node_pools_states,
    roll_replicas_states,
)

WORKFLOW = cluster_operation(
    name="RepairCluster",
    module=__name__,
    comment="Repair a cluster after hand changes: detect drift, make missing resources again, reconcile changed "
    "ones, replace instances whose launch template changed, report. Input: {clusterName, detectOnly (default "
    "false: only detect and record the drift, change nothing)}.",
    timeout=timedelta(hours=2),
    validation=Validation(repair_steps.validate_repair_request, fields=("clusterName", "detectOnly")),
    lock=Lock(repair_steps.acquire_repair_lock, holds=("uid", "phase")),
    body=[
        Task(drift.detect_drift, output="$.drift", select={"found.$": "$.Payload.found"}),
        Choice(
            "DetectOnly",
            choices=[({"Variable": "$.detectOnly", "BooleanEquals": True}, "FinishDetection")],
            default="EnsureSecurityGroups",
        ),
        Task(repair_steps.finish_detection, args={"phase.$": "$.phase", "found.$": "$.drift.found"}),
        Succeed("Reported"),
        *ensure_cluster_states(replicas_map="RestoreReplicas"),
        *roll_replicas_states("One replica at a time: etcd keeps its quorum while a replica is replaced."),
        *ensure_node_pools_states(
            pools_map="RestoreNodePools",
            before_gate=(Task(repair_steps.replace_stale_nodes, args=NODE_POOL),),
        ),
        Task(repair_steps.record_repair, args={"found.$": "$.drift.found"}),
        Task(cluster_steps.mark_cluster_running, name="MarkRunning"),
    ],
    succeeded="Repaired",
    # A repair works on a cluster that ran: what it could not put back leaves it DEGRADED.
    failure=recorded_failure("RepairFailed", record_args={"failurePhase": "DEGRADED"}),
)
