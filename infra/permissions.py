"""Least-privilege IAM for the five Lambda functions and the state machines — in one place.

`function_statements()` returns, per function key, the statements its role gets on top of
writing its own log group and X-Ray (added in `functions.py`). Extend the lists here when a
task calls a new AWS action; the IAM check (tests/iam) records every action the functions
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
from kubestep import backups
from kubestep.bootstrap import bundle
from kubestep.naming import TAG_CLUSTER_UID, TAG_RETAINED_BY

NETWORK_TASKS = "NetworkTasks"
CLUSTER_TASKS = "ClusterTasks"
EXECUTION_EVENTS = "ExecutionEvents"
API = "Api"
UPGRADE_PLANNER = "UpgradePlanner"
# The workflow one-off schedules and the planner start (kubestep/upgrades.py).
UPGRADE_WORKFLOW = "UpdateCluster"
# The workflow PlanRepairs starts (kubestep/auto_repair.py).
AUTO_REPAIR_WORKFLOW = "AutoRepair"

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
    # An existing VPC named by the manifest (None: the service's dedicated VPC).
    existing_vpc_id: str | None = None
    existing_subnet_ids: tuple[str, ...] = ()
    # The service's bucket (etcd backups, bootstrap bundles); empty: no statements for it.
    state_bucket_arn: str = ""

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
        when the same service is deployed in two regions of one account), its path per region and
        beside the instance roles' (infra/instance_roles.py role_path), not under it."""
        return f"/kubestep/{self.service}/{self.region}/scheduler/"

    @property
    def scheduler_role_arn(self) -> str:
        """Every role under that path (there is one): what the API may pass to Scheduler."""
        return self.arn("iam", f"role{self.scheduler_role_path}*", region=False)

    @property
    def instance_role_arns(self) -> str:
        """The per-cluster instance roles `gke-<uid>-...` under the service's path: not the
        Scheduler role, which lives under the same path's `scheduler/`."""
        return self.arn("iam", f"role{self.instance_role_path}gke-*", region=False)

    @property
    def instance_profile_arns(self) -> str:
        return self.arn("iam", f"instance-profile{self.instance_role_path}gke-*", region=False)

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
                # A step reads its cluster record and its operation in one BatchGetItem.
                "dynamodb:BatchGetItem",
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


def _tag_on_create(ctx: PermissionContext, sid: str, create_actions: list[str]) -> iam.PolicyStatement:
    """`ec2:CreateTags` only as part of these creates and only with the service's tag in the
    request: tagging an existing resource would make every `aws:ResourceTag` condition below
    bypassable (EC2 User Guide, "Grant permission to tag resources during creation")."""
    return _stmt(
        sid,
        ["ec2:CreateTags"],
        ["*"],
        {
            "StringEquals": {
                "ec2:CreateAction": sorted(a.split(":", 1)[1] for a in create_actions),
                f"aws:RequestTag/{SERVICE_TAG}": ctx.service,
            }
        },
    )


# ------------------------------------------------------------------ NetworkTasks

NETWORK_CREATES = [
    "ec2:CreateVpc",
    "ec2:CreateSubnet",
    "ec2:CreateInternetGateway",
    "ec2:AllocateAddress",
    "ec2:CreateNatGateway",
    "ec2:CreateRouteTable",
    "ec2:CreateVpcEndpoint",
]


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
                # CreateVpcEndpoint's dependent actions (Service Authorization Reference).
                "ec2:DescribeSecurityGroups",
                "ec2:DescribePrefixLists",
                "ec2:DescribeAvailabilityZones",
            ],
            ["*"],  # EC2 Describe* calls do not support resource-level permissions
        ),
        _stmt(
            "NetworkCreate",
            [
                *NETWORK_CREATES,
                "ec2:ModifyVpcAttribute",
                "ec2:ModifySubnetAttribute",
                "ec2:AttachInternetGateway",
                "ec2:CreateRoute",
                "ec2:ReplaceRoute",
                "ec2:AssociateRouteTable",
                "ec2:DisassociateRouteTable",
            ],
            ["*"],  # ids are unknown before creation; creates carry TagSpecifications
        ),
        _tag_on_create(ctx, "NetworkTagOnCreate", NETWORK_CREATES),
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
        *_service_hosted_zone(ctx),
        *_state_table(ctx),
        *_describe_executions(ctx),
        *_manifest(ctx),
    ]


