"""State sequences shared by several workflows, declared once.

The delete chain is read from the kinds' list (`kubestep.resources.kinds`): `DeleteCluster`
runs it for the whole cluster, and a failed `CreateCluster` runs the same steps scoped to what
its own operation created."""

from __future__ import annotations

from typing import Any

from kubestep.flow.asl import Catch, Choice, Map, Parallel, State, Task, guarded
from kubestep.flow.steps import spec_of
from kubestep.resources import (
    cluster_admins,
    control_plane,
    control_plane_rollout,
    instance_roles,
    kinds,
    load_balancer,
    node_pool_rollout,
    node_pools,
    secrets,
    security_groups,
    subnet_tags,
    termination,
)
from kubestep.resources.kind import KEEP_ETCD_VOLUMES, SCOPE

# Every cluster workflow's states carry the cluster name; the operation id is always the
# execution's own name (`$$.Execution.Name`), never a field of the input.
CLUSTER_PAYLOAD: dict[str, Any] = {"clusterName.$": "$.clusterName", "operationId.$": "$$.Execution.Name"}
# A Map iteration's item carries the cluster name on (the workflow's base payload reads it).
ITEM: dict[str, Any] = {"clusterName.$": "$.clusterName"}
REPLICA: dict[str, Any] = {"replica.$": "$.replica"}
NODE_POOL: dict[str, Any] = {"nodePool.$": "$.nodePool"}


def each(name: str, items: str, key: str, steps: list[State], *, one_at_a_time: bool = False, comment: str = "") -> Map:
    """`steps` for each item of the list at `items` (a replica index, a node pool name), given to
    them as `key` with the cluster name; five at a time, or one."""
    return Map(
        name,
        comment=comment,
        items=items,
        selector={**ITEM, f"{key}.$": "$$.Map.Item.Value"},
        max_concurrency=1 if one_at_a_time else 5,
        steps=steps,
    )


def roll_replicas_states(comment: str) -> list[State]:
    """One replica at a time: its instance replaced unless it is of the replica's spec and has not
    failed (`kubestep.resources.replacement`), then the health gate over what runs."""
    steps: list[State] = [
        Task(control_plane_rollout.replace_replica, args=REPLICA),
        Task(control_plane.check_replica_health, args=REPLICA),
    ]
    return [each("RollReplicas", "$.plan.replicas", "replica", steps, one_at_a_time=True, comment=comment)]


IDENTITY_PAYLOAD: dict[str, Any] = {
    "operationId.$": "$$.Execution.Name",
    "executionArn.$": "$$.Execution.Id",
}


def ensure_cluster_states(*, replicas_map: str) -> list[State]:
    """What a cluster is made of, in create order (each kind after what it needs, which a test
    checks against `kubestep.resources.kinds`): security groups → subnet tags → NLB, target group
    and listener → PKI secrets → termination queue and rule → instance roles and profiles → the
    administrators → each replica's etcd volume, launch template and group (`replicas_map`).
    A create makes them; a repair runs the same steps to make again what is missing (each finds
    what exists)."""
    return [*cluster_foundation_states(), *ensure_replicas_states(replicas_map=replicas_map)]


def cluster_foundation_states() -> list[State]:
    """What the replicas and the node pools both need: their security groups, the endpoint (the
    NLB), the bootstrap material (PKI, join token), the termination queue their groups' hooks
    notify, the instance roles; and the administrators, before the first replica boots."""
    return [
        Task(security_groups.ensure_security_groups),
        Task(subnet_tags.tag_subnets),
        Task(load_balancer.ensure_load_balancer),
        Task(secrets.ensure_cluster_pki),
        Task(termination.ensure_termination_queue),
        Task(instance_roles.ensure_instance_roles),
        Task(
            cluster_admins.publish_cluster_admins,
            comment="The administrators where the replicas read them, before the first one boots.",
        ),
    ]


def ensure_replicas_states(*, replicas_map: str) -> list[State]:
    """Each replica's etcd volume, launch template and group (`replicas_map`)."""
    return [
        Task(control_plane.plan_replicas, output="$.plan", select={"replicas.$": "$.Payload.replicas"}),
        each(
            replicas_map,
            "$.plan.replicas",
            "replica",
            [
                Task(control_plane.ensure_etcd_volume, args=REPLICA),
                Task(control_plane.ensure_replica_launch_template, args=REPLICA),
                Task(control_plane.ensure_replica_group, args=REPLICA),
            ],
        ),
    ]


