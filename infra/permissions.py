"""Least-privilege IAM for the four Lambda functions and the state machines — in one place.

`function_statements()` returns, per function key, the statements its role gets on top of
writing its own log group and X-Ray (added in `functions.py`). Extend the lists here when a
task calls a new AWS action; the IAM check (DESIGN §8) records every action the functions
call in the workflow tests and asserts the synthesized policies grant it.

Conventions:
- Resources are ARNs built from names (not Refs) where a Ref would make a cycle: the state
  machines reference the task functions, so the functions must not reference the machines.
- Destructive EC2 / Auto Scaling actions on resources only kubestep creates are conditioned on
  the tag `gke:management-service=<svc>` (`_owned()`), which kubestep puts in the
  `TagSpecifications` of every create call. Resources Kubernetes creates under
  `kubernetes.io/cluster/<uid>` (service load balancers, CSI volumes, their security groups)
  do not carry it, and DeleteCluster removes them, so those actions stay unconditioned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import aws_iam as iam

from infra.config import SERVICE_TAG
from infra.encryption import ServiceKey

NETWORK_TASKS = "NetworkTasks"
CLUSTER_TASKS = "ClusterTasks"
EXECUTION_EVENTS = "ExecutionEvents"
API = "Api"
UPGRADE_PLANNER = "UpgradePlanner"
FUNCTION_KEYS = (NETWORK_TASKS, CLUSTER_TASKS, EXECUTION_EVENTS, API, UPGRADE_PLANNER)
# The workflow one-off schedules and the planner start (kubestep/upgrades.py).
UPGRADE_WORKFLOW = "UpdateCluster"

# What DynamoDB does with the table's key on the caller's behalf (explicit, no `*` actions).
TABLE_KEY_ACTIONS = [
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:DescribeKey",
]

# Service-linked roles the ClusterTasks function may create (on first use in an account).
SERVICE_LINKED_ROLES = {
    "autoscaling.amazonaws.com": "AWSServiceRoleForAutoScaling",
    "elasticloadbalancing.amazonaws.com": "AWSServiceRoleForElasticLoadBalancing",
}


@dataclass(frozen=True)
class PermissionContext:
    """Names and ARNs the statements need."""

    service: str
    partition: str
    region: str
    account: str
    table_arn: str
    table_indexes: tuple[str, ...]
    key: ServiceKey
    instance_role_path: str
    instance_role_boundary_arn: str
    manifest_parameter_arn: str
    workflows: tuple[str, ...]

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:"
            f"{self.account if account else ''}:{resource}"
        )

    @property
    def table_index_arns(self) -> list[str]:
        return [f"{self.table_arn}/index/{index}" for index in self.table_indexes]

    def service_linked_role_arn(self, service_name: str) -> str:
        return self.arn(
            "iam", f"role/aws-service-role/{service_name}/{SERVICE_LINKED_ROLES[service_name]}", region=False
        )

    @property
    def secret_arns(self) -> list[str]:
        """Cluster secrets are named `gke-<uid>-...` (Secrets Manager appends a random suffix)."""
        return [self.arn("secretsmanager", "secret:gke-*")]

    @property
    def state_machine_arns(self) -> list[str]:
        """This service's machines by exact name: `<svc>-*` would also match a service `<svc>-x`."""
        return [self.arn("states", f"stateMachine:{self.service}-{w}") for w in self.workflows]

    def state_machine_arn(self, workflow: str) -> str:
        return self.arn("states", f"stateMachine:{self.service}-{workflow}")

    @property
    def schedule_arns(self) -> list[str]:
        """One-off upgrade schedules: `<svc>-upgrade-*` in the default group (kubestep/upgrades.py)."""
        return [self.arn("scheduler", f"schedule/default/{self.service}-upgrade-*")]

    @property
    def scheduler_role_path(self) -> str:
        """The Scheduler role's IAM path: its name is CloudFormation's (a fixed name would collide
        when the same service is deployed in two regions of one account)."""
        return f"/kubestep/{self.service}/scheduler/"

    @property
    def scheduler_role_arn(self) -> str:
        """Every role under that path (there is one): what the API may pass to Scheduler."""
        return self.arn("iam", f"role{self.scheduler_role_path}*", region=False)

    @property
    def execution_arns(self) -> list[str]:
        return [self.arn("states", f"execution:{self.service}-{w}:*") for w in self.workflows]


