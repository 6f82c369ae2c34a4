"""Task states of ProvisionNetwork and DeprovisionNetwork."""

from lambdas._tasks import dispatcher

handler = dispatcher("NetworkTasks")