def _service_hosted_zone(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    """The service's private hosted zone (Route 53 has no tag condition keys: zones by ARN)."""
    zones = ctx.arn("route53", "hostedzone/*", region=False, account=False)
    return [
        _stmt(
            "ServiceHostedZoneCreate",
            # A private zone is created with its VPC (Route 53 checks ec2:DescribeVpcs).
            ["route53:CreateHostedZone", "route53:ListHostedZonesByName", "ec2:DescribeVpcs"],
            ["*"],  # no resource-level permissions for these
        ),
        _stmt(
            "ServiceHostedZone",
            [
                "route53:ChangeTagsForResource",
                "route53:ListResourceRecordSets",
                "route53:ChangeResourceRecordSets",
                "route53:DeleteHostedZone",
                "route53:AssociateVPCWithHostedZone",
            ],
            [zones],
        ),
        _stmt(
            "ServiceHostedZoneChanges",
            ["route53:GetChange"],
            [ctx.arn("route53", "change/*", region=False, account=False)],
        ),
    ]


# ------------------------------------------------------------------ ClusterTasks


def _bootstrap_bundles(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    """The launch template steps upload each instance's bootstrap bundle (HeadObject first:
    a bundle's key is its digest, so one already there is not uploaded again); delete and the
    sweep list and delete an incarnation's. Only under `bootstrap/`, and the service key only
    as S3 uses it for those objects (SSE-KMS with the bucket's key)."""
    if not ctx.state_bucket_arn:
        return []
    return [
        _stmt(
            "BootstrapBundles",
            ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            [f"{ctx.state_bucket_arn}/{bundle.PREFIX}/*"],
        ),
        _stmt(
            "ListBootstrapBundles",
            ["s3:ListBucket"],
            [ctx.state_bucket_arn],
            {"StringLike": {"s3:prefix": [f"{bundle.PREFIX}/*"]}},
        ),
        ctx.key.statement(
            ["kms:GenerateDataKey", "kms:Decrypt"],
            conditions={"StringEquals": {"kms:ViaService": f"s3.{ctx.region}.amazonaws.com"}},
            sid="ServiceKeyViaS3",
        ),
    ]


def _cluster_tasks(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    return [
        *_preflight(ctx),
        *_bootstrap_bundles(ctx),
        *_manifest(ctx),
        _stmt("Ec2Describe", CLUSTER_EC2_DESCRIBE, ["*"]),  # EC2 Describe* take no resource-level permissions
        *_security_groups(ctx),
        *_volumes(ctx),
        *_launch_templates_and_instances(ctx),
        *_auto_scaling(ctx),
        *_load_balancers(ctx),
        *_subnet_cluster_tags(ctx),
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
        *_cluster_secrets(ctx),
        # A rollback checks nothing of the cluster's uid is left (kubestep/inventory.py) and
        # SweepOrphans lists what the service made, every kind (kubestep/resources/kinds.py): no
        # list takes a resource-level permission (the Service Authorization Reference lists no
        # resource type for them).
        _stmt(
            "ListTaggedSecretsAndRoles",
            [
                "secretsmanager:ListSecrets",
                "iam:ListRoles",
                "iam:ListInstanceProfiles",
                "sqs:ListQueues",
                "events:ListRules",
            ],
            ["*"],
        ),
        *_termination_queue(ctx),
        *_cancel_cluster_schedules(ctx),
        *_start_auto_repairs(ctx),
        *_delete_backups(ctx),
        *_state_table(ctx),
        *_describe_executions(ctx),
    ]


def _delete_backups(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    """DeleteCluster with deleteBackups deletes every version of one incarnation's backup objects
    (kubestep/backup_deletion.py): listing the versions needs ListBucketVersions on the bucket,
    limited to the backups prefix; deleting a version needs DeleteObjectVersion (a delete marker
    too) on the object. No other function may delete backups, and no instance role."""
    if not ctx.state_bucket_arn:
        return []
    return [
        _stmt(
            "ListEtcdBackupVersions",
            ["s3:ListBucketVersions"],
            [ctx.state_bucket_arn],
            {"StringLike": {"s3:prefix": [f"{backups.PREFIX}/*"]}},
        ),
        _stmt(
            "DeleteEtcdBackupVersions",
            ["s3:DeleteObjectVersion"],
            [f"{ctx.state_bucket_arn}/{backups.PREFIX}/*"],
        ),
    ]


def _start_auto_repairs(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    """PlanRepairs (on ClusterTasks, which reads the instances and target health it decides by)
    starts AutoRepair executions, no other workflow."""
    if AUTO_REPAIR_WORKFLOW not in ctx.workflows:
        return []
    return [_stmt("StartAutoRepairs", ["states:StartExecution"], [ctx.state_machine_arn(AUTO_REPAIR_WORKFLOW)])]


def _cancel_cluster_schedules(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    """DeleteCluster cancels the cluster's pending one-off upgrades, and drift looks for them: it
    reads and deletes the service's schedules only (never creates one, never passes the
    Scheduler role)."""
    return [_stmt("CancelClusterSchedules", ["scheduler:GetSchedule", "scheduler:DeleteSchedule"], ctx.schedule_arns)]


CLUSTER_EC2_DESCRIBE = [
    "ec2:DescribeInstances",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeImages",
    "ec2:DescribeVolumes",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DescribeVpcs",
    "ec2:DescribeKeyPairs",
    # TagSubnets looks before it tags: a re-run finds the subnets tagged.
    "ec2:DescribeTags",
]
CLUSTER_EC2_CREATES = ["ec2:CreateSecurityGroup", "ec2:CreateVolume", "ec2:CreateLaunchTemplate"]


def _request_tagged(ctx: PermissionContext) -> dict[str, Any]:
    return {"StringEquals": {f"aws:RequestTag/{SERVICE_TAG}": ctx.service}}


def _security_groups(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    groups = ctx.arn("ec2", "security-group/*")
    statements = [
        # The create also names the VPC (no tags on that resource): the group's own tags are
        # checked by the tag-on-create statement.
        _stmt("SecurityGroupCreate", ["ec2:CreateSecurityGroup"], ["*"]),
        # RunInstances: the launch template's instance and volume tags, applied when Auto Scaling
        # launches; its API-permissions page makes the group's creator need ec2:CreateTags with
        # ec2:CreateAction = RunInstances ("You are not authorized to use launch template" else).
        _tag_on_create(ctx, "ClusterTagOnCreate", [*CLUSTER_EC2_CREATES, "ec2:RunInstances"]),
        _stmt(
            "SecurityGroupRulesOwned",
            [
                "ec2:AuthorizeSecurityGroupIngress",
                "ec2:AuthorizeSecurityGroupEgress",
                "ec2:RevokeSecurityGroupIngress",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:DeleteSecurityGroup",
            ],
            [groups],
            _owned(ctx),
        ),
        # Security groups the cloud controller manager made for Services carry only
        # kubernetes.io/cluster/<uid>, a tag key IAM cannot match for any uid; DeleteCluster
        # checks that tag before deleting (kubestep/resources/kubernetes_leftovers.py). In an
        # existing VPC, only groups of that VPC.
        _stmt(
            "KubernetesSecurityGroupsDelete",
            ["ec2:DeleteSecurityGroup"],
            [groups],
            {"ArnEquals": {"ec2:Vpc": ctx.arn("ec2", f"vpc/{ctx.existing_vpc_id}")}} if ctx.existing_vpc_id else None,
        ),
    ]
    return statements


def _volumes(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    volumes = ctx.arn("ec2", "volume/*")
    return [
        _stmt("EtcdVolumesCreate", ["ec2:CreateVolume"], [volumes], _request_tagged(ctx)),
        _stmt("EtcdVolumesDeleteOwned", ["ec2:DeleteVolume"], [volumes], _owned(ctx)),
        # A delete that keeps the etcd volumes for a restore marks them so the orphan sweeper
        # leaves them (kubestep/resources/control_plane.py delete_etcd_volumes): that one tag key
        # only (it cannot touch the service tag the other conditions rely on), own volumes only.
        _stmt(
            "EtcdVolumesMarkRetained",
            ["ec2:CreateTags"],
            [volumes],
            {
                **_owned(ctx),
                "ForAllValues:StringEquals": {"aws:TagKeys": [TAG_RETAINED_BY]},
                "Null": {"aws:TagKeys": "false"},
            },
        ),
        # Volumes the EBS CSI driver created for PersistentVolumes: it tags every one of them
        # ebs.csi.aws.com/cluster=true (aws-ebs-csi-driver, pkg/cloud).
        _stmt(
            "KubernetesVolumesDelete",
            ["ec2:DeleteVolume"],
            [volumes],
            {"StringEquals": {"aws:ResourceTag/ebs.csi.aws.com/cluster": "true"}},
        ),
    ]


def _launch_templates_and_instances(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    templates = ctx.arn("ec2", "launch-template/*")
    from_a_template = {"ArnLike": {"ec2:LaunchTemplate": templates}}
    return [
        _stmt("LaunchTemplatesCreate", ["ec2:CreateLaunchTemplate"], [templates], _request_tagged(ctx)),
        _stmt(
            "LaunchTemplatesOwned",
            ["ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate", "ec2:DeleteLaunchTemplate"],
            [templates],
            _owned(ctx),
        ),
        # CreateAutoScalingGroup with a launch template checks that the caller may RunInstances
        # with it: only from one of the service's own launch templates ...
        _stmt(
            "RunInstancesFromOwnLaunchTemplates",
            ["ec2:RunInstances"],
            [templates],
            {**_owned(ctx), **from_a_template},
        ),
        # ... and only through a launch template (the instance, its volumes and interface, the
        # image, groups and subnets it uses).
        _stmt(
            "RunInstancesThroughLaunchTemplates",
            ["ec2:RunInstances"],
            [
                ctx.arn("ec2", "instance/*"),
                ctx.arn("ec2", "volume/*"),
                ctx.arn("ec2", "network-interface/*"),
                ctx.arn("ec2", "security-group/*"),
                ctx.arn("ec2", "subnet/*"),
                ctx.arn("ec2", "image/*", account=False),
            ],
            from_a_template,
        ),
        _stmt("InstancesTerminateOwned", ["ec2:TerminateInstances"], [ctx.arn("ec2", "instance/*")], _owned(ctx)),
        _only_own_clusters_profiles(ctx),
    ]


def _only_own_clusters_profiles(ctx: PermissionContext) -> iam.PolicyStatement:
    """A cluster's instance profile only for that cluster's instances: no launch of an instance
    whose profile is one of the service's `gke-<uid>-*` profiles of another uid than the launch's
    own `gke:cluster-uid` tag (the launch template's tags are the launch's request tags).

    Why here, on RunInstances: iam:PassRole's request context names the role and the receiving
    service only (`iam:PassedToService`, `iam:AssociatedResourceArn`: the instance, unknown before
    launch), never the launch template or group, and ec2:CreateLaunchTemplate checks neither the
    profile nor PassRole. RunInstances, which Auto Scaling authorizes as the group's creator, has
    both the instance's `ec2:InstanceProfile` and its request tags. A Deny, so that a launch
    without the uid tag (the policy variable then unresolved, the statement void) still works."""
    own_uid = f"${{aws:RequestTag/{TAG_CLUSTER_UID}}}"
    return iam.PolicyStatement(
        sid="InstanceProfilesOnlyOfTheLaunchesCluster",
        effect=iam.Effect.DENY,
        actions=["ec2:RunInstances"],
        resources=[ctx.arn("ec2", "instance/*")],
        conditions={
            "ArnLike": {"ec2:InstanceProfile": ctx.instance_profile_arns},
            "ArnNotLike": {
                "ec2:InstanceProfile": ctx.arn(
                    "iam", f"instance-profile{ctx.instance_role_path}gke-{own_uid}-*", region=False
                )
            },
        },
    )


def _auto_scaling(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    groups = ctx.arn("autoscaling", "autoScalingGroup:*:autoScalingGroupName/gke-*")
    return [
        _stmt(
            "AutoScalingDescribe",
            [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeInstanceRefreshes",
                "autoscaling:DescribeLifecycleHooks",
                "autoscaling:DescribeTags",
            ],
            ["*"],  # Describe calls take no resource-level permissions
        ),
        _stmt("AutoScalingCreate", ["autoscaling:CreateAutoScalingGroup"], [groups], _request_tagged(ctx)),
        # Tags while a group is created (the request carries the service's tag; a group of another
        # kubestep service keeps its own) ...
        _stmt(
            "AutoScalingTagOnCreate",
            ["autoscaling:CreateOrUpdateTags"],
            [groups],
            {
                **_request_tagged(ctx),
                "StringEqualsIfExists": {f"aws:ResourceTag/{SERVICE_TAG}": ctx.service},
            },
        ),
        # ... and later tags (gke:spec) on the service's own groups, never its ownership tag.
        _stmt(
            "AutoScalingOwned",
            [
                "autoscaling:CreateOrUpdateTags",
                "autoscaling:DeleteTags",
                "autoscaling:UpdateAutoScalingGroup",
                "autoscaling:DeleteAutoScalingGroup",
                "autoscaling:SetDesiredCapacity",
                "autoscaling:StartInstanceRefresh",
                "autoscaling:TerminateInstanceInAutoScalingGroup",
                "autoscaling:PutLifecycleHook",
                "autoscaling:DeleteLifecycleHook",
                # A drain past its deadline: the roll completes the lifecycle action itself.
                "autoscaling:CompleteLifecycleAction",
                # RepairCluster attaches a recreated target group to the replicas' groups.
                "autoscaling:AttachLoadBalancerTargetGroups",
                "autoscaling:DetachLoadBalancerTargetGroups",
                # AutoRepair marks a silent node Unhealthy: its group drains and replaces it.
                "autoscaling:SetInstanceHealth",
            ],
            [groups],
            {**_owned(ctx), "ForAllValues:StringNotEquals": {"aws:TagKeys": [SERVICE_TAG]}},
        ),
    ]


def _load_balancers(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    # kubestep's API load balancer and target group are named gke-<uid>-cp[-6443] (`net` on AWS;
    # the emulator writes `app` into a network load balancer's ARN, hence the `*`).
    balancers = ctx.arn("elasticloadbalancing", "loadbalancer/*/gke-*")
    target_groups = ctx.arn("elasticloadbalancing", "targetgroup/gke-*")
    listeners = ctx.arn("elasticloadbalancing", "listener/*/gke-*")
    any_balancer = ctx.arn("elasticloadbalancing", "loadbalancer/*")
    any_target_group = ctx.arn("elasticloadbalancing", "targetgroup/*")
    creates = ["CreateLoadBalancer", "CreateTargetGroup", "CreateListener"]
    return [
        _stmt(
            "LoadBalancingDescribe",
            [
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeTargetGroupAttributes",
                "elasticloadbalancing:DescribeLoadBalancerAttributes",
                "elasticloadbalancing:DescribeTargetHealth",
                "elasticloadbalancing:DescribeTags",
            ],
            ["*"],  # Describe calls take no resource-level permissions
        ),
        _stmt(
            "LoadBalancingCreate",
            [f"elasticloadbalancing:{a}" for a in creates],
            [balancers, target_groups],
            _request_tagged(ctx),
        ),
        # Tags only as part of those creates (ELB User Guide, "tag on create":
        # elasticloadbalancing:CreateAction).
        _stmt(
            "LoadBalancingTagOnCreate",
            ["elasticloadbalancing:AddTags"],
            [balancers, target_groups, listeners],
            {
                "StringEquals": {
                    "elasticloadbalancing:CreateAction": creates,
                    f"aws:RequestTag/{SERVICE_TAG}": ctx.service,
                }
            },
        ),
        _stmt(
            "LoadBalancingOwned",
            [
                "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:SetSecurityGroups",
                # RepairCluster points the listener at a recreated target group.
                "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:DeleteLoadBalancer",
                "elasticloadbalancing:DeleteTargetGroup",
                "elasticloadbalancing:DeleteListener",
            ],
            [balancers, target_groups, listeners],
            _owned(ctx),
        ),
        # Service load balancers (and their target groups) the cloud controller manager created:
        # it tags each with kubernetes.io/service-name (cloud-provider-aws, TagNameKubernetesService).
        _stmt(
            "KubernetesLoadBalancersDelete",
            ["elasticloadbalancing:DeleteLoadBalancer", "elasticloadbalancing:DeleteTargetGroup"],
            [any_balancer, any_target_group],
            {"Null": {"aws:ResourceTag/kubernetes.io/service-name": "false"}},
        ),
        # DeleteCluster finds those by their kubernetes.io/cluster/<uid> tag instead of listing
        # every load balancer and target group (GetResources takes no resource-level permissions).
        _stmt("KubernetesLoadBalancersFind", ["tag:GetResources"], ["*"]),
    ]


def _subnet_cluster_tags(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    """`kubernetes.io/cluster/<uid>=shared` on the service's subnets while a cluster lives
    (kubestep/resources/subnet_tags.py): only that tag key, only on the service's subnets
    (its own, tagged, or the existing VPC's, by ARN)."""
    if ctx.existing_subnet_ids:
        resources = [ctx.arn("ec2", f"subnet/{s}") for s in ctx.existing_subnet_ids]
        conditions: dict[str, Any] = {}
    else:
        resources = [ctx.arn("ec2", "subnet/*")]
        conditions = dict(_owned(ctx))
    conditions["ForAllValues:StringLike"] = {"aws:TagKeys": ["kubernetes.io/cluster/*"]}
    conditions["Null"] = {"aws:TagKeys": "false"}
    return [_stmt("SubnetClusterTags", ["ec2:CreateTags", "ec2:DeleteTags"], resources, conditions)]


def _cluster_secrets(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    return [
        _stmt(
            "ClusterSecrets",
            [
                "secretsmanager:CreateSecret",
                "secretsmanager:DescribeSecret",
                "secretsmanager:PutSecretValue",
                # A re-run after the control-plane secret was made reads its public CA back.
                "secretsmanager:GetSecretValue",
            ],
            ctx.secret_arns,
        ),
        # Tags only while creating (with the service's tag); deletes only of the service's secrets.
        _stmt("ClusterSecretsTagOnCreate", ["secretsmanager:TagResource"], ctx.secret_arns, _request_tagged(ctx)),
        _stmt("ClusterSecretsDeleteOwned", ["secretsmanager:DeleteSecret"], ctx.secret_arns, _owned(ctx)),
        # The secrets are encrypted with the service key, used on the caller's behalf by Secrets
        # Manager (GenerateDataKey to write, Decrypt to read).
        ctx.key.statement(
            ["kms:GenerateDataKey", "kms:Decrypt"],
            conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{ctx.region}.amazonaws.com"}},
            sid="ServiceKeyViaSecretsManager",
        ),
        # EBS volumes encrypted with the service key (AWS: "Permissions to use encrypted EBS
        # resources"), only through EC2; the grant only for an AWS resource.
        ctx.key.statement(
            [
                "kms:Decrypt",
                "kms:ReEncryptFrom",
                "kms:ReEncryptTo",
                "kms:GenerateDataKeyWithoutPlaintext",
                "kms:DescribeKey",
            ],
            conditions={"StringEquals": {"kms:ViaService": f"ec2.{ctx.region}.amazonaws.com"}},
            sid="ServiceKeyViaEc2",
        ),
        ctx.key.statement(
            ["kms:CreateGrant"],
            conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
            sid="ServiceKeyGrantsForVolumes",
        ),
    ]


def _termination_queue(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    """Each cluster's node-termination queue and the EventBridge rule feeding it
    (kubestep/resources/termination.py), both named gke-<uid>-node-termination."""
    queues = ctx.arn("sqs", "gke-*-node-termination")
    rules = ctx.arn("events", "rule/gke-*-node-termination")
    return [
        _stmt("TerminationQueueCreate", ["sqs:CreateQueue", "sqs:TagQueue"], [queues], _request_tagged(ctx)),
        _stmt("TerminationQueueRead", ["sqs:GetQueueUrl", "sqs:ListQueueTags", "sqs:GetQueueAttributes"], [queues]),
        _stmt("TerminationQueueDeleteOwned", ["sqs:DeleteQueue"], [queues], _owned(ctx)),
        _stmt("TerminationRuleCreate", ["events:PutRule", "events:TagResource"], [rules], _request_tagged(ctx)),
        _stmt(
            "TerminationRuleRead",
            ["events:ListTagsForResource", "events:ListTargetsByRule", "events:DescribeRule"],
            [rules],
        ),
        _stmt(
            "TerminationRuleOwned",
            ["events:PutTargets", "events:RemoveTargets", "events:DeleteRule"],
            [rules],
            _owned(ctx),
        ),
    ]


def _instance_roles(ctx: PermissionContext) -> list[iam.PolicyStatement]:
    """Each cluster's own instance roles: only under the service's path, only with the service's
    permissions boundary, passed only to EC2."""
    roles = ctx.instance_role_arns
    profiles = ctx.instance_profile_arns
    return [
        _stmt(
            "CreateInstanceRolesWithTheBoundary",
            ["iam:CreateRole", "iam:PutRolePolicy"],
            [roles],
            {"StringEquals": {"iam:PermissionsBoundary": ctx.instance_role_boundary_arn}},
        ),
        # Looking a role up before it exists: IAM cannot know its path yet and authorizes the
        # path-less ARN (role/gke-<uid>-...), read-only.
        _stmt(
            "LookUpInstanceRoles",
            ["iam:GetRole"],
            [roles, ctx.arn("iam", "role/gke-*", region=False)],
        ),
        _stmt(
            "ManageInstanceRoles",
            [
                "iam:TagRole",
                "iam:ListRoleTags",
                "iam:GetRolePolicy",
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
        # Passed to EC2 (launches), or into the role's own instance profile: AddRoleToInstanceProfile
        # needs iam:PassRole too (IAM API Reference) and names no service, hence IfExists.
        _stmt(
            "PassInstanceRolesToEc2",
            ["iam:PassRole"],
            [roles],
            {"StringEqualsIfExists": {"iam:PassedToService": "ec2.amazonaws.com"}},
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
                "ec2:DescribeImages",
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
        CLUSTER_TASKS: _cluster_tasks(ctx),
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
