"""CreateCluster: security groups, subnet tags, the internal NLB, the bootstrap secret, then at
once the control-plane replicas (etcd volume + launch template + ASG each, the health gate) and
the node pools; on any failure after the lock, a Warning event and compensation of only what this
operation created, through the same delete steps DeleteCluster runs."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Catch, Choice, Fail, Parallel, Pass, Succeed, Task, Workflow, guarded
from kubestep.resources import (
    control_plane,
)
from kubestep.workflows import cluster_steps
from kubestep.workflows.fragments import (
    CLUSTER_PAYLOAD,
    DELETE_FIRST,
    IDENTITY_PAYLOAD,
    REPLICA,
    cluster_foundation_states,
    delete_cluster_states,
    each,
    ensure_node_pools_states,
    ensure_replicas_states,
)

FAILED = Catch("RecordFailure", result_path="$.error")
# Compensation errors go elsewhere: `$.error` stays the cause the operation reports.
COMPENSATION_FAILED = Catch("RecordCompensationFailure", result_path="$.compensationError")

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
                    *cluster_foundation_states(),
                    Parallel(
                        "CreateControlPlaneAndNodePools",
                        comment="Once the endpoint and the bootstrap material exist, the node pools need "
                        "nothing from the replicas but an answering API server, which their nodes' joins "
                        "retry until it answers: both chains run at once, and RUNNING waits for the slower.",
                        branches=[
                            [
                                *ensure_replicas_states(replicas_map="CreateReplicas"),
                                each(
                                    "WaitForControlPlane",
                                    "$.plan.replicas",
                                    "replica",
                                    [Task(control_plane.check_replica_health, args=REPLICA)],
                                    comment="The health gate: every replica InService, bootstrapped, healthy "
                                    "behind the NLB.",
                                ),
                            ],
                            ensure_node_pools_states(pools_map="CreateNodePools"),
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
                default=f"Rollback{DELETE_FIRST}",
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
                choices=[({"Variable": "$.verified.clean", "BooleanEquals": False}, f"Rollback{DELETE_FIRST}")],
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
