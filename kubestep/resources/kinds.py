"""Every kind of AWS resource kubestep makes for a cluster, listed once, in the order a
cluster's resources are deleted: a kind before the kinds it needs (`ResourceKind.needs`, which a
test checks against this order). Read from here: the delete chain of `DeleteCluster` and the
compensation of a failed `CreateCluster` (`delete_steps`), the orphan sweep (`find` by uid, then
`delete_steps` run in process), drift (`detect`), and the inventory (`kubestep.inventory`).

Adding a kind is its module (`resources/<kind>.py`, exposing a `ResourceKind`) and one line
here."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kubestep.resources import (
    bootstrap_bundles,
    control_plane,
    dns_records,
    instance_roles,
    instances,
    kubernetes_leftovers,
    load_balancer,
    schedules,
    secrets,
    security_groups,
    subnet_tags,
    termination,
)
from kubestep.resources.context import ClusterContext
from kubestep.resources.kind import KEEP_ETCD_VOLUMES, DeleteStep, Found, ResourceKind, Scope

KINDS: list[ResourceKind] = [
    instances.GROUPS,
    instances.INSTANCES,
    control_plane.VOLUMES,
    load_balancer.LISTENERS,
    load_balancer.LOAD_BALANCERS,
    load_balancer.TARGET_GROUPS,
    instances.LAUNCH_TEMPLATES,
    bootstrap_bundles.KIND,
    instance_roles.PROFILES,
    instance_roles.ROLES_KIND,
    termination.RULES,
    termination.QUEUES,
    security_groups.KIND,
    kubernetes_leftovers.KIND,
    subnet_tags.KIND,
    dns_records.KIND,
    secrets.KIND,
    schedules.KIND,
]


# Delete steps that need nothing of each other and start the chain together (a workflow runs
# them in parallel; in process they run in list order): the node pools' and the replicas'
# groups, and the NLB. AWS deletes an NLB with targets still registered, and its network
# interfaces then linger for about a minute, blocking the security groups: deleted first, that
# minute passes while the groups go.
DELETED_TOGETHER: tuple[Callable[..., dict], ...] = (
    instances.delete_node_pool_groups,
    instances.delete_control_plane_groups,
    load_balancer.delete_load_balancer,
)


def delete_steps(kinds: Iterable[ResourceKind] | None = None, *, whole_cluster: bool = True) -> list[DeleteStep]:
    """The delete chain, in order: each kind's steps, a step several kinds share (one call
    deletes a load balancer and its listener) once, where the first of them needs it."""
    steps: list[DeleteStep] = []
    for kind in KINDS if kinds is None else kinds:
        for delete in kind.delete:
            if (whole_cluster or not delete.whole_cluster_only) and all(delete.fn is not s.fn for s in steps):
                steps.append(delete)
    return steps


def delete_calls(keep_etcd_volumes: bool) -> list[tuple[Callable[..., dict], dict[str, Any]]]:
    """A whole cluster's delete chain as (step function, keyword arguments), to run in process
    (the sweep deletes an orphan's resources with the very steps `DeleteCluster` runs)."""
    values = {"scope": "cluster", KEEP_ETCD_VOLUMES: keep_etcd_volumes}
    names = {"scope": "scope", KEEP_ETCD_VOLUMES: "keep_etcd_volumes"}
    return [(s.fn, {names[arg]: values[arg] for arg in s.args}) for s in delete_steps()]


def find(scope: Scope, uid: str | None = None) -> dict[str, list[Found]]:
    """Kind name -> what this service (one incarnation, given `uid`) has of it in AWS."""
    return {kind.name: list(kind.find(scope, uid)) for kind in KINDS if kind.find is not None}


def detect(ctx: ClusterContext, *, blocking_only: bool = False) -> dict[str, str]:
    """Logical resource -> what differs from what kubestep made and what the spec says, kind by
    kind in create order (what a kind needs is looked at before it); `blocking_only`: only what
    an update must not start with (what runs differing is put right by the update's roll)."""
    found: dict[str, str] = {}
    for kind in reversed(KINDS):
        if kind.drift is not None and (kind.blocks_updates or not blocking_only):
            found.update(kind.drift(ctx, found))
    return dict(sorted(found.items()))


def by_name(name: str) -> ResourceKind:
    return next(kind for kind in KINDS if kind.name == name)