def ensure_node_pools_states(*, pools_map: str, before_gate: tuple[Task, ...] = ()) -> list[State]:
    """Every node pool's launch template and group, `before_gate` (a repair's replacement of
    stale nodes), then its health gate."""
    steps: list[State] = [
        Task(node_pools.ensure_node_pool_launch_template, args=NODE_POOL),
        Task(node_pools.ensure_node_pool_group, args=NODE_POOL),
        *before_gate,
        Task(node_pools.check_node_pool_health, args=NODE_POOL),
    ]
    return [
        Task(node_pools.list_node_pools, output="$.pools", select={"names.$": "$.Payload.nodePools"}),
        each(pools_map, "$.pools.names", "nodePool", steps),
    ]


def delete_cluster_states(*, prefix: str, scope: str, catch: Catch, keep_etcd_volumes: Any) -> list[State]:
    """The delete chain of `kubestep.resources.kinds`, kind by kind in its order.

    `scope` "cluster" deletes everything the cluster owns; "operation" only what the running
    operation created (compensation: a cluster that never ran made nothing Kubernetes makes, and
    has no schedules). `keep_etcd_volumes` is a literal or a `{"…​.$": path}`."""
    keep = keep_etcd_volumes if isinstance(keep_etcd_volumes, dict) else {"keepEtcdVolumes": keep_etcd_volumes}
    values = {SCOPE: {"scope": scope}, KEEP_ETCD_VOLUMES: keep}
    together: list[list[State]] = []
    states: list[State] = []
    for delete in kinds.delete_steps(whole_cluster=scope == "cluster"):
        args = {key: value for arg in delete.args for key, value in values[arg].items()}
        name = f"{prefix}{delete.name or spec_of(delete.fn).name}"
        task = Task(delete.fn, name=name, args=args) if args else Task(delete.fn, name=name)
        if any(delete.fn is fn for fn in kinds.DELETED_TOGETHER):
            together.append([task])
        else:
            states.append(task)
    if len(together) < 2:  # nothing to run side by side (a chain of other kinds)
        return guarded([branch[0] for branch in together] + states, catch)
    first = Parallel(
        f"{prefix}{DELETE_FIRST}",
        comment="The node pools' and the replicas' groups and the NLB, at once: none needs another, "
        "and the NLB's interfaces linger (blocking the security groups) while the groups go.",
        branches=together,
    )
    return guarded([first, *states], catch)


# The state that starts a delete chain (DeleteCluster's, a failed create's compensation).
DELETE_FIRST = "DeleteGroupsAndLoadBalancer"


def delete_node_pool_states(*, prefix: str, scope: str, catch: Catch) -> list[State]:
    """One node pool's resources: its group (forced), its instances, its launch template."""
    pool = {"nodePool.$": "$.nodePool", "scope": scope}
    return guarded(
        [
            Task(node_pools.delete_node_pool_group, name=f"{prefix}DeleteNodePoolGroup", args=pool),
            Task(node_pools.terminate_node_pool_instances, name=f"{prefix}TerminateNodePoolInstances", args=pool),
            Task(node_pools.delete_node_pool_launch_template, name=f"{prefix}DeleteNodePoolLaunchTemplate", args=pool),
        ],
        catch,
    )


def roll_node_pool_states(*, prefix: str = "", catch: Catch | None = None) -> list[State]:
    """A node pool to its target spec: in place, or rolled within its update settings."""
    pool = {"nodePool.$": "$.nodePool"}
    states: list[State] = [
        Task(
            node_pools.apply_node_pool_update,
            name=f"{prefix}ApplyNodePoolUpdate",
            args=pool,
            output="$.apply",
            select={"roll.$": "$.Payload.roll"},
        ),
        Choice(
            f"{prefix}NodePoolRolls",
            choices=[({"Variable": "$.apply.roll", "BooleanEquals": True}, f"{prefix}RollNodePool")],
            default=f"{prefix}FinishNodePoolUpdate",
        ),
    ]
    tail: list[State] = [
        Task(node_pool_rollout.roll_node_pool, name=f"{prefix}RollNodePool", args=pool),
        Task(node_pools.finish_node_pool_update, name=f"{prefix}FinishNodePoolUpdate", args=pool),
    ]
    if catch is not None:
        states, tail = guarded(states, catch), guarded(tail, catch)
    return states + tail
