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
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        context: PermissionContext,
        planner: sfn.IStateMachine | None,
        planner_schedule: str,
    ) -> None:
        super().__init__(scope, construct_id)
        svc = context.service
        # Named (not generated): the API passes it to Scheduler by an ARN built from the name,
        # and the API's PassRole statement names it the same way.
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            role_name=f"{svc}-upgrade-scheduler",
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
        if planner is not None:
            self.planner_rule = events.Rule(
                self,
                "PlannerRule",
                rule_name=f"{svc}-plan-upgrades",
                description=f"kubestep {svc}: start the automatic upgrades that are due",
                schedule=events.Schedule.expression(planner_schedule),
                # The scheduled event is the input; on AWS the planner takes the time from the
                # execution itself.
                targets=[targets.SfnStateMachine(planner, retry_attempts=2)],
            )
