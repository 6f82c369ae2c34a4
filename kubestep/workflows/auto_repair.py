"""AutoRepair: one cluster's automatic repair, an operation like any other (operation record,
the cluster's lock, events). A replica goes through the one replica replacement
(`kubestep.resources.replacement`), keeping its etcd volume and stable name, and its successor
through the create's health gate; nodes are marked Unhealthy in their Auto Scaling group, which
drains them through the termination hook and launches their successors, waited for until they
report healthy."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Catch, Choice, Fail, Succeed, Task, Workflow, guarded
from kubestep.resources import control_plane
from kubestep.workflows import auto_repair_steps, cluster_steps
from kubestep.workflows.fragments import CLUSTER_PAYLOAD, IDENTITY_PAYLOAD

FAILED = Catch("RecordFailure", result_path="$.error")

WORKFLOW = Workflow(
    name="AutoRepair",
    module=__name__,
    comment="Repair one cluster's unhealthy members (PlanRepairs starts it): replace one replica keeping its etcd "
    "volume, or mark nodes Unhealthy so their groups drain and replace them. Input: {clusterName, replica | nodes "
    "[{nodePool, instanceId}], instanceIds, problem}.",
    timeout=timedelta(hours=1),
    function="ClusterTasks",
    base_payload=CLUSTER_PAYLOAD,
    chains=[
        [
            Task(
                auto_repair_steps.validate_auto_repair_request,
                name="ValidateRequest",
                base=False,
                args={"request.$": "$", **IDENTITY_PAYLOAD},
                output="$.validated",
                select={"clusterName.$": "$.Payload.clusterName", "kind.$": "$.Payload.kind"},
            ),
            Task(
                auto_repair_steps.acquire_auto_repair_lock,
                name="AcquireLock",
                base=False,
                args={"clusterName.$": "$.validated.clusterName", "request.$": "$", **IDENTITY_PAYLOAD},
                output="$.lock",
                select={"uid.$": "$.Payload.uid"},
            ),
            Choice(
                "WhatToRepair",
                choices=[({"Variable": "$.validated.kind", "StringEquals": "replica"}, "ReplaceUnhealthyReplica")],
                default="MarkNodesUnhealthy",
            ),
        ],
        [
            *guarded(
                [
                    Task(
                        auto_repair_steps.replace_unhealthy_replica,
                        args={"replica.$": "$.replica", "instanceIds.$": "$.instanceIds"},
                        output="$.repair",
                        select={"replaced.$": "$.Payload.replaced"},
                    ),
                    Task(control_plane.check_replica_health, args={"replica.$": "$.replica"}),
                    Task(
                        auto_repair_steps.record_auto_repair,
                        name="RecordReplicaRepair",
                        args={"replaced.$": "$.repair.replaced"},
                        next="MarkRunning",
                    ),
                ],
                FAILED,
            ),
        ],
        [
            *guarded(
                [
                    Task(
                        auto_repair_steps.mark_nodes_unhealthy,
                        args={"nodes.$": "$.nodes"},
                        output="$.repair",
                        select={"replaced.$": "$.Payload.marked"},
                    ),
                    Task(
                        auto_repair_steps.wait_for_node_replacements,
                        args={"nodes.$": "$.nodes", "marked.$": "$.repair.replaced"},
                    ),
                    Task(auto_repair_steps.record_auto_repair, args={"replaced.$": "$.repair.replaced"}),
                    Task(cluster_steps.mark_cluster_running, name="MarkRunning"),
                ],
                FAILED,
            ),
            Succeed("Repaired"),
        ],
        [
            # An automatic repair works on a cluster that ran: what it could not mend leaves it DEGRADED.
            Task(cluster_steps.record_failure, args={"error.$": "$.error", "failurePhase": "DEGRADED"}),
            Task(cluster_steps.finish_failure, args={"error.$": "$.error"}),
            Fail("AutoRepairFailed", error_path="$.error.Error", cause_path="$.error.Cause"),
        ],
    ],
)
