"""The steps of DeleteBackups: check that the request names a deleted cluster incarnation's
backups (its operation record's uid, never the input's word alone), delete them, record it."""

from __future__ import annotations

from kubestep import backup_deletion
from kubestep.aws import client
from kubestep.errors import InvalidSpec
from kubestep.flow.context import StepInput
from kubestep.flow.steps import step
from kubestep.workflows.cluster_steps import error_message
from kubestep.workflows.identity import own_operation


@step
def validate_backup_deletion(ctx: StepInput) -> dict:
    """First state: the request is well formed, the operation record is this execution's and
    names the same incarnation, which is a deleted one of the name that kept backups."""
    request = backup_deletion.parse_delete_backups_request(ctx.event.get("request"))
    operation = own_operation(ctx, backup_deletion.KIND, request.cluster_name, uid=request.incarnation)
    if operation.uid != request.incarnation:
        raise InvalidSpec(
            [
                (
                    "incarnation",
                    f"{request.incarnation} is not the incarnation operation {ctx.operation_id} was started for",
                )
            ]
        )
    backup_deletion.check_deletable(ctx.store, request)
    return {
        "clusterName": request.cluster_name,
        "incarnation": request.incarnation,
        # Step arguments are strings: "" stands for every backup of the incarnation.
        "backupId": request.backup_id or "",
    }


@step
def delete_requested_backups(ctx: StepInput, cluster_name: str, incarnation: str, backup_id: str) -> dict:
    """Every version of the objects (of one backup, or with `backup_id` "" of every one), then the
    records; a retry deletes what is left."""
    request = backup_deletion.DeleteBackupsRequest(
        clusterName=cluster_name, incarnation=incarnation, backupId=backup_id or None
    )
    s3 = client("s3", ctx.settings.region)
    deleted = backup_deletion.delete_requested(s3, ctx.store, ctx.settings.backup_bucket, request)
    what = f"backup {backup_id}" if backup_id else "every backup"
    ctx.store.events.record(
        cluster_name,
        "Normal",
        "BackupsDeleted",
        f"{what} of the deleted cluster {cluster_name} (uid {incarnation}) deleted: {deleted['records']} "
        f"records, {deleted['objectVersions']} object versions",
        f"AWSCluster/{cluster_name}",
        ctx.operation_id,
        uid=incarnation,
    )
    ctx.store.operations.finish(ctx.operation_id, "SUCCEEDED")
    return deleted


@step
def record_backup_deletion_failure(ctx: StepInput, error: dict) -> dict:
    name, message = error_message(error)
    ctx.store.operations.finish(ctx.operation_id, "FAILED", name, message)
    return {"error": name}
