"""DeleteBackups: a deleted cluster incarnation's etcd backups, one or every one, deleted for
good (every version of the objects under its prefix, then the records). No lock: the cluster is
gone, a new one of the name is another incarnation, and every step is idempotent."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Task, Workflow
from kubestep.workflows import backup_steps
from kubestep.workflows.envelope import ERROR, Failure, operation
from kubestep.workflows.fragments import IDENTITY_PAYLOAD

REQUEST = {"clusterName.$": "$.clusterName", "incarnation.$": "$.incarnation", "backupId.$": "$.backupId"}

WORKFLOW = Workflow(
    name="DeleteBackups",
    module=__name__,
    comment="Delete a deleted cluster incarnation's etcd backups: one (backupId) or every one. "
    "Input: {clusterName, incarnation, backupId (optional)}.",
    timeout=timedelta(minutes=30),
    function="ClusterTasks",
    base_payload={"operationId.$": "$$.Execution.Name"},
    chains=operation(
        head=[
            Task(
                backup_steps.validate_backup_deletion,
                name="ValidateRequest",
                base=False,
                args={"request.$": "$", **IDENTITY_PAYLOAD},
                output="$",
                select={
                    "clusterName.$": "$.Payload.clusterName",
                    "incarnation.$": "$.Payload.incarnation",
                    "backupId.$": "$.Payload.backupId",
                },
            )
        ],
        body=[Task(backup_steps.delete_requested_backups, args=REQUEST)],
        succeeded="Deleted",
        failure=Failure(
            "DeleteBackupsFailed",
            record=Task(backup_steps.record_backup_deletion_failure, name="RecordFailure", args=ERROR),
        ),
    ),
)
