"""One Standard state machine per `stepfunctions/<Workflow>.asl.json` (`<svc>-<Workflow>`)."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.config import PROJECT_ROOT

STEPFUNCTIONS_DIR = PROJECT_ROOT / "stepfunctions"
ASL_SUFFIX = ".asl.json"


def discover_workflows(directory: Path = STEPFUNCTIONS_DIR) -> dict[str, Path]:
    """Workflow name -> ASL file, sorted by name (stable logical ids and outputs)."""
    found = {p.name[: -len(ASL_SUFFIX)]: p for p in directory.glob(f"*{ASL_SUFFIX}") if p.is_file()}
    return dict(sorted(found.items()))


class StateMachines(Construct):
    """Loads each ASL file as a literal `DefinitionString` plus `DefinitionSubstitutions`.

    `DefinitionBody.from_string` (not `from_file`, which becomes an S3 location) keeps the
    definition in the template, where cfn-lint validates it (E3601) and the embedded
    emulator can read it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        service: str,
        workflows: dict[str, Path],
        substitutions: dict[str, str],
        statements: list[iam.PolicyStatement],
        log_key: kms.IKey | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.machines: dict[str, sfn.StateMachine] = {}
        for workflow, path in workflows.items():
            name = f"{service}-{workflow}"
            log_group = logs.LogGroup(
                self,
                f"{workflow}Logs",
                # /aws/vendedlogs/ keeps the CloudWatch Logs resource policy small (AWS
                # recommends this prefix for vended logs).
                log_group_name=f"/aws/vendedlogs/states/{name}",
                retention=logs.RetentionDays.ONE_MONTH,
                removal_policy=cdk.RemovalPolicy.DESTROY,
                encryption_key=log_key,
            )
            machine = sfn.StateMachine(
                self,
                workflow,
                state_machine_name=name,
                state_machine_type=sfn.StateMachineType.STANDARD,
                definition_body=sfn.DefinitionBody.from_string(path.read_text()),
                definition_substitutions=substitutions,
                # Every state's events, but never inputs/outputs: the console and the logs
                # are readable by more people than the table.
                logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
                tracing_enabled=True,
            )
            for statement in statements:
                machine.add_to_role_policy(statement)
            self.machines[workflow] = machine

    @property
    def arns(self) -> list[str]:
        return [m.state_machine_arn for m in self.machines.values()]
