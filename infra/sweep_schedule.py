"""`<svc>-sweep-orphans`: SweepOrphans once a day, deleting (not a dry run) what it finds older
than its grace period."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

SCHEDULE = events.Schedule.rate(cdk.Duration.days(1))


class SweepSchedule(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, service: str, machine: sfn.IStateMachine) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "Rule",
            rule_name=f"{service}-sweep-orphans",
            description=f"kubestep {service}: delete resources of clusters whose record is gone, once a day",
            schedule=SCHEDULE,
            targets=[
                targets.SfnStateMachine(
                    machine,
                    input=events.RuleTargetInput.from_object({"dryRun": False}),
                    retry_attempts=3,
                    max_event_age=cdk.Duration.hours(6),
                )
            ],
        )
