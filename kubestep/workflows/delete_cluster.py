"""DeleteCluster: every AWS resource the cluster owns, in the delete order of
`fragments.delete_cluster_states`, then its pending one-off upgrades, then its records (its
events stay)."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Catch, Fail, Pass, Succeed, Task, Workflow, guarded
from kubestep.workflows import cluster_steps
from kubestep.workflows.fragments import CLUSTER_PAYLOAD, IDENTITY_PAYLOAD, delete_cluster_states

FAILED = Catch("RecordFailure", result_path="$.error")

WORKFLOW = Workflow(
    name="DeleteCluster",
    module=__name__,
    comment="Delete a cluster and every AWS resource it owns, including what Kubernetes created under "
    "kubernetes.io/cluster/<uid>. Input: {clusterName, keepEtcdVolumes}.",
    timeout=timedelta(hours=2),
    function="ClusterTasks",
    base_payload=CLUSTER_PAYLOAD,
    chains=[
        [
            Task(
                cluster_steps.validate_delete_request,
                name="ValidateRequest",
                base=False,
                args={"request.$": "$", **IDENTITY_PAYLOAD},
                output="$.validated",
                select={"clusterName.$": "$.Payload.clusterName", "keepEtcdVolumes.$": "$.Payload.keepEtcdVolumes"},
            ),
            Task(
                cluster_steps.acquire_delete_lock,
                name="AcquireLock",
                base=False,
                args={"clusterName.$": "$.validated.clusterName", **IDENTITY_PAYLOAD},
                output="$.lock",
                select={"uid.$": "$.Payload.uid"},
            ),
            Pass(
                "Context",
                parameters={
                    "clusterName.$": "$.validated.clusterName",
                    "keepEtcdVolumes.$": "$.validated.keepEtcdVolumes",
                    "uid.$": "$.lock.uid",
                },
            ),
            *delete_cluster_states(
                prefix="", scope="cluster", catch=FAILED, keep_etcd_volumes={"keepEtcdVolumes.$": "$.keepEtcdVolumes"}
            ),
            *guarded(
                [
                    Task(cluster_steps.cancel_cluster_schedules, name="CancelSchedules"),
                    Task(cluster_steps.delete_cluster_record, name="DeleteRecord"),
                ],
                FAILED,
            ),
            Succeed("Deleted"),
        ],
        [
            Task(cluster_steps.record_failure, args={"error.$": "$.error"}),
            Task(cluster_steps.finish_failure, args={"error.$": "$.error"}),
            Fail("DeleteFailed", error_path="$.error.Error", cause_path="$.error.Cause"),
        ],
    ],
)
