"""State sequences shared by several workflows, declared once.

The delete order (dependents before what they depend on) lives here only: `DeleteCluster` runs it for the whole cluster,
and a failed `CreateCluster` runs the same steps scoped to what its own operation created."""

from __future__ import annotations

from typing import Any

from kubestep.flow.asl import Catch, Choice, State, Task, guarded
from kubestep.resources import (
    control_plane,
    dns_records,
    instance_roles,
    instances,
    kubernetes_leftovers,
    load_balancer,
    node_pool_rollout,
    node_pools,
    secrets,
    security_groups,
    subnet_tags,
    termination,
)

# Every cluster workflow's states carry the cluster name; the operation id is always the
# execution's own name (`$$.Execution.Name`), never a field of the input.
CLUSTER_PAYLOAD: dict[str, Any] = {"clusterName.$": "$.clusterName", "operationId.$": "$$.Execution.Name"}
IDENTITY_PAYLOAD: dict[str, Any] = {
    "operationId.$": "$$.Execution.Name",
    "executionArn.$": "$$.Execution.Id",
}


def delete_cluster_states(*, prefix: str, scope: str, catch: Catch, keep_etcd_volumes: Any) -> list[State]:
    """Node pools -> control plane -> instances gone -> etcd volumes -> NLB -> target group ->
    launch templates -> instance roles -> security groups -> what Kubernetes created -> subnet
    tags -> replica DNS records -> secrets.

    `scope` "cluster" deletes everything the cluster owns; "operation" only what the running
    operation created (compensation). `keep_etcd_volumes` is a literal or a `{"…​.$": path}`."""
    scoped = {"scope": scope}
    keep = keep_etcd_volumes if isinstance(keep_etcd_volumes, dict) else {"keepEtcdVolumes": keep_etcd_volumes}
    states: list[State] = [
        Task(instances.delete_node_pool_groups, name=f"{prefix}DeleteNodePoolGroups", args=scoped),
        Task(instances.delete_control_plane_groups, name=f"{prefix}DeleteControlPlaneGroups", args=scoped),
        Task(instances.terminate_instances, name=f"{prefix}TerminateInstances", args=scoped),
        Task(control_plane.delete_etcd_volumes, name=f"{prefix}DeleteEtcdVolumes", args={**scoped, **keep}),
        Task(load_balancer.delete_load_balancer, name=f"{prefix}DeleteLoadBalancer", args=scoped),
        Task(load_balancer.delete_target_group, name=f"{prefix}DeleteTargetGroup", args=scoped),
        Task(instances.delete_launch_templates, name=f"{prefix}DeleteLaunchTemplates", args=scoped),
        Task(instance_roles.delete_instance_roles, name=f"{prefix}DeleteInstanceRoles", args=scoped),
        Task(termination.delete_termination_queue, name=f"{prefix}DeleteTerminationQueue", args=scoped),
        Task(security_groups.delete_security_groups, name=f"{prefix}DeleteSecurityGroups", args=scoped),
    ]
    if scope == "cluster":
        # Only a cluster that ran can have made Service load balancers and volumes.
        states.append(Task(kubernetes_leftovers.delete_kubernetes_resources, name=f"{prefix}DeleteKubernetesResources"))
        states.append(Task(subnet_tags.untag_subnets, name=f"{prefix}UntagSubnets"))
    states.append(Task(dns_records.delete_dns_records, name=f"{prefix}DeleteDnsRecords"))
    states.append(Task(secrets.delete_cluster_secrets, name=f"{prefix}DeleteClusterSecrets", args=scoped))
    return guarded(states, catch)


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
