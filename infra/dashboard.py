"""The management service's CloudWatch dashboard `kubestep-<svc>`: what its operations and
workflows do (the Powertools metrics the API and task functions emit), each state machine's
executions, the functions' errors and throttles, and the API's errors and latency.

The Powertools metrics are in the namespace `POWERTOOLS_METRICS_NAMESPACE` with the dimension
`service` = `POWERTOOLS_SERVICE_NAME` (Powertools adds it to every metric it flushes)."""

from __future__ import annotations

from collections.abc import Mapping

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

PERIOD = cdk.Duration.minutes(5)
WIDTH = 12  # two graphs a row (the grid is 24 wide)
HEIGHT = 6
# What kubestep's code emits (kubestep/api/app.py, lambdas/_tasks.py).
OPERATION_METRICS = ("OperationStarted",)
STEP_METRICS = ("StepSucceeded", "StepPending", "StepFailed", "StepCrashed")


class OperationsDashboard(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        service: str,
        environment: Mapping[str, str],
        functions: Mapping[str, lambda_.IFunction],
        state_machines: Mapping[str, sfn.IStateMachine],
        api: apigw.RestApi,
    ) -> None:
        super().__init__(scope, construct_id)
        namespace = environment["POWERTOOLS_METRICS_NAMESPACE"]
        dimensions = {"service": environment["POWERTOOLS_SERVICE_NAME"]}

        def powertools(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=namespace,
                metric_name=name,
                dimensions_map=dimensions,
                statistic=cloudwatch.Stats.SUM,
                period=PERIOD,
                label=name,
            )

        def per_machine(title: str, metric: str, statistic: str = cloudwatch.Stats.SUM) -> cloudwatch.GraphWidget:
            return graph(
                title,
                [
                    machine.metric(metric, statistic=statistic, period=PERIOD, label=workflow)
                    for workflow, machine in sorted(state_machines.items())
                ],
            )

        def per_function(title: str, metric: str, statistic: str = cloudwatch.Stats.SUM) -> cloudwatch.GraphWidget:
            return graph(
                title,
                [
                    function.metric(metric, statistic=statistic, period=PERIOD, label=key)
                    for key, function in sorted(functions.items())
                ],
            )

        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=f"kubestep-{service}",
            default_interval=cdk.Duration.hours(3),
        )
        self.dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown=f"# kubestep management service `{service}`\n"
                "Operations started through the API, workflow steps (Powertools metrics, namespace "
                f"`{namespace}`), executions per workflow, the functions and the API. Per cluster: "
                "`kubestep dashboard` and `kubestep diagnose snapshot CLUSTER`.",
                width=24,
                height=2,
            )
        )
        self.dashboard.add_widgets(
            graph("Operations started (API)", [powertools(name) for name in OPERATION_METRICS]),
            graph("Workflow steps", [powertools(name) for name in STEP_METRICS]),
        )
        self.dashboard.add_widgets(
            per_machine("Executions started", "ExecutionsStarted"),
            per_machine("Executions failed", "ExecutionsFailed"),
        )
        self.dashboard.add_widgets(
            per_machine("Executions timed out", "ExecutionsTimedOut"),
            per_machine("Execution time (p90, ms)", "ExecutionTime", cloudwatch.Stats.p(90)),
        )
        self.dashboard.add_widgets(
            per_function("Lambda errors", "Errors"),
            per_function("Lambda throttles", "Throttles"),
        )
        self.dashboard.add_widgets(
            graph(
                "API requests and errors",
                [
                    api.metric_count(period=PERIOD, label="requests"),
                    api.metric_client_error(period=PERIOD, label="4XX"),
                    api.metric_server_error(period=PERIOD, label="5XX"),
                ],
            ),
            graph(
                "API latency (ms)",
                [
                    api.metric_latency(period=PERIOD, statistic=cloudwatch.Stats.p(50), label="p50"),
                    api.metric_latency(period=PERIOD, statistic=cloudwatch.Stats.p(99), label="p99"),
                ],
            ),
        )

    @property
    def dashboard_name(self) -> str:
        return self.dashboard.dashboard_name


def graph(title: str, metrics: list[cloudwatch.IMetric]) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(title=title, left=metrics, width=WIDTH, height=HEIGHT)
