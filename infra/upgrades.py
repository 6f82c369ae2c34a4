"""Scheduled upgrades: the EventBridge rule that fires PlanUpgrades on `upgrades.plannerSchedule`,
and the role EventBridge Scheduler assumes to start one-off upgrades (`upgrade --at`)."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.permissions import PermissionContext, scheduler_role_statements


class ScheduledUpgrades(Construct):
    """Made before the functions (the API hands the Scheduler role's ARN to each schedule); the
    planner rule is added once the state machines exist (`add_planner`)."""

    def __init__(self, scope: Construct, construct_id: str, *, context: PermissionContext) -> None:
        super().__init__(scope, construct_id)
        self.service = svc = context.service
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            path=context.scheduler_role_path,
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                # The confused-deputy guard AWS documents for Scheduler execution roles.
                conditions={"StringEquals": {"aws:SourceAccount": context.account}},
            ),
            description=f"kubestep {svc}: EventBridge Scheduler starts one-off upgrades (UpdateCluster only)",
        )
        for statement in scheduler_role_statements(context):
            self.scheduler_role.add_to_policy(statement)
        self.planner_rule: events.Rule | None = None

    def add_planner(self, planner: sfn.IStateMachine, planner_schedule: str) -> None:
        self.planner_rule = events.Rule(
            self,
            "PlannerRule",
            rule_name=f"{self.service}-plan-upgrades",
            description=f"kubestep {self.service}: start the automatic upgrades that are due",
            schedule=events.Schedule.expression(planner_schedule),
            # The scheduled event is the input; on AWS the planner takes the time from the
            # execution itself.
            targets=[targets.SfnStateMachine(planner, retry_attempts=2)],
        )
