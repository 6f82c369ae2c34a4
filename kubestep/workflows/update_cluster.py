"""UpdateCluster (and upgrades): first, what the roll works with must be as kubestep made it (a
replica group deleted by hand stops the update before it changes anything, saying `kubestep
repair cluster`). Every control-plane change rolls the replicas one at a time, unhealthy first,
each through the create's health gate (every replica passes it, replaced or not); a failed gate stops the roll with the
cluster DEGRADED and the replicas after it untouched (the next update resumes). Then,
optionally, node pools move to the control plane's version, one pool at a time."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Choice, Succeed, Task
from kubestep.resources import cluster_admins, control_plane_rollout, drift
from kubestep.workflows import cluster_steps, lifecycle_steps
from kubestep.workflows.envelope import Lock, Validation, cluster_operation, recorded_failure
from kubestep.workflows.fragments import (
    NODE_POOL,
    each,
    roll_node_pool_states,
    roll_replicas_states,
)

SCHEDULED_SKIP = [
    Choice(
        "Scheduled",
        comment="A one-off schedule whose cluster is gone or no longer fits records why and does nothing.",
        choices=[({"Variable": "$.validated.result.skip", "BooleanEquals": True}, "NothingToDo")],
        default="AcquireLock",
    ),
    Succeed("NothingToDo"),
]

WORKFLOW = cluster_operation(
    name="UpdateCluster",
    module=__name__,
    comment="Update or upgrade a cluster: roll the control plane one replica at a time behind its health gate, "
    "then optionally its node pools. Input: {clusterName, controlPlane: {version, instanceType, ...}, "
    'upgradePolicy, nodePools: "all" | [names]}.',
    timeout=timedelta(hours=2),
    validation=Validation(
        lifecycle_steps.validate_update_cluster,
        fields=("clusterName", "rolls", "nodePools"),
        whole_answer=True,
    ),
    lock=Lock(lifecycle_steps.acquire_update_cluster_lock, with_input=True),
    before_lock=SCHEDULED_SKIP,
    body=[
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
        *roll_replicas_states("One replica at a time: replica N+1 starts only after replica N passed its gate."),
        Task(control_plane_rollout.adopt_control_plane_spec),
        Task(
            cluster_admins.publish_cluster_admins,
            comment="New administrators change in place: the replicas re-read the item, none is replaced.",
        ),
        each(
            "UpgradeNodePools",
            "$.nodePools",
            "nodePool",
            [Task(lifecycle_steps.prepare_node_pool_upgrade, args=NODE_POOL), *roll_node_pool_states()],
            one_at_a_time=True,
            comment="Then the node pools asked for, one pool at a time, each within its update settings.",
        ),
        Task(cluster_steps.mark_cluster_running, name="MarkRunning"),
    ],
    succeeded="Updated",
    failure=recorded_failure("UpdateFailed", record_args={"failurePhase": "DEGRADED"}),
)
