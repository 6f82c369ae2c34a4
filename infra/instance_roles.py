"""What the management service gives the per-cluster instance roles it creates.

Each cluster's control-plane and node roles are made by the ClusterTasks function
(kubestep/resources/instance_roles.py), with inline policies naming only that cluster's own
resources (kubestep/iam_policies.py). The stack provides their IAM path
(`/kubestep/<svc>/<region>/instances/`) and the permissions boundary every one of them is created under: a
managed policy whose Allow is the union of what such a role may ever do, limited to this
service's table, its secrets and its own tag where AWS supports it. The ClusterTasks function
may create roles only under that path and only with that boundary, so it cannot give itself
more through an instance it launches.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.config import SERVICE_TAG, ServiceConfig
from kubestep import backups, iam_policies
from kubestep.bootstrap import bundle
from kubestep.store import keys
from kubestep.store.backups import BACKUP_ATTRIBUTES
from kubestep.store.reports import INIT_CLAIM_ATTRIBUTES, REPORT_ATTRIBUTES, VERSION_CLAIM_ATTRIBUTES


def role_path(service: str, region: str) -> str:
    """Per service and region (IAM is global: the same service deployed in two regions of one
    account must not manage each other's roles), and a sibling of the Scheduler role's path
    (infra/permissions.py), never its parent: a grant on `role<path>*` matches every deeper path."""
    return f"/kubestep/{service}/{region}/instances/"


class InstanceRoleBoundary(Construct):
    """`<svc>-<region>-instance-boundary`: the permissions boundary of every per-cluster instance role."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: ServiceConfig, table_arn: str, backup_bucket_arn: str
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        svc = config.name
        secrets = f"arn:{stack.partition}:secretsmanager:{stack.region}:{stack.account}:secret:gke-*"
        scoped = {
            "secretsmanager:GetSecretValue",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            *iam_policies.TABLE_KEY_ACTIONS,
            "kms:CreateGrant",
            "iam:CreateServiceLinkedRole",
            *iam_policies.BACKUP_ACTIONS,
        }
        through = [f"{service}.{stack.region}.amazonaws.com" for service in ("dynamodb", "secretsmanager", "s3")]
        load_balancer_service_role = (
            f"arn:{stack.partition}:iam::{stack.account}:role/aws-service-role/"
            "elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing"
        )
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            managed_policy_name=f"{svc}-{stack.region}-instance-boundary",
            description=f"kubestep {svc}: the most any cluster's instance role may do",
            statements=[
                iam.PolicyStatement(
                    sid="ClusterSecrets",
                    actions=["secretsmanager:GetSecretValue"],
                    resources=[secrets],
                    conditions={"StringEquals": {f"aws:ResourceTag/{SERVICE_TAG}": svc}},
                ),
                # The instances' own items (reports, the init and version claims), only the
                # attributes they write.
                iam.PolicyStatement(
                    sid="BootstrapItems",
                    actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
                    resources=[table_arn],
                    conditions={
                        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": keys.bootstrap_leading_key_patterns()},
                        "ForAllValues:StringEquals": {
                            "dynamodb:Attributes": sorted(
                                {*REPORT_ATTRIBUTES, *INIT_CLAIM_ATTRIBUTES, *VERSION_CLAIM_ATTRIBUTES}
                            )
                        },
                    },
                ),
                # The records of a cluster's etcd snapshots, only the attributes the leader writes.
                iam.PolicyStatement(
                    sid="BackupRecords",
                    actions=["dynamodb:GetItem", "dynamodb:PutItem"],
                    resources=[table_arn],
                    conditions={
                        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [keys.backups_pk("*")]},
                        "ForAllValues:StringEquals": {"dynamodb:Attributes": sorted(BACKUP_ATTRIBUTES)},
                    },
                ),
                # What the management service tells a control plane (its administrators, its
                # backup policy): read only.
                iam.PolicyStatement(
                    sid="ClusterAccessRead",
                    actions=["dynamodb:GetItem"],
                    resources=[table_arn],
                    conditions={
                        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [keys.cluster_access_leading_key()]}
                    },
                ),
                # etcd snapshots, only under the backup bucket's per-cluster prefixes (each
                # cluster's policy names its own).
                iam.PolicyStatement(
                    sid="EtcdBackups",
                    actions=iam_policies.BACKUP_ACTIONS,
                    resources=[f"{backup_bucket_arn}/{backups.PREFIX}/*"],
                ),
                # The bootstrap bundles the instances' loader downloads, read only (each
                # cluster's policy names its own prefix).
                iam.PolicyStatement(
                    sid="BootstrapBundles",
                    actions=["s3:GetObject"],
                    resources=[f"{backup_bucket_arn}/{bundle.PREFIX}/*"],
                ),
                # Customer-managed keys (the table's, the secrets', the backups') only as
                # DynamoDB, Secrets Manager and S3 use them on the instance's behalf.
                iam.PolicyStatement(
                    sid="KeysThroughTheirServices",
                    actions=iam_policies.TABLE_KEY_ACTIONS,
                    resources=["*"],
                    conditions={"StringEquals": {"kms:ViaService": through}},
                ),
                # Grants only for an AWS resource (EBS attaching an encrypted volume).
                iam.PolicyStatement(
                    sid="GrantsForVolumes",
                    actions=["kms:CreateGrant"],
                    resources=["*"],
                    conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                ),
                # The cloud controller manager's first Service load balancer in an account.
                iam.PolicyStatement(
                    sid="LoadBalancingServiceLinkedRole",
                    actions=["iam:CreateServiceLinkedRole"],
                    resources=[load_balancer_service_role],
                    conditions={"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
                ),
                iam.PolicyStatement(
                    sid="Everything",
                    actions=[a for a in iam_policies.boundary_actions() if a not in scoped],
                    # Per-cluster policies scope these further; many take no resource-level permissions.
                    resources=["*"],
                ),
            ],
        )

    @property
    def arn(self) -> str:
        return self.policy.managed_policy_arn
