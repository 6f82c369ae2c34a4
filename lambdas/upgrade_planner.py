"""Task states of PlanUpgrades (the automatic upgrades due now)."""

from lambdas._tasks import dispatcher

handler = dispatcher("UpgradePlanner")
