"""Task states of the cluster workflows (CreateCluster, DeleteCluster, …)."""

from lambdas._tasks import dispatcher

handler = dispatcher("ClusterTasks")
