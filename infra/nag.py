"""cdk-nag AwsSolutions findings this stack keeps, each acknowledged with its reason.

cdk-nag v3 runs as a CDK policy-validation plugin and fails the synth on any finding that is
not acknowledged (`Validations.of(scope).acknowledge(...)`, the v3 successor of
`NagSuppressions`). IAM5 (wildcard) findings are acknowledged one by one, naming the exact
action or resource, so a new wildcard fails the synth until someone writes down why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
from constructs import IConstruct

from infra.permissions import API, CLUSTER_TASKS, EXECUTION_EVENTS, NETWORK_TASKS, UPGRADE_PLANNER, PermissionContext
from kubestep import backups
from kubestep.bootstrap import bundle

if TYPE_CHECKING:
    from infra.stack import ManagementServiceStack

XRAY = "X-Ray's PutTraceSegments/PutTelemetryRecords (active tracing) take no resource-level permissions"
EC2_NO_RESOURCE_LEVEL = (
    "EC2 Describe* and create calls take no resource-level permissions or act on ids unknown before "
    "creation; destructive calls on kubestep's own resources are conditioned on the "
    "gke:management-service tag"
)
EXECUTIONS = (
    "executions of this service's own state machines (named <svc>-<Workflow>); execution names are "
    "per-operation, so the ARN ends in a wildcard"
)


def nag_text(value: Any) -> str:
    """How cdk-nag writes a resolved value in a finding id (`<Logical.Arn>`, `<AWS::AccountId>`)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Fn::Join":
            separator, parts = arg
            return separator.join(nag_text(part) for part in parts)
        if fn == "Ref":
            return f"<{arg}>"
        if fn == "Fn::GetAtt":
            return f"<{arg[0]}.{arg[1]}>"
    return str(value)


def _ack(scope: IConstruct, finding: str, reason: str) -> None:
    cdk.Validations.of(scope).acknowledge(cdk.Acknowledgment(id=f"AwsSolutions::AwsSolutions-{finding}", reason=reason))


