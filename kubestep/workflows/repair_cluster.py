"""RepairCluster: find what was deleted or changed by hand (drift), make it again with the create
steps (each is idempotent: it finds what exists and makes what does not), reconcile what
changed, replace the instances whose launch template changed (replicas one at a time, each
through the health gate), report what it changed."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Catch, Choice, Fail, Map, Pass, Succeed, Task, Workflow, guarded
from kubestep.resources import (
    cluster_admins,
    control_plane,
    drift,
    instance_roles,
    load_balancer,
    node_pools,
    secrets,
    security_groups,
    subnet_tags,
    termination,
)
from kubestep.workflows import cluster_steps, repair_steps
from kubestep.workflows.fragments import CLUSTER_PAYLOAD, IDENTITY_PAYLOAD

FAILED = Catch("RecordFailure", result_path="$.error")
ITEM = {"clusterName.$": "$.clusterName"}

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
                    Task(security_groups.ensure_security_groups),
                    Task(subnet_tags.tag_subnets),
                    Task(load_balancer.ensure_load_balancer),
                    Task(secrets.ensure_cluster_pki),
                    Task(termination.ensure_termination_queue),
                    Task(instance_roles.ensure_instance_roles),
                    Task(cluster_admins.publish_cluster_admins),
                    Task(control_plane.plan_replicas, output="$.plan", select={"replicas.$": "$.Payload.replicas"}),
                    Map(
                        "RestoreReplicas",
                        items="$.plan.replicas",
                        selector={**ITEM, "replica.$": "$$.Map.Item.Value"},
                        max_concurrency=5,
                        steps=[
                            Task(control_plane.ensure_etcd_volume, args={"replica.$": "$.replica"}),
                            Task(control_plane.ensure_replica_launch_template, args={"replica.$": "$.replica"}),
                            Task(control_plane.ensure_replica_group, args={"replica.$": "$.replica"}),
                        ],
                    ),
                    Map(
                        "RollReplicas",
                        comment="One replica at a time: etcd keeps its quorum while a replica is replaced.",
                        items="$.plan.replicas",
                        selector={**ITEM, "replica.$": "$$.Map.Item.Value"},
                        max_concurrency=1,
                        steps=[
                            Task(repair_steps.replace_stale_replica, args={"replica.$": "$.replica"}),
                            Task(control_plane.check_replica_health, args={"replica.$": "$.replica"}),
                        ],
                    ),
                    Task(node_pools.list_node_pools, output="$.pools", select={"names.$": "$.Payload.nodePools"}),
                    Map(
                        "RestoreNodePools",
                        items="$.pools.names",
                        selector={**ITEM, "nodePool.$": "$$.Map.Item.Value"},
                        max_concurrency=5,
                        steps=[
                            Task(node_pools.ensure_node_pool_launch_template, args={"nodePool.$": "$.nodePool"}),
                            Task(node_pools.ensure_node_pool_group, args={"nodePool.$": "$.nodePool"}),
                            Task(repair_steps.replace_stale_nodes, args={"nodePool.$": "$.nodePool"}),
                            Task(node_pools.check_node_pool_health, args={"nodePool.$": "$.nodePool"}),
                        ],
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
