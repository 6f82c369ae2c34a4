"""The cluster's administrators where its control plane reads them (a table item, not user-data):
changing who administers a running cluster writes that item, and the replicas turn it into
aws-iam-authenticator's mapping on their own timer — no launch template changes, no instance is
replaced. It always says what the cluster record's spec says: a create publishes it before the
first replica boots, an update before its roll (a replacement reads it at boot) and again once
the new spec is adopted, a repair before it replaces anything."""

from __future__ import annotations

from kubestep import cluster_admins
from kubestep.flow.steps import step
from kubestep.resources.backups import publish_backup_policy
from kubestep.resources.context import ClusterContext


@step
def publish_cluster_admins(ctx: ClusterContext) -> dict:
    """The administrators of the cluster's spec, mapped as the authenticator matches callers; and
    its backup policy, the other item the replicas read beside it."""
    arns = ctx.spec.spec.authentication.aws_iam.admin_identity_arns
    item, changed = ctx.store.admins.publish(ctx.uid, cluster_admins.mapping(arns))
    if changed:
        named = ", ".join(arns) or "nobody"
        ctx.event(
            "Normal",
            "ClusterAdminsPublished",
            f"cluster-admin through aws-iam-authenticator: {named} (generation {item.generation}; "
            "the replicas apply it within a minute, without being replaced)",
        )
    return {"generation": item.generation, "changed": changed, "backupPolicyChanged": publish_backup_policy(ctx)}
