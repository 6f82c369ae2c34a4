"""`kubestep-<svc>`: the management service, composed from one construct per concern."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra.api import ManagementApi
from infra.auto_repair import AutoRepairSchedule
from infra.backups import BackupBucket
from infra.config import SERVICE_TAG, ServiceConfig
from infra.dashboard import OperationsDashboard
from infra.encryption import ServiceKey
from infra.execution_events import ExecutionEventsRule
from infra.functions import Functions
from infra.instance_roles import InstanceRoleBoundary, role_path
from infra.nag import acknowledge_findings
from infra.permissions import (
    API,
    CLUSTER_TASKS,
    EXECUTION_EVENTS,
    NETWORK_TASKS,
    UPGRADE_PLANNER,
    PermissionContext,
    function_statements,
    state_machine_statements,
)
from infra.state_machines import StateMachines
from infra.state_table import GSI1, GSI2, StateTable
from infra.sweep_schedule import SweepSchedule
from infra.upgrades import ScheduledUpgrades


class ManagementServiceStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        *,
        config: ServiceConfig,
        asset_dir: Path,
        workflows: dict[str, Path],
        api_access_logging: bool = False,
        env: cdk.Environment | None = None,
    ) -> None:
        super().__init__(
            scope,
            config.stack_name,
            stack_name=config.stack_name,
            env=env,
            description=f"kubestep management service {config.name}: Kubernetes clusters on AWS",
        )
        svc = config.name

        self.key = ServiceKey(self, "Encryption", config=config)
        self.state = StateTable(self, "State", table_name=config.table_name, key=self.key.key)
        self.backups = BackupBucket(self, "Backups", key=self.key.key)
        self.instance_role_boundary = InstanceRoleBoundary(
            self,
            "InstanceRoleBoundary",
            config=config,
            table_arn=self.state.table_arn,
            backup_bucket_arn=self.backups.bucket_arn,
        )
        boundary_arn = self._boundary_arn(config.permissions_boundary) or self.instance_role_boundary.arn
        # The manifest in an SSM parameter: a Lambda environment holds 4 KB at most.
        self.manifest_parameter = ssm.StringParameter(
            self,
            "ManagementServiceManifest",
            parameter_name=f"/kubestep/{svc}/management-service",
            description=f"kubestep {svc}: the AWSManagementService manifest the functions read",
            string_value=config.manifest_json,
            tier=ssm.ParameterTier.ADVANCED if len(config.manifest_json) > 4096 else ssm.ParameterTier.STANDARD,
        )

        existing = config.manifest.get("spec", {}).get("existingVPC") or {}
        self.permission_context = context = PermissionContext(
            service=svc,
            partition=self.partition,
            region=self.region,
            account=self.account,
            table_arn=self.state.table_arn,
            table_indexes=(GSI1, GSI2),
            key=self.key,
            instance_role_path=role_path(svc, self.region),
            instance_role_boundary_arn=boundary_arn,
            manifest_parameter_arn=self.manifest_parameter.parameter_arn,
            workflows=tuple(workflows),
            existing_vpc_id=existing.get("vpcID"),
            existing_subnet_ids=tuple(existing.get("subnetIDs", ())),
            state_bucket_arn=self.backups.bucket_arn,
        )
        environment = {
            "POWERTOOLS_SERVICE_NAME": "kubestep",
            "POWERTOOLS_METRICS_NAMESPACE": "kubestep",
            "KUBESTEP_SERVICE_NAME": svc,
            "KUBESTEP_TABLE_NAME": self.state.table_name,
            "KUBESTEP_TABLE_ARN": self.state.table_arn,
            "KUBESTEP_MANAGEMENT_SERVICE_PARAMETER": self.manifest_parameter.parameter_name,
            # Built from the name, not from the machines' Refs: the machines reference the
            # functions, so a Ref back would be a cycle.
            "KUBESTEP_STATE_MACHINE_ARN_PREFIX": context.arn("states", f"stateMachine:{svc}-"),
            "KUBESTEP_INSTANCE_ROLE_PATH": role_path(svc, self.region),
            "KUBESTEP_INSTANCE_ROLE_BOUNDARY_ARN": boundary_arn,
            "KUBESTEP_KMS_KEY_ARN": self.key.key_arn,
            "KUBESTEP_BACKUP_BUCKET": self.backups.bucket_name,
        }
        self.upgrades = ScheduledUpgrades(self, "Upgrades", context=context)
        environment["KUBESTEP_SCHEDULER_ROLE_ARN"] = self.upgrades.scheduler_role.role_arn
        self.functions = Functions(
            self,
            "Functions",
            service=svc,
            asset_dir=asset_dir,
            environment=environment,
            statements=function_statements(context),
            log_key=self.key.log_key,
        )

        task_functions = (NETWORK_TASKS, CLUSTER_TASKS, UPGRADE_PLANNER)
        task_arns = [self.functions[key].function_arn for key in task_functions]
        self.state_machines = StateMachines(
            self,
            "Workflows",
            service=svc,
            workflows=workflows,
            substitutions={f"{key}FunctionArn": arn for key, arn in zip(task_functions, task_arns, strict=True)},
            statements=state_machine_statements(task_arns),
            log_key=self.key.log_key,
        )
        planner = self.state_machines.machines.get("PlanUpgrades")
        if planner is not None:
            self.upgrades.add_planner(planner, config.planner_schedule)
        self.execution_events: ExecutionEventsRule | None = None
        if self.state_machines.machines:  # an event pattern cannot match an empty list
            self.execution_events = ExecutionEventsRule(
                self,
                "ExecutionEvents",
                service=svc,
                state_machine_arns=self.state_machines.arns,
                function=self.functions[EXECUTION_EVENTS],
            )

        # The orphan sweeper runs daily: what a failed delete left behind is freed without anyone asking.
        sweeper = self.state_machines.machines.get("SweepOrphans")
        self.sweep_schedule = SweepSchedule(self, "SweepSchedule", service=svc, machine=sweeper) if sweeper else None
        # Automatic repair: the periodic check of every running cluster's members.
        repairs = self.state_machines.machines.get("PlanRepairs")
        self.auto_repair = (
            AutoRepairSchedule(self, "AutoRepairSchedule", service=svc, machine=repairs) if repairs else None
        )

        self.api = ManagementApi(
            self,
            "Api",
            service=svc,
            function=self.functions[API],
            access_logging=api_access_logging,
            log_key=self.key.log_key,
        )
        self.dashboard = OperationsDashboard(
            self, "Dashboard", service=svc, environment=environment, functions=self.functions.functions,
            state_machines=self.state_machines.machines, api=self.api.rest_api,
        )  # fmt: skip

        cdk.CfnOutput(self, "ServiceName", value=svc, description="Management service name")
        cdk.CfnOutput(self, "TableName", value=self.state.table_name, description="State table")
        cdk.CfnOutput(self, "BackupBucketName", value=self.backups.bucket_name, description="etcd backups")
        cdk.CfnOutput(self, "ApiUrl", value=self.api.url, description="Management API stage URL (SigV4)")
        for workflow, machine in self.state_machines.machines.items():
            cdk.CfnOutput(
                self,
                f"{workflow}StateMachineArn",
                value=machine.state_machine_arn,
                description=f"State machine {svc}-{workflow}",
            )

        # Not on the KMS key: moto's CloudFormation fails on a tagged AWS::KMS::Key (it reads
        # `TagKey`, not `Key`), and the emulator must deploy this very template. Nothing keys
        # on the key's tags; its alias and description name the service.
        untagged = ["AWS::KMS::Key"]
        for key, value in sorted(config.tags.items()):
            cdk.Tags.of(self).add(key, value, exclude_resource_types=untagged)
        cdk.Tags.of(self).add(SERVICE_TAG, svc, exclude_resource_types=untagged)

        if config.permissions_boundary:
            # Every role of the stack, not only the instance roles: organisations that ask
            # for a boundary ask for it on everything a deployment creates.
            iam.PermissionsBoundary.of(self).apply(self._boundary(config.permissions_boundary))

        acknowledge_findings(self)

    def _boundary_arn(self, boundary: str | None) -> str | None:
        """The service's own permissions boundary (manifest `iam.permissionsBoundary`), if any:
        then the per-cluster instance roles get it too."""
        if not boundary:
            return None
        return self._boundary(boundary).managed_policy_arn

    def _boundary(self, boundary: str) -> iam.IManagedPolicy:
        existing = self.node.try_find_child("PermissionsBoundary")
        if existing is not None:
            return existing  # type: ignore[return-value]
        if boundary.startswith("arn:"):
            return iam.ManagedPolicy.from_managed_policy_arn(self, "PermissionsBoundary", boundary)
        return iam.ManagedPolicy.from_managed_policy_name(self, "PermissionsBoundary", boundary)
