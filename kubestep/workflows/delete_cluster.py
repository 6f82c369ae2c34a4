"""DeleteCluster: every AWS resource the cluster owns and its pending one-off upgrades, in the
delete order of `kubestep.resources.kinds`, then its records (its events stay)."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Task
from kubestep.workflows import cluster_steps
from kubestep.workflows.envelope import Lock, Validation, cluster_operation, recorded_failure
from kubestep.workflows.fragments import delete_cluster_states

FAILURE = recorded_failure("DeleteFailed")

WORKFLOW = cluster_operation(
    name="DeleteCluster",
    module=__name__,
    comment="Delete a cluster and every AWS resource it owns, including what Kubernetes created under "
    "kubernetes.io/cluster/<uid>. Input: {clusterName, keepEtcdVolumes}.",
    timeout=timedelta(hours=2),
    validation=Validation(cluster_steps.validate_delete_request, fields=("clusterName", "keepEtcdVolumes")),
    lock=Lock(cluster_steps.acquire_delete_lock, holds=("uid",)),
    body=[
        *delete_cluster_states(
            prefix="",
            scope="cluster",
            catch=FAILURE.catch,
            keep_etcd_volumes={"keepEtcdVolumes.$": "$.keepEtcdVolumes"},
        ),
        Task(cluster_steps.delete_cluster_record, name="DeleteRecord"),
    ],
    succeeded="Deleted",
    failure=FAILURE,
)
