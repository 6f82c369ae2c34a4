"""DeleteCluster: every AWS resource the cluster owns and its pending one-off upgrades, in the
delete order of `kubestep.resources.kinds`, its etcd backups when asked, then its records (its
events stay, and its backups unless deleted)."""

from __future__ import annotations

from datetime import timedelta

from kubestep.flow.asl import Task
from kubestep.resources import backups
from kubestep.workflows import cluster_steps
from kubestep.workflows.envelope import Lock, Validation, cluster_operation, recorded_failure
from kubestep.workflows.fragments import delete_cluster_states

FAILURE = recorded_failure("DeleteFailed")

WORKFLOW = cluster_operation(
    name="DeleteCluster",
    module=__name__,
    comment="Delete a cluster and every AWS resource it owns, including what Kubernetes created under "
    "kubernetes.io/cluster/<uid>; its etcd backups only with deleteBackups. "
    "Input: {clusterName, keepEtcdVolumes, deleteBackups}.",
    timeout=timedelta(hours=2),
    validation=Validation(
        cluster_steps.validate_delete_request, fields=("clusterName", "keepEtcdVolumes", "deleteBackups")
    ),
    lock=Lock(cluster_steps.acquire_delete_lock, holds=("uid",)),
    body=[
        *delete_cluster_states(
            prefix="",
            scope="cluster",
            catch=FAILURE.catch,
            keep_etcd_volumes={"keepEtcdVolumes.$": "$.keepEtcdVolumes"},
        ),
        Task(
            backups.delete_cluster_backups,
            name="DeleteBackups",
            comment="Only with deleteBackups: every version of the incarnation's backup objects, then their records.",
            args={"deleteBackups.$": "$.deleteBackups"},
            catch=FAILURE.catch,
        ),
        Task(cluster_steps.delete_cluster_record, name="DeleteRecord"),
    ],
    succeeded="Deleted",
    failure=FAILURE,
)