def acknowledge_findings(stack: ManagementServiceStack) -> None:
    ctx = stack.permission_context

    def resource(arn: str) -> str:
        return f"IAM5[Resource::{nag_text(stack.resolve(arn))}]"

    # -- Lambda
    for function in stack.functions.functions.values():
        _ack(
            function,
            "L1",
            "Pinned to python3.13 on purpose: the asset's native wheels (pydantic-core, wrapt) are built for "
            "exactly this runtime and architecture (infra/lambda_asset.py); upgrade both together.",
        )

    roles = stack.functions.roles
    _ack(roles[EXECUTION_EVENTS], "IAM5[Resource::*]", XRAY)
    _ack(roles[UPGRADE_PLANNER], "IAM5[Resource::*]", XRAY)
    _ack(
        roles[API],
        resource(ctx.scheduler_role_arn),
        "PassRole of the one Scheduler role under /kubestep/<svc>/<region>/scheduler/ (its name is "
        "CloudFormation's, so two regions never collide), only to scheduler.amazonaws.com.",
    )
    for schedule in ctx.schedule_arns:
        _ack(
            roles[API],
            resource(schedule),
            "One-off upgrade schedules are named <svc>-upgrade-<random> when a caller asks for an upgrade at a time.",
        )
        _ack(
            roles[CLUSTER_TASKS],
            resource(schedule),
            "DeleteCluster cancels the cluster's pending one-off upgrades, named <svc>-upgrade-<random> when they "
            "were made (DeleteSchedule only).",
        )
    _ack(roles[NETWORK_TASKS], "IAM5[Resource::*]", f"{EC2_NO_RESOURCE_LEVEL}; {XRAY}")
    _ack(
        roles[CLUSTER_TASKS],
        "IAM5[Resource::*]",
        f"{EC2_NO_RESOURCE_LEVEL}; Auto Scaling groups, load balancers and target groups are created with "
        f"names derived from the cluster uid, and DeleteCluster also removes the service load balancers "
        f"Kubernetes created, whose names nobody knows in advance; secretsmanager:ListSecrets and "
        f"iam:ListRoles (a rollback's and the orphan sweeper's searches) take no resource-level permission; {XRAY}",
    )
    _ack(
        roles[CLUSTER_TASKS],
        "IAM5[Action::ec2:Describe*]",
        "Read-only EC2 Describe calls (instances, volumes, network interfaces, launch template versions, "
        "security groups ...) that accept no resource-level permissions anyway.",
    )
    for role in (roles[API], roles[CLUSTER_TASKS]):
        _ack(
            role,
            resource(ctx.arn("iam", "instance-profile/*", region=False)),
            "Read-only GetInstanceProfile on the instance profile a cluster manifest names (any name the "
            "user chose), to refuse a request naming one that does not exist before anything is created.",
        )
    _ack(
        roles[API],
        "IAM5[Resource::*]",
        f"Preflight look-ups (DescribeInstanceTypes, DescribeSecurityGroups, DescribeKeyPairs, DescribeImages, "
        f"DescribeSubnets, "
        f"kms:DescribeKey, servicequotas:GetServiceQuota) of what a request names take no resource-level "
        f"permissions or name resources unknown in advance; {XRAY}",
    )
    for secret in ctx.secret_arns:
        _ack(
            roles[CLUSTER_TASKS],
            resource(secret),
            "Cluster secrets are created per cluster uid as gke-<uid>-...; Secrets Manager appends a random "
            "suffix to every secret ARN.",
        )
    for role in roles.values():
        for execution in ctx.execution_arns:
            _ack(role, resource(execution), EXECUTIONS)
    for statement_resource in stack.key.wildcard_resources:
        for role in roles.values():
            _ack(
                role,
                resource(statement_resource),
                "The manifest names the KMS key by alias; IAM matches aliases only through the "
                "kms:ResourceAliases condition, which every statement on this resource carries.",
            )

    # -- the per-cluster instance roles' permissions boundary, and the tasks that create them
    boundary = stack.instance_role_boundary.policy
    _ack(
        boundary,
        "IAM5[Resource::*]",
        "A permissions boundary caps what any per-cluster instance role may do; the cloud controller manager "
        "and kubelet actions take no resource-level permissions or act on resources created later. Each "
        "role's own inline policy (kubestep/iam_policies.py) names its cluster's resources.",
    )
    for secret in ctx.secret_arns:
        _ack(
            boundary,
            resource(secret),
            "Cluster secrets are named gke-<uid>-...; the boundary also requires the service's tag, each role's "
            "own policy names its two secrets' ARNs.",
        )
    _ack(
        boundary,
        resource(f"{stack.backups.bucket_arn}/{backups.PREFIX}/*"),
        "etcd snapshots under backups/<uid>/, one prefix per cluster incarnation, created after the stack; each "
        "cluster's own policy names its prefix (backups/<uid>/*).",
    )
    bundles = (
        "Bootstrap bundles under bootstrap/<uid>/<sha256>.tar.gz, one prefix per cluster incarnation, created after "
        "the stack; each cluster's own policy names its prefix (read only), the cluster tasks write and delete them."
    )
    _ack(boundary, resource(f"{stack.backups.bucket_arn}/{bundle.PREFIX}/*"), bundles)
    _ack(roles[CLUSTER_TASKS], resource(f"{stack.backups.bucket_arn}/{bundle.PREFIX}/*"), bundles)
    _ack(
        roles[CLUSTER_TASKS],
        resource(f"{stack.backups.bucket_arn}/{backups.PREFIX}/*"),
        "DeleteCluster with deleteBackups deletes every version of one incarnation's snapshots, under "
        "backups/<uid>/ (uids are made after the stack); the function deletes only the prefix of the cluster it "
        "deletes. No other function or role may delete backups.",
    )
    _ack(
        stack.backups.bucket,
        "S1",
        "The backup bucket holds etcd snapshots written only by each cluster's control-plane role under its own "
        "prefix; server access logs would need a second bucket per service. Object-level access is recorded by "
        "CloudTrail data events where the account enables them.",
    )
    for arn in (ctx.instance_role_arns, ctx.instance_profile_arns):
        _ack(
            roles[CLUSTER_TASKS],
            resource(arn),
            "Per-cluster instance roles and profiles gke-<uid>-controlplane/-node under the service's own IAM "
            "path; creation requires the service's permissions boundary, PassRole only to EC2.",
        )
    _ack(
        roles[CLUSTER_TASKS],
        resource(ctx.arn("ssm", "parameter/aws/service/canonical/ubuntu/*", account=False)),
        "Canonical's public SSM parameters naming the current Ubuntu 24.04 image per architecture.",
    )
    for role in (roles[CLUSTER_TASKS], roles[NETWORK_TASKS]):
        _ack(
            role,
            resource(ctx.arn("route53", "hostedzone/*", region=False, account=False)),
            "The service's private hosted zone, created by ProvisionNetwork (its id is unknown at synth); "
            "Route 53 has no tag condition keys.",
        )
    _ack(
        roles[NETWORK_TASKS],
        resource(ctx.arn("route53", "change/*", region=False, account=False)),
        "Route 53 change ids are returned by each record change; GetChange is read-only.",
    )
    for arn, reason in _cluster_task_wildcards(ctx).items():
        _ack(roles[CLUSTER_TASKS], resource(arn), reason)

    # -- Step Functions
    for machine in stack.state_machines.machines.values():
        _ack(
            machine,
            "IAM5[Resource::*]",
            "Vended logs delivery (logs:CreateLogDelivery, PutResourcePolicy, Describe*) and X-Ray tracing "
            "accept no resource-level permissions; CDK adds exactly these for logging level ALL and tracing.",
        )

    # -- API Gateway
    api = stack.api.rest_api
    _ack(
        api,
        "APIG2",
        "Requests are validated by the api function with the same pydantic models the workflows use, "
        "which return field-level errors; an API Gateway model would duplicate them.",
    )
    _ack(
        api,
        "APIG3",
        "IAM (SigV4) authorization on every method and stage throttling (50 rps, burst 100); a WAF web ACL "
        "is left to the operator, as it costs money per ACL and is account policy.",
    )
    _ack(
        api,
        "APIG6",
        "Execution logging needs the account-level API Gateway CloudWatch role (AWS::ApiGateway::Account), a "
        "per-account singleton this stack must not own; the api function logs every request itself.",
    )
    if not stack.api.access_logging:
        _ack(
            api,
            "APIG1",
            "Access logging is opt-in (-c kubestep:apiAccessLogging=true) because it needs the account-level "
            "API Gateway CloudWatch role that this stack must not own; the api function logs each request.",
        )
    _ack(
        api,
        "COG4",
        "The API is for operators and automation with AWS credentials: every method is AWS_IAM (SigV4), "
        "the same identities that may start the state machines directly.",
    )


