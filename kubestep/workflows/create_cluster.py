"""CreateCluster: security groups, subnet tags, the internal NLB, the bootstrap secret, the
control-plane replicas (etcd volume + launch template + ASG each), the health gate, the node
pools; on any failure after the lock, a Warning event and compensation of only what this
operation created, through the same delete steps DeleteCluster runs."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Catch, Choice, Fail, Map, Pass, Succeed, Task, Workflow, guarded
from kubestep.resources import (
    cluster_admins,
    control_plane,
    instance_roles,
    load_balancer,
    node_pools,
    secrets,
    security_groups,
    subnet_tags,
    termination,
)
from kubestep.workflows import cluster_steps
from kubestep.workflows.fragments import CLUSTER_PAYLOAD, IDENTITY_PAYLOAD, delete_cluster_states

FAILED = Catch("RecordFailure", result_path="$.error")
# Compensation errors go elsewhere: `$.error` stays the cause the operation reports.
COMPENSATION_FAILED = Catch("RecordCompensationFailure", result_path="$.compensationError")
ITEM = {"clusterName.$": "$.clusterName"}

WORKFLOW = Workflow(
    name="CreateCluster",
    module=__name__,
    comment="Create a Kubernetes cluster: security groups, internal NLB, PKI and secrets, instance roles, "
    "control-plane replicas (etcd volume + launch template + ASG each), health gate, node pools. "
    "Input: {cluster, nodePools, rollbackOnFailure} (stepfunctions/examples/).",
    timeout=timedelta(hours=2),
    function="ClusterTasks",
    base_payload=CLUSTER_PAYLOAD,
    chains=[
        [
            Task(
                cluster_steps.validate_create_request,
                name="ValidateRequest",
                comment="Validate the manifest against the management service; nothing is created on bad input.",
                base=False,
                args={"request.$": "$", **IDENTITY_PAYLOAD},
                output="$.validated",
                select={"clusterName.$": "$.Payload.clusterName", "rollbackOnFailure.$": "$.Payload.rollbackOnFailure"},
            ),
            Task(
                cluster_steps.acquire_create_lock,
                name="AcquireLock",
                comment="Prove the execution's identity, take the cluster's lock; a refused lock fails without "
                "compensating.",
                base=False,
                args={"request.$": "$$.Execution.Input", **IDENTITY_PAYLOAD},
                output="$.lock",
                select={"uid.$": "$.Payload.uid"},
            ),
            Pass(
                "Context",
                comment="Keep the state small: the spec lives in DynamoDB from here on.",
                parameters={
                    "clusterName.$": "$.validated.clusterName",
                    "rollbackOnFailure.$": "$.validated.rollbackOnFailure",
                    "uid.$": "$.lock.uid",
                },
            ),
            *guarded(
                [
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
                    Task(
                        control_plane.plan_replicas,
                        output="$.plan",
                        select={"replicas.$": "$.Payload.replicas"},
                    ),
                    Map(
                        "CreateReplicas",
                        items="$.plan.replicas",
                        selector={**ITEM, "replica.$": "$$.Map.Item.Value"},
                        max_concurrency=5,
                        steps=[
                            Task(control_plane.ensure_etcd_volume, args={"replica.$": "$.replica"}),
                            Task(control_plane.ensure_replica_launch_template, args={"replica.$": "$.replica"}),
                            Task(control_plane.ensure_replica_group, args={"replica.$": "$.replica"}),
                        ],
                    ),
                    Map(
                        "WaitForControlPlane",
                        comment="The health gate: every replica InService, bootstrapped, healthy behind the NLB.",
                        items="$.plan.replicas",
                        selector={**ITEM, "replica.$": "$$.Map.Item.Value"},
                        max_concurrency=5,
                        steps=[Task(control_plane.check_replica_health, args={"replica.$": "$.replica"})],
                    ),
                    Task(node_pools.list_node_pools, output="$.pools", select={"names.$": "$.Payload.nodePools"}),
                    Map(
                        "CreateNodePools",
                        items="$.pools.names",
                        selector={**ITEM, "nodePool.$": "$$.Map.Item.Value"},
                        max_concurrency=5,
                        steps=[
                            Task(node_pools.ensure_node_pool_launch_template, args={"nodePool.$": "$.nodePool"}),
                            Task(node_pools.ensure_node_pool_group, args={"nodePool.$": "$.nodePool"}),
                            Task(node_pools.check_node_pool_health, args={"nodePool.$": "$.nodePool"}),
                        ],
                    ),
                    Task(cluster_steps.mark_cluster_running, name="MarkRunning"),
                ],
                FAILED,
            ),
            Succeed("Created"),
        ],
        [
            Task(
                cluster_steps.record_failure,
                comment="Warning event and ERROR phase, naming the failed step's error.",
                args={"error.$": "$.error", "rollbackOnFailure.$": "$.rollbackOnFailure"},
            ),
            Choice(
                "RollbackWanted",
                choices=[({"Variable": "$.rollbackOnFailure", "BooleanEquals": False}, "FinishFailure")],
                default="RollbackDeleteNodePoolGroups",
            ),
        ],
        [
            *delete_cluster_states(
                prefix="Rollback", scope="operation", catch=COMPENSATION_FAILED, keep_etcd_volumes=False
            ),
            *guarded(
                [
                    Task(
                        cluster_steps.verify_rollback,
                        args={"scope": "operation"},
                        output="$.verified",
                        select={"clean.$": "$.Payload.clean"},
                    )
                ],
                COMPENSATION_FAILED,
            ),
            Choice(
                "RolledBackEverything",
                comment="A task still running when the create failed may have created something after its "
                "delete step passed: delete again.",
                choices=[({"Variable": "$.verified.clean", "BooleanEquals": False}, "RollbackDeleteNodePoolGroups")],
                default="RecordRollback",
            ),
        ],
        [
            Task(cluster_steps.record_rollback, next="FinishFailure"),
        ],
        [
            Task(
                cluster_steps.record_compensation_failure,
                args={"compensationError.$": "$.compensationError"},
                next="FinishFailure",
            )
        ],
        [
            Task(
                cluster_steps.finish_failure,
                comment="Release the lock; the operation reports the original error.",
                args={"error.$": "$.error"},
            ),
            Fail("CreateFailed", error_path="$.error.Error", cause_path="$.error.Cause"),
        ],
    ],
)
