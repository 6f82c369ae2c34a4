"""RestoreCluster: bring a cluster's etcd back to one of its backups, as etcd's disaster-recovery
procedure does it. The restore request (the snapshot, a new cluster token) is recorded where
the replicas read it; the control plane stops (every replica's group to 0, the etcd volumes
kept); it starts again, each replica restoring the snapshot on its volume before etcd starts
(its stable name, the new token); every replica through the health gate; the request cleared;
the nodes launched after the snapshot replaced (the restored etcd has no Node objects for
them); RUNNING."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Catch, Map, Pass, Task
from kubestep.resources import control_plane, node_pools
from kubestep.workflows import cluster_steps, restore_steps
from kubestep.workflows.envelope import Failure, Lock, Validation, cluster_operation, recorded_failure
from kubestep.workflows.fragments import ITEM, NODE_POOL, REPLICA, each

SNAPSHOT = {"backupId.$": "$.restore.backupId", "revision.$": "$.restore.revision", "takenAt.$": "$.restore.takenAt"}


def _failure() -> Failure:
    """The error recorded (the cluster DEGRADED), then the restore abandoned (its request cleared,
    the replicas' groups back to 1: never a stopped control plane), the lock released."""
    base = recorded_failure("RestoreFailed", record_args={"failurePhase": "DEGRADED"})
    # Its own error must not keep the lock from being released: recorded apart, the failure goes on.
    abandon = Task(
        restore_steps.abandon_restore, next="FinishFailure", catch=Catch("AbandonFailed", result_path="$.abandonError")
    )
    noted = Pass("AbandonFailed", comment="The restore could not be abandoned: the lock goes all the same.")
    return Failure(base.name, record=base.record, recovery=(abandon, noted), finish=base.finish)


WORKFLOW = cluster_operation(
    name="RestoreCluster",
    module=__name__,
    comment="Restore a cluster's etcd from one of its backups (etcd's disaster recovery): stop the control plane "
    "keeping the etcd volumes, restore the snapshot on every member with a new cluster token, start them, gate on "
    "health, replace the nodes launched after the snapshot. Input: {clusterName, backupId}.",
    timeout=timedelta(hours=2),
    validation=Validation(restore_steps.validate_restore_request, fields=("clusterName", "backupId")),
    lock=Lock(restore_steps.acquire_restore_lock, reads=("clusterName", "backupId"), holds=("uid",)),
    body=[
        Task(
            restore_steps.record_restore_request,
            args={"backupId.$": "$.backupId"},
            output="$.restore",
            select={
                "backupId.$": "$.Payload.backupId",
                "revision.$": "$.Payload.revision",
                "takenAt.$": "$.Payload.takenAt",
            },
        ),
        Task(restore_steps.stop_control_plane, output="$.plan", select={"replicas.$": "$.Payload.replicas"}),
        Task(restore_steps.wait_control_plane_stopped),
        Task(restore_steps.start_control_plane),
        Task(restore_steps.wait_replicas_restored),
        each(
            "GateReplicas",
            "$.plan.replicas",
            "replica",
            [Task(control_plane.check_replica_health, args=REPLICA)],
            comment="Every member runs the restored data: each replica through the health gate.",
        ),
        Task(restore_steps.clear_restore_request),
        Task(node_pools.list_node_pools, output="$.pools", select={"names.$": "$.Payload.nodePools"}),
        Map(
            "ReplaceNewerNodes",
            comment="Nodes launched after the snapshot have no Node object in it: they are replaced.",
            items="$.pools.names",
            selector={**ITEM, "nodePool.$": "$$.Map.Item.Value", "takenAt.$": "$.restore.takenAt"},
            max_concurrency=5,
            steps=[
                Task(restore_steps.replace_nodes_after_snapshot, args={**NODE_POOL, "takenAt.$": "$.takenAt"}),
                Task(node_pools.check_node_pool_health, args=NODE_POOL),
            ],
        ),
        Task(restore_steps.record_restore, args=SNAPSHOT),
        Task(cluster_steps.mark_cluster_running, name="MarkRunning"),
    ],
    succeeded="Restored",
    failure=_failure(),
)