def _cluster_task_wildcards(ctx: PermissionContext) -> dict[str, str]:
    """ARN patterns of the ClusterTasks role (infra/permissions.py) -> why a wildcard is needed
    and what narrows it."""
    tag = f"conditioned on the tag gke:management-service={ctx.service} (aws:ResourceTag, or aws:RequestTag on create)"
    out = {
        ctx.arn("ec2", "security-group/*"): "Cluster security groups are created per cluster (ids unknown at synth); "
        f"rule changes and deletes are {tag}. Deleting the groups the cloud controller manager made for Services "
        "cannot be tag-conditioned: their only tag, kubernetes.io/cluster/<uid>, embeds the uid in the key; "
        "DeleteCluster checks it before deleting.",
        ctx.arn("ec2", "volume/*"): f"etcd volumes per replica, {tag}; EBS CSI volumes only with their "
        "ebs.csi.aws.com/cluster=true tag; tagging an existing one only with the gke:retained-by key.",
        ctx.arn("ec2", "launch-template/*"): f"Launch templates per replica and node pool, {tag}; RunInstances "
        "(checked by CreateAutoScalingGroup) only from one of them.",
        ctx.arn("ec2", "image/*", account=False): "RunInstances through one of the service's launch templates "
        "(ec2:LaunchTemplate condition): the image its launch template names.",
        ctx.arn("ec2", "instance/*"): f"RunInstances only through the service's launch templates; TerminateInstances "
        f"{tag}.",
        ctx.arn("ec2", "network-interface/*"): "RunInstances only through the service's launch templates.",
        ctx.arn("ec2", "subnet/*"): "RunInstances only through the service's launch templates; the cluster tag "
        "kubernetes.io/cluster/<uid> on the service's own subnets (only that tag key, only subnets "
        f"{tag}).",
        ctx.arn("autoscaling", "autoScalingGroup:*:autoScalingGroupName/gke-*"): "Auto Scaling groups are named "
        f"gke-<uid>-...; the group id in the ARN is random. Creates and changes {tag}; the ownership tag itself "
        "cannot be changed.",
        ctx.arn("elasticloadbalancing", "loadbalancer/*/gke-*"): f"The API load balancer is named gke-<uid>-cp; {tag}.",
        ctx.arn(
            "elasticloadbalancing", "targetgroup/gke-*"
        ): f"The API target group is named gke-<uid>-cp-6443; {tag}.",
        ctx.arn("elasticloadbalancing", "listener/*/gke-*"): f"Listeners of the API load balancer; {tag}.",
        ctx.arn("elasticloadbalancing", "loadbalancer/*"): "Deleting Service load balancers the cloud controller "
        "manager created (unknown names), only those tagged kubernetes.io/service-name.",
        ctx.arn("elasticloadbalancing", "targetgroup/*"): "Deleting the target groups of Service load balancers the "
        "cloud controller manager created, only those tagged kubernetes.io/service-name.",
        ctx.arn("iam", "role/gke-*", region=False): "iam:GetRole only: looking up a cluster's role before it exists "
        "(IAM authorizes the path-less ARN of a role it cannot find).",
        ctx.arn("sqs", "gke-*-node-termination"): "Each cluster's node-termination queue, named "
        f"gke-<uid>-node-termination after the cluster's uid; {tag}.",
        ctx.arn("events", "rule/gke-*-node-termination"): "Each cluster's rule feeding its termination queue, named "
        f"gke-<uid>-node-termination; {tag}.",
    }
    return out
