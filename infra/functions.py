"""The five Lambda functions (docs/contracts.md), one shared code asset, one role each."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.permissions import API, CLUSTER_TASKS, EXECUTION_EVENTS, NETWORK_TASKS, UPGRADE_PLANNER

# The bundled native wheels (pydantic-core, wrapt) are built for exactly this runtime and
# architecture (lambda_asset.py); change all three together.
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64


@dataclass(frozen=True)
class FunctionSpec:
    key: str
    suffix: str
    handler: str
    timeout: cdk.Duration
    description: str
    memory_mib: int = 512  # pydantic + boto3 import faster with more CPU, which scales with memory


FUNCTION_SPECS: tuple[FunctionSpec, ...] = (
    FunctionSpec(
        NETWORK_TASKS,
        "network-tasks",
        "lambdas.network_tasks.handler",
        cdk.Duration.minutes(2),
        "Provisions and deprovisions the management service's network, one idempotent step per call",
    ),
    FunctionSpec(
        CLUSTER_TASKS,
        "cluster-tasks",
        "lambdas.cluster_tasks.handler",
        cdk.Duration.minutes(5),
        "Creates, checks and deletes cluster resources, one idempotent step per call",
    ),
    FunctionSpec(
        EXECUTION_EVENTS,
        "execution-events",
        "lambdas.execution_events.handler",
        cdk.Duration.minutes(1),
        "Releases locks and records outcomes of FAILED / TIMED_OUT / ABORTED executions",
    ),
    FunctionSpec(
        UPGRADE_PLANNER,
        "upgrade-planner",
        "lambdas.upgrade_planner.handler",
        cdk.Duration.minutes(2),
        "Finds the automatic upgrades due now and starts them (PlanUpgrades)",
    ),
    FunctionSpec(
        API,
        "api",
        "lambdas.api.handler",
        # API Gateway stops waiting after 29 s.
        cdk.Duration.seconds(29),
        "The management API (API Gateway proxy integration)",
    ),
)


class Functions(Construct):
    """`<svc>-network-tasks`, `<svc>-cluster-tasks`, `<svc>-execution-events`, `<svc>-upgrade-planner`, `<svc>-api`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        service: str,
        asset_dir: Path,
        environment: dict[str, str],
        statements: dict[str, list[iam.PolicyStatement]],
        log_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        code = lambda_.Code.from_asset(str(asset_dir))
        self.functions: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        for spec in FUNCTION_SPECS:
            name = f"{service}-{spec.suffix}"
            # An explicit log group with retention instead of the `log_retention` prop, which
            # would add a Node.js custom-resource Lambda. Named like Lambda's own default so
            # the console links work; DESTROY so a re-deploy after `cdk destroy` does not
            # collide with a retained group of the same name.
            log_group = logs.LogGroup(
                self,
                f"{spec.key}Logs",
                log_group_name=f"/aws/lambda/{name}",
                retention=logs.RetentionDays.ONE_MONTH,
                removal_policy=cdk.RemovalPolicy.DESTROY,
                encryption_key=log_key,
            )
            # Our own role (instead of the default one with AWSLambdaBasicExecutionRole) so
            # the function may write only to its own log group.
            role = iam.Role(
                self,
                f"{spec.key}Role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"kubestep {service}: {name}",
            )
            log_group.grant_write(role)
            for statement in statements.get(spec.key, []):
                role.add_to_policy(statement)
            function = lambda_.Function(
                self,
                spec.key,
                function_name=name,
                description=spec.description,
                runtime=RUNTIME,
                architecture=ARCHITECTURE,
                handler=spec.handler,
                code=code,
                timeout=spec.timeout,
                memory_size=spec.memory_mib,
                tracing=lambda_.Tracing.ACTIVE,
                log_group=log_group,
                role=role,
                environment=environment,
            )
            self.functions[spec.key] = function
            self.roles[spec.key] = role

    def __getitem__(self, key: str) -> lambda_.Function:
        return self.functions[key]
