"""UpdateCluster (and upgrades): first, what the roll works with must be as kubestep made it (a
replica group deleted by hand stops the update before it changes anything, saying `kubestep
repair cluster`). Every control-plane change rolls the replicas one at a time, unhealthy first,
each through the create's health gate (every replica passes it, replaced or not); a failed gate stops the roll with the
cluster DEGRADED and the replicas after it untouched (the next update resumes). Then,
optionally, node pools move to the control plane's version, one pool at a time."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Catch, Choice, Fail, Map, Pass, Succeed, Task, Workflow, guarded
from kubestep.resources import cluster_admins, control_plane, control_plane_rollout, drift
from kubestep.workflows import cluster_steps, lifecycle_steps
from kubestep.workflows.fragments import CLUSTER_PAYLOAD, IDENTITY_PAYLOAD, roll_node_pool_states

FAILED = Catch("RecordFailure", result_path="$.error")
ITEM = {"clusterName.$": "$.clusterName"}

WORKFLOW = Workflow(
    name="UpdateCluster",
    module=__name__,
    comment="Update or upgrade a cluster: roll the control plane one replica at a time behind its health gate, "
    "then optionally its node pools. Input: {clusterName, controlPlane: {version, instanceType, ...}, "
    'upgradePolicy, nodePools: "all" | [names]}.',
    timeout=timedelta(hours=2),
    function="ClusterTasks",
    base_payload=CLUSTER_PAYLOAD,
    chains=[
        [
            Task(
                lifecycle_steps.validate_update_cluster,
                name="ValidateRequest",
                base=False,
                args={"request.$": "$", **IDENTITY_PAYLOAD},
                output="$.validated",
            ),
            Choice(
                "Scheduled",
                comment="A one-off schedule whose cluster is gone or no longer fits records why and does nothing.",
                choices=[({"Variable": "$.validated.result.skip", "BooleanEquals": True}, "NothingToDo")],
                default="AcquireLock",
            ),
        ],
        [Succeed("NothingToDo")],
        [
            Task(
                lifecycle_steps.acquire_update_cluster_lock,
                name="AcquireLock",
                base=False,
                args={
                    "request.$": "$$.Execution.Input",
                    "clusterName.$": "$.validated.result.clusterName",
                    **IDENTITY_PAYLOAD,
                },
                output=None,
            ),
            Pass(
                "Context",
                parameters={
                    "clusterName.$": "$.validated.result.clusterName",
                    "rolls.$": "$.validated.result.rolls",
                    "nodePools.$": "$.validated.result.nodePools",
                },
            ),
            *guarded(
                [
                    Task(drift.check_for_drift),
                    Task(
                        cluster_admins.publish_cluster_admins,
                        name="PublishCurrentClusterAdmins",
                        comment="Replicas the roll replaces read the administrators item at boot: it must exist.",
                    ),
                    Task(
                        control_plane_rollout.plan_control_plane_roll,
                        output="$.plan",
                        select={"replicas.$": "$.Payload.replicas"},
                    ),
                    Map(
                        "RollReplicas",
                        comment="One replica at a time: replica N+1 starts only after replica N passed its gate.",
                        items="$.plan.replicas",
                        selector={**ITEM, "replica.$": "$$.Map.Item.Value"},
                        max_concurrency=1,
                        steps=[
                            Task(control_plane_rollout.replace_replica, args={"replica.$": "$.replica"}),
                            Task(
                                control_plane.check_replica_health,
                                name="CheckReplicaHealth",
                                args={"replica.$": "$.replica"},
                            ),
                        ],
                    ),
                    Task(control_plane_rollout.adopt_control_plane_spec),
                    Task(
                        cluster_admins.publish_cluster_admins,
                        comment="New administrators change in place: the replicas re-read the item, none is replaced.",
                    ),
                    Map(
                        "UpgradeNodePools",
                        comment="Then the node pools asked for, one pool at a time, each within its update settings.",
                        items="$.nodePools",
                        selector={**ITEM, "nodePool.$": "$$.Map.Item.Value"},
                        max_concurrency=1,
                        steps=[
                            Task(lifecycle_steps.prepare_node_pool_upgrade, args={"nodePool.$": "$.nodePool"}),
                            *roll_node_pool_states(),
                        ],
                    ),
                    Task(cluster_steps.mark_cluster_running, name="MarkRunning"),
                ],
                FAILED,
            ),
            Succeed("Updated"),
        ],
        [
            Task(cluster_steps.record_failure, args={"error.$": "$.error", "failurePhase": "DEGRADED"}),
            Task(cluster_steps.finish_failure, args={"error.$": "$.error"}),
            Fail("UpdateFailed", error_path="$.error.Error", cause_path="$.error.Cause"),
        ],
    ],
)
