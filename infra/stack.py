"""`kubestep-<svc>`: the management service, composed from one construct per concern."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.api import ManagementApi
from infra.config import SERVICE_TAG, ServiceConfig
from infra.encryption import ServiceKey
from infra.execution_events import ExecutionEventsRule
from infra.functions import Functions
from infra.instance_roles import InstanceRoles
from infra.nag import acknowledge_findings
from infra.permissions import (
    API,
    CLUSTER_TASKS,
    EXECUTION_EVENTS,
    NETWORK_TASKS,
    PermissionContext,
    function_statements,
    state_machine_statements,
)
from infra.state_machines import StateMachines
from infra.state_table import GSI1, GSI2, StateTable


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
        self.instance_roles = InstanceRoles(
            self, "InstanceRoles", config=config, key=self.key, table_arn=self.state.table_arn
        )

        self.permission_context = context = PermissionContext(
            service=svc,
            partition=self.partition,
            region=self.region,
            account=self.account,
            table_arn=self.state.table_arn,
            table_indexes=(GSI1, GSI2),
            key=self.key,
            control_plane_role_arn=self.instance_roles.control_plane_role.role_arn,
            node_role_arn=self.instance_roles.node_role.role_arn,
            workflows=tuple(workflows),
        )
        environment = {
            "POWERTOOLS_SERVICE_NAME": "kubestep",
            "POWERTOOLS_METRICS_NAMESPACE": "kubestep",
            "KUBESTEP_SERVICE_NAME": svc,
            "KUBESTEP_TABLE_NAME": self.state.table_name,
            "KUBESTEP_MANAGEMENT_SERVICE": config.manifest_json,
            # Built from the name, not from the machines' Refs: the machines reference the
            # functions, so a Ref back would be a cycle.
            "KUBESTEP_STATE_MACHINE_ARN_PREFIX": context.arn("states", f"stateMachine:{svc}-"),
            "KUBESTEP_CONTROL_PLANE_INSTANCE_PROFILE_ARN": self.instance_roles.control_plane_profile_arn,
            "KUBESTEP_NODE_INSTANCE_PROFILE_ARN": self.instance_roles.node_profile_arn,
            "KUBESTEP_KMS_KEY_ARN": self.key.key_arn,
        }
        self.functions = Functions(
            self,
            "Functions",
            service=svc,
            asset_dir=asset_dir,
            environment=environment,
            statements=function_statements(context),
        )

        task_arns = [self.functions[NETWORK_TASKS].function_arn, self.functions[CLUSTER_TASKS].function_arn]
        self.state_machines = StateMachines(
            self,
            "Workflows",
            service=svc,
            workflows=workflows,
            substitutions={
                "NetworkTasksFunctionArn": task_arns[0],
                "ClusterTasksFunctionArn": task_arns[1],
            },
            statements=state_machine_statements(task_arns),
        )
        self.execution_events: ExecutionEventsRule | None = None
        if self.state_machines.machines:  # an event pattern cannot match an empty list
            self.execution_events = ExecutionEventsRule(
                self,
                "ExecutionEvents",
                service=svc,
                state_machine_arns=self.state_machines.arns,
                function=self.functions[EXECUTION_EVENTS],
            )

        self.api = ManagementApi(
            self, "Api", service=svc, function=self.functions[API], access_logging=api_access_logging
        )

        cdk.CfnOutput(self, "ServiceName", value=svc, description="Management service name")
        cdk.CfnOutput(self, "TableName", value=self.state.table_name, description="State table")
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

    def _boundary(self, boundary: str) -> iam.IManagedPolicy:
        if boundary.startswith("arn:"):
            return iam.ManagedPolicy.from_managed_policy_arn(self, "PermissionsBoundary", boundary)
        return iam.ManagedPolicy.from_managed_policy_name(self, "PermissionsBoundary", boundary)
