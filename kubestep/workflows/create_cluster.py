"""CreateCluster: security groups, subnet tags, the internal NLB, the bootstrap secret, then at
once the control-plane replicas (etcd volume + launch template + ASG each, the health gate) and
the node pools; on any failure after the lock, a Warning event and compensation of only what this
operation created, through the same delete steps DeleteCluster runs."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Choice, Parallel, State, Task
from kubestep.resources import control_plane
from kubestep.workflows import cluster_steps
from kubestep.workflows.envelope import (
    COMPENSATION_FAILED,
    Lock,
    Validation,
    cluster_operation,
    rolled_back_failure,
)
from kubestep.workflows.fragments import (
    DELETE_FIRST,
    REPLICA,
    cluster_foundation_states,
    delete_cluster_states,
    each,
    ensure_node_pools_states,
    ensure_replicas_states,
)

ROLLBACK: list[State] = [
    *delete_cluster_states(prefix="Rollback", scope="operation", catch=COMPENSATION_FAILED, keep_etcd_volumes=False),
    Task(
        cluster_steps.verify_rollback,
        args={"scope": "operation"},
        output="$.verified",
        select={"clean.$": "$.Payload.clean"},
    ),
    Choice(
        "RolledBackEverything",
        comment="A task still running when the create failed may have created something after its "
        "delete step passed: delete again.",
        choices=[({"Variable": "$.verified.clean", "BooleanEquals": False}, f"Rollback{DELETE_FIRST}")],
        default="RecordRollback",
    ),
]

WORKFLOW = cluster_operation(
    name="CreateCluster",
    module=__name__,
    comment="Create a Kubernetes cluster: security groups, internal NLB, PKI and secrets, instance roles, "
    "control-plane replicas (etcd volume + launch template + ASG each), health gate, node pools. "
    "Input: {cluster, nodePools, rollbackOnFailure} (stepfunctions/examples/).",
    timeout=timedelta(hours=2),
    validation=Validation(
        cluster_steps.validate_create_request,
        fields=("clusterName", "rollbackOnFailure"),
        comment="Validate the manifest against the management service; nothing is created on bad input.",
    ),
    lock=Lock(
        cluster_steps.acquire_create_lock,
        reads=(),
        with_input=True,
        holds=("uid",),
        comment="Prove the execution's identity, take the cluster's lock; a refused lock fails without compensating.",
    ),
    context_comment="Keep the state small: the spec lives in DynamoDB from here on.",
    body=[
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
                        comment="The health gate: every replica InService, bootstrapped, healthy behind the NLB.",
                    ),
                ],
                ensure_node_pools_states(pools_map="CreateNodePools"),
            ],
        ),
        Task(cluster_steps.mark_cluster_running, name="MarkRunning"),
    ],
    succeeded="Created",
    failure=rolled_back_failure(
        "CreateFailed",
        record_args={"rollbackOnFailure.$": "$.rollbackOnFailure"},
        record_comment="Warning event and ERROR phase, naming the failed step's error.",
        compensation=ROLLBACK,
        finish_comment="Release the lock; the operation reports the original error.",
    ),
)
