"""What the control plane is told about its etcd backups: the policy item its replicas read
(kubestep/store/backups.py). Like the administrators item, it always says what the cluster
record's spec says, so a changed interval or retention reaches the leader without replacing
any replica. And, when a delete asks for it, the incarnation's backups deleted with it."""

from __future__ import annotations

from kubestep import backup_deletion, backups
from kubestep.flow.steps import step
from kubestep.resources.context import ClusterContext
from kubestep.store.backups import BackupPolicy
from kubestep.store.table import iso


def publish_backup_policy(ctx: ClusterContext) -> bool:
    """The spec's interval and retention, the bucket and the incarnation's prefix; True if changed.
    Nothing when the service has no backup bucket (a stack deployed before it had one)."""
    bucket = ctx.settings.backup_bucket
    if not bucket:
        return False
    spec = ctx.spec.spec.backup
    policy = BackupPolicy(
        bucket=bucket,
        prefix=backups.cluster_prefix(ctx.uid),
        interval_minutes=spec.interval_minutes,
        retention_days=spec.retention_days,
        updated_at=iso(),
    )
    changed = ctx.store.backups.publish_policy(ctx.uid, policy)
    if changed:
        ctx.event(
            "Normal",
            "BackupPolicyPublished",
            f"etcd snapshots every {spec.interval_minutes} minutes to s3://{bucket}/{policy.prefix}, "
            f"kept {spec.retention_days} days",
        )
    return changed


@step
def delete_cluster_backups(ctx: ClusterContext, delete_backups: bool) -> dict:
    """Only when the delete asked for it (`deleteBackups`): every version of the incarnation's
    objects, then their records. Runs once the control plane is gone, so no leader uploads
    another behind it. Without it the backups stay (DeleteRecord keeps them findable by name)."""
    if not delete_backups:
        return {"kept": len(ctx.store.backups.list(ctx.uid))}
    deleted = backup_deletion.delete_incarnation_backups(
        ctx.s3, ctx.store, ctx.settings.backup_bucket, ctx.name, ctx.uid
    )
    ctx.event(
        "Normal",
        "BackupsDeleted",
        f"the etcd backups of cluster {ctx.name} (uid {ctx.uid}) are deleted with it: "
        f"{deleted['records']} backups, {deleted['objectVersions']} object versions",
    )
    return deleted
