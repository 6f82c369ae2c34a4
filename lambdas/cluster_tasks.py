"""Task states of CreateCluster and DeleteCluster."""

from kubestep.workflows.cluster import TASKS
from lambdas._tasks import dispatcher

handler = dispatcher(TASKS)
