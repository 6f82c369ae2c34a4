"""`<svc>-execution-status`: executions that ended without running their own `Catch`.

StopExecution and timeouts skip `Catch`, so this rule lets the execution-events function
release the cluster lock and record the outcome (else the cluster would stay locked).
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

ENDED_BADLY = ["FAILED", "TIMED_OUT", "ABORTED"]


class ExecutionEventsRule(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        service: str,
        state_machine_arns: list[str],
        function: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        self.rule = events.Rule(
            self,
            "Rule",
            rule_name=f"{service}-execution-status",
            description=f"kubestep {service}: release locks of failed, timed-out or aborted executions",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={"status": ENDED_BADLY, "stateMachineArn": state_machine_arns},
            ),
            targets=[
                targets.LambdaFunction(
                    function,
                    # A stuck lock blocks the cluster until its expiry: keep retrying for a day.
                    retry_attempts=185,
                    max_event_age=cdk.Duration.hours(24),
                )
            ],
        )
