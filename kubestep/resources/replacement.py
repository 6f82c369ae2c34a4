"""Replacing instances, one way for every caller: an update's roll (one replica at a time), a
repair (a launch template it changed), and whatever repairs a replica on its own later.

An instance is replaced when it is live (not going away, `instances.going_away`) and was
launched from another spec than its group's launch template launches now (`gke:spec`), or
reported a failed bootstrap. It is terminated through Auto Scaling without lowering the group's
desired size, so the group launches its successor from the current template (and its lifecycle
hooks run); the health gate that follows waits for the successor."""

from __future__ import annotations

from kubestep.resources import instances
from kubestep.resources.context import ClusterContext

REPLACING = "ReplacingInstances"


def replace_stale(ctx: ClusterContext, group: str, spec: str, involved: str, failed: str | None = None) -> list[str]:
    """Replace the group's live instances not of `spec` (and `failed`, one that reported a failed
    bootstrap); returns their ids. Idempotent: an instance already going away is left alone."""
    # The group's own `gke:spec` tag outranks the template's on what it launches: point it at the
    # spec first, so the successors carry the spec they were launched with.
    instances.set_group_spec(ctx, group, spec)
    stale = [
        member["id"]
        for member in instances.group_instances(ctx, group)
        if not instances.going_away(member["state"]) and (member["spec"] != spec or member["id"] == failed)
    ]
    for instance_id in stale:
        instances.terminate_in_group(ctx, instance_id, decrement=False)
    if stale:
        ctx.event("Normal", REPLACING, f"{involved}: replacing {', '.join(stale)} with instances of its current spec")
    return stale


def replace_replica(ctx: ClusterContext, replica: int, unhealthy: str | None = None) -> list[str]:
    """A control-plane replica's instance, if it is not of the replica's spec or reported a
    failed bootstrap, or is `unhealthy` (an automatic repair found it so); the entry point for a
    roll, a repair, or an automatic repair. Its etcd volume and stable name stay the replica's."""
    member = ctx.store.etcd.require_member(ctx.name, replica)
    if not member.asg_name or not member.launch_spec:
        return []
    report = ctx.store.reports.replica(ctx.uid, replica)
    failed = unhealthy or (report.instance_id if report and report.failed_phase else None)
    return replace_stale(ctx, member.asg_name, member.launch_spec, f"replica {replica}", failed)
