"""Task states of ProvisionNetwork and DeprovisionNetwork."""

from kubestep.workflows.network import TASKS
from lambdas._tasks import dispatcher

handler = dispatcher(TASKS)
