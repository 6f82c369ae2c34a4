"""`<svc>-plan-repairs`: PlanRepairs every two minutes, which starts the automatic repairs that
are due (`management.autoRepair`). A member must stay unhealthy for 3 minutes at least before it
is repaired, so a finer rate would only cost state transitions."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

SCHEDULE = events.Schedule.rate(cdk.Duration.minutes(2))


class AutoRepairSchedule(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, service: str, machine: sfn.IStateMachine) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "Rule",
            rule_name=f"{service}-plan-repairs",
            description=f"kubestep {service}: start the automatic repairs of unhealthy replicas and nodes",
            schedule=SCHEDULE,
            # A late check is worth nothing: the next one comes two minutes later.
            targets=[targets.SfnStateMachine(machine, retry_attempts=1, max_event_age=cdk.Duration.minutes(2))],
        )