def _stmt(
    sid: str, actions: list[str], resources: list[str], conditions: dict[str, Any] | None = None
) -> iam.PolicyStatement:
    return iam.PolicyStatement(sid=sid, actions=actions, resources=resources, conditions=conditions)


def _owned(ctx: PermissionContext) -> dict[str, Any]:
    return {"StringEquals": {f"aws:ResourceTag/{SERVICE_TAG}": ctx.service}}


# ------------------------------------------------------------------ shared pieces


def _state_table(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    """Read/write the service's table (no Scan: hot paths query by key or through gsi1)."""
    return [
        _stmt(
            "StateTable",
            [
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:Query",
                # TransactWriteItems is no IAM action: a transaction is authorized by the
                # Put/Update/Delete/ConditionCheck actions it contains.
                "dynamodb:BatchWriteItem",
                "dynamodb:ConditionCheckItem",
            ],
            [ctx.table_arn, *ctx.table_index_arns],
        ),
        # The table is encrypted with the customer-managed key; DynamoDB uses it on the
        # caller's behalf, so only through DynamoDB.
        ctx.key.statement(
            TABLE_KEY_ACTIONS,
            conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{ctx.region}.amazonaws.com"}},
            sid="StateTableKeyViaDynamoDB",
        ),
    ]


def _describe_executions(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    """Lock take-over and event handling ask whether the holder's execution still runs."""
    if not ctx.workflows:
        return []
    return [_stmt("DescribeOwnExecutions", ["states:DescribeExecution"], ctx.execution_arns)]


# ------------------------------------------------------------------ per function


def _network_tasks(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    return [
        _stmt(
            "NetworkDescribe",
            [
                "ec2:DescribeVpcs",
                "ec2:DescribeVpcAttribute",
                "ec2:DescribeSubnets",
                "ec2:DescribeInternetGateways",
                "ec2:DescribeAddresses",
                "ec2:DescribeNatGateways",
                "ec2:DescribeRouteTables",
                "ec2:DescribeVpcEndpoints",
                "ec2:DescribePrefixLists",
                "ec2:DescribeAvailabilityZones",
            ],
            ["*"],  # EC2 Describe* calls do not support resource-level permissions
        ),
        _stmt(
            "NetworkCreate",
            [
                "ec2:CreateVpc",
                "ec2:ModifyVpcAttribute",
                "ec2:CreateSubnet",
                "ec2:ModifySubnetAttribute",
                "ec2:CreateInternetGateway",
                "ec2:AttachInternetGateway",
                "ec2:AllocateAddress",
                "ec2:CreateNatGateway",
                "ec2:CreateRouteTable",
                "ec2:CreateRoute",
                "ec2:ReplaceRoute",
                "ec2:AssociateRouteTable",
                "ec2:DisassociateRouteTable",
                "ec2:CreateVpcEndpoint",
                "ec2:CreateTags",
                "ec2:DeleteTags",
            ],
            ["*"],  # ids are unknown before creation; creates carry TagSpecifications
        ),
        _stmt(
            "NetworkDeleteOwned",
            [
                "ec2:DeleteVpc",
                "ec2:DeleteSubnet",
                "ec2:DetachInternetGateway",
                "ec2:DeleteInternetGateway",
                "ec2:ReleaseAddress",
                "ec2:DeleteNatGateway",
                "ec2:DeleteRouteTable",
                "ec2:DeleteVpcEndpoints",
            ],
            ["*"],
            _owned(ctx),
        ),
        _stmt(
            "ServiceHostedZone",
            [
                "route53:CreateHostedZone",
                "route53:ListHostedZonesByName",
                "route53:ChangeTagsForResource",
                "route53:ListResourceRecordSets",
                "route53:ChangeResourceRecordSets",
                "route53:DeleteHostedZone",
                "route53:GetChange",
                # A private hosted zone is created with its VPC association.
                "route53:AssociateVPCWithHostedZone",
                "ec2:DescribeVpcs",
            ],
            ["*"],  # the zone id is unknown before creation
        ),
        *_state_table(ctx),
        *_describe_executions(ctx),
        *_manifest(ctx),
    ]


def _cluster_tasks(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    return [
        *_preflight(ctx),
        *_manifest(ctx),
        _stmt("Ec2Describe", ["ec2:Describe*"], ["*"]),
        _stmt(
            "Ec2Manage",
            [
                "ec2:CreateSecurityGroup",
                "ec2:DeleteSecurityGroup",
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:CreateVolume",
                "ec2:DeleteVolume",  # also CSI volumes Kubernetes created: no kubestep tag
                "ec2:CreateLaunchTemplate",
                "ec2:CreateLaunchTemplateVersion",
                "ec2:ModifyLaunchTemplate",
                "ec2:CreateTags",
                "ec2:DeleteTags",
                # CreateAutoScalingGroup with a launch template checks that the caller may
                # RunInstances with it.
                "ec2:RunInstances",
            ],
            ["*"],
        ),
        _stmt("Ec2DeleteOwned", ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"], ["*"], _owned(ctx)),
        _stmt(
            "AutoScaling",
            [
                "autoscaling:CreateAutoScalingGroup",
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeInstanceRefreshes",
                "autoscaling:DescribeTags",
                # Creating a group with tags needs CreateOrUpdateTags while the group does
                # not exist yet, so no resource-tag condition here.
                "autoscaling:CreateOrUpdateTags",
                "autoscaling:DeleteTags",
            ],
            ["*"],
        ),
        _stmt(
            "AutoScalingOwned",
            [
                "autoscaling:UpdateAutoScalingGroup",
                "autoscaling:DeleteAutoScalingGroup",
                "autoscaling:SetDesiredCapacity",
                "autoscaling:StartInstanceRefresh",
                "autoscaling:TerminateInstanceInAutoScalingGroup",
            ],
            ["*"],
            _owned(ctx),
        ),
        _stmt(
            "LoadBalancing",
            [
                "elasticloadbalancing:CreateLoadBalancer",
                "elasticloadbalancing:DeleteLoadBalancer",
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:CreateTargetGroup",
                "elasticloadbalancing:DeleteTargetGroup",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:CreateListener",
                "elasticloadbalancing:DeleteListener",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:DescribeTargetGroupAttributes",
                "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:DescribeLoadBalancerAttributes",
                "elasticloadbalancing:DescribeTargetHealth",
                "elasticloadbalancing:AddTags",
                "elasticloadbalancing:RemoveTags",
                "elasticloadbalancing:DescribeTags",
                "elasticloadbalancing:SetSecurityGroups",
            ],
            ["*"],  # kubestep's NLBs and the service load balancers Kubernetes created
        ),
        _stmt(
            "DrainLifecycleHooks",
            ["autoscaling:PutLifecycleHook", "autoscaling:DescribeLifecycleHooks"],
            ["*"],
            _owned(ctx),
        ),
        # Each cluster's node-termination queue and the rule that feeds it the node pools'
        # termination lifecycle events (kubestep/resources/termination.py), by name.
        _stmt(
            "NodeTerminationQueues",
            [
                "sqs:CreateQueue",
                "sqs:GetQueueUrl",
                "sqs:GetQueueAttributes",
                "sqs:SetQueueAttributes",
                "sqs:TagQueue",
                "sqs:ListQueueTags",
                "sqs:DeleteQueue",
                # A drain that never completes: the roll completes the lifecycle action itself.
            ],
            [ctx.arn("sqs", "gke-*-node-termination")],
        ),
        _stmt(
            "NodeTerminationRules",
            [
                "events:PutRule",
                "events:DescribeRule",
                "events:PutTargets",
                "events:ListTargetsByRule",
                "events:RemoveTargets",
                "events:DeleteRule",
                "events:TagResource",
                "events:ListTagsForResource",
            ],
            [ctx.arn("events", "rule/gke-*-node-termination")],
        ),
        _stmt("CompleteDrains", ["autoscaling:CompleteLifecycleAction"], ["*"], _owned(ctx)),
        # A rollback checks that nothing of the cluster's uid is left (kubestep/inventory.py);
        # ListSecrets takes no resource-level permission.
        _stmt("FindLeftovers", ["secretsmanager:ListSecrets"], ["*"]),
        *_instance_roles(ctx),
        _stmt(
            "UbuntuImages",
            ["ssm:GetParameter"],
            # Canonical's public parameters (kubestep/resources/images.py): no account in the ARN.
            [ctx.arn("ssm", "parameter/aws/service/canonical/ubuntu/*", account=False)],
        ),
        _stmt(
            "ReplicaDnsRecords",
            ["route53:ListResourceRecordSets", "route53:ChangeResourceRecordSets"],
            [ctx.arn("route53", "hostedzone/*", region=False, account=False)],
        ),
        _stmt(
            "ServiceLinkedRoles",
            ["iam:CreateServiceLinkedRole"],
            [ctx.service_linked_role_arn(name) for name in SERVICE_LINKED_ROLES],
            {"StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED_ROLES)}},
        ),
        _stmt(
            "ClusterSecrets",
            [
                "secretsmanager:CreateSecret",
                "secretsmanager:DeleteSecret",
                "secretsmanager:DescribeSecret",
                "secretsmanager:TagResource",
                "secretsmanager:PutSecretValue",
                # A re-run after the control-plane secret was made reads its public CA back.
                "secretsmanager:GetSecretValue",
            ],
            ctx.secret_arns,
        ),
        # Secrets and EBS volumes (CreateVolume / launches with the default key). EBS also
        # needs ReEncrypt (AWS: "Permissions to use encrypted EBS resources").
        ctx.key.statement(
            [
                "kms:Encrypt",
                "kms:Decrypt",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
                "kms:GenerateDataKey",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:DescribeKey",
                "kms:CreateGrant",
            ],
            sid="ServiceKey",
        ),
        *_state_table(ctx),
        *_describe_executions(ctx),
    ]


def _instance_roles(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    """Each cluster's own instance roles: only under the service's path, only with the service's
    permissions boundary, passed only to EC2."""
    roles = ctx.arn("iam", f"role{ctx.instance_role_path}*", region=False)
    profiles = ctx.arn("iam", f"instance-profile{ctx.instance_role_path}*", region=False)
    return [
        _stmt(
            "CreateInstanceRolesWithTheBoundary",
            ["iam:CreateRole", "iam:PutRolePolicy"],
            [roles],
            {"StringEquals": {"iam:PermissionsBoundary": ctx.instance_role_boundary_arn}},
        ),
        _stmt(
            "ManageInstanceRoles",
            [
                "iam:GetRole",
                "iam:TagRole",
                "iam:ListRoleTags",
                "iam:ListRolePolicies",
                "iam:ListAttachedRolePolicies",
                "iam:DeleteRolePolicy",
                "iam:DetachRolePolicy",
                "iam:DeleteRole",
            ],
            [roles],
        ),
        _stmt(
            "ManageInstanceProfiles",
            [
                "iam:CreateInstanceProfile",
                "iam:GetInstanceProfile",
                "iam:TagInstanceProfile",
                "iam:AddRoleToInstanceProfile",
                "iam:RemoveRoleFromInstanceProfile",
                "iam:DeleteInstanceProfile",
            ],
            [profiles],
        ),
        _stmt(
            "PassInstanceRolesToEc2",
            ["iam:PassRole"],
            [roles],
            {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        ),
    ]


def _manifest(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    return [_stmt("ManagementServiceManifest", ["ssm:GetParameter"], [ctx.manifest_parameter_arn])]


def _preflight(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    """Looking up what a request names before anything is created (kubestep/preflight.py)."""
    return [
        _stmt(
            "PreflightDescribe",
            [
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeKeyPairs",
                "ec2:DescribeSubnets",
                "kms:DescribeKey",
                "servicequotas:GetServiceQuota",
            ],
            ["*"],
        ),
        _stmt(
            "PreflightInstanceProfiles",
            ["iam:GetInstanceProfile"],
            [ctx.arn("iam", "instance-profile/*", region=False)],
        ),
    ]


def _execution_events(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    return [*_state_table(ctx), *_describe_executions(ctx), *_manifest(ctx)]


def _api(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    statements = [*_state_table(ctx), *_describe_executions(ctx), *_preflight(ctx), *_manifest(ctx)]
    statements += _one_off_schedules(ctx)
    if ctx.workflows:
        statements.append(_stmt("StartOwnExecutions", ["states:StartExecution"], ctx.state_machine_arns))
        # Operations: progress read from the execution's history; cancel stops the execution.
        statements.append(
            _stmt(
                "FollowAndCancelOwnExecutions",
                ["states:GetExecutionHistory", "states:StopExecution"],
                ctx.execution_arns,
            )
        )
    return statements


# ------------------------------------------------------------------ issue 11: RepairCluster, SweepOrphans


def _repair_and_sweep(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    """What RepairCluster adds to the create's calls (a recreated target group attached to the
    replicas' groups, the listener pointed at it) and what SweepOrphans lists."""
    return [
        _stmt(
            "RepairGroupTargetGroups",
            ["autoscaling:AttachLoadBalancerTargetGroups", "autoscaling:DetachLoadBalancerTargetGroups"],
            ["*"],
            _owned(ctx),
        ),
        _stmt(
            "RepairListener",
            ["elasticloadbalancing:ModifyListener"],
            # The control plane's NLB is named gke-<uid>-cp.
            [ctx.arn("elasticloadbalancing", "listener/net/gke-*")],
        ),
        # Neither action supports resource-level permissions (the IAM Service Authorization
        # Reference lists no resource type for them): "*" is the only resource they accept.
        _stmt("SweepListSecrets", ["secretsmanager:ListSecrets"], ["*"]),
        _stmt("SweepListInstanceRoles", ["iam:ListRoles"], ["*"]),
    ]


def _one_off_schedules(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    """`upgrade --at`: create, read and cancel the service's one-time schedules, handing them the
    scheduler role (which may only start UpdateCluster)."""
    return [
        _stmt(
            "OneOffUpgradeSchedules",
            ["scheduler:CreateSchedule", "scheduler:GetSchedule", "scheduler:DeleteSchedule"],
            ctx.schedule_arns,
        ),
        _stmt(
            "PassSchedulerRole",
            ["iam:PassRole"],
            [ctx.scheduler_role_arn],
            {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}},
        ),
    ]


def _upgrade_planner(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    """The planner reads the table and starts UpdateCluster executions, nothing else."""
    statements = [*_state_table(ctx), *_describe_executions(ctx), *_manifest(ctx)]
    if UPGRADE_WORKFLOW in ctx.workflows:
        statements.append(_stmt("StartUpgrades", ["states:StartExecution"], [ctx.state_machine_arn(UPGRADE_WORKFLOW)]))
    return statements


def scheduler_role_statements(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    """The role EventBridge Scheduler assumes for one-off upgrades: start UpdateCluster only."""
    return [_stmt("StartScheduledUpgrades", ["states:StartExecution"], [ctx.state_machine_arn(UPGRADE_WORKFLOW)])]


def function_statements(ctx: PermissionContext) -> dict[str, list[iam.PolicyStatement]]:
    """Function key -> the statements of its role (beyond logs and X-Ray)."""
    return {
        NETWORK_TASKS: _network_tasks(ctx),
        CLUSTER_TASKS: [*_cluster_tasks(ctx), *_repair_and_sweep(ctx)],
        EXECUTION_EVENTS: _execution_events(ctx),
        API: _api(ctx),
        UPGRADE_PLANNER: _upgrade_planner(ctx),
    }


def state_machine_statements(task_function_arns: list[str]) -> list[iam.PolicyStatement]:
    """What every state machine's role may do besides logging and X-Ray: invoke the task functions."""
    return [
        _stmt(
            "InvokeTaskFunctions",
            ["lambda:InvokeFunction"],
            # Unqualified ARNs: the ASL files invoke `${...FunctionArn}` as substituted.
            task_function_arns,
        )
    ]
