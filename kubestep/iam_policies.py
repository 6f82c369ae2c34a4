"""The IAM policies of each cluster's own instance roles (`gke-<uid>-controlplane`,
`gke-<uid>-node`), and the permissions boundary every such role is created under.

An instance proves who it is by its role: per-cluster roles, whose policies name
the cluster's own secrets, volumes, report items and DNS records, are what keeps a node of
cluster A away from cluster B's secrets and from its own cluster's control-plane secret. The
boundary (a managed policy of the stack) caps what any role the management service creates can
ever do, so the ClusterTasks function cannot mint itself a broader role.

The AWS cloud controller manager's statements follow kubernetes/cloud-provider-aws
(docs/prerequisites.md), scoped where AWS supports it: mutations only on resources tagged
`kubernetes.io/cluster/<uid>`, creates only with that tag in the request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubestep import backups
from kubestep.bootstrap import bundle
from kubestep.store import keys
from kubestep.store.backups import BACKUP_ATTRIBUTES
from kubestep.store.reports import INIT_CLAIM_ATTRIBUTES, REPORT_ATTRIBUTES, VERSION_CLAIM_ATTRIBUTES

Statement = dict[str, Any]
Document = dict[str, Any]

ECR_READ_ONLY = [
    "ecr:GetAuthorizationToken",
    "ecr:BatchCheckLayerAvailability",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchGetImage",
]
CCM_DESCRIBE = [
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeTags",
    "ec2:DescribeInstances",
    "ec2:DescribeRegions",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVolumes",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeVpcs",
    "ec2:DescribeInstanceTopology",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeLoadBalancerPolicies",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "kms:DescribeKey",
]
# On existing load balancers, target groups and security groups Kubernetes created for
# Services (tagged kubernetes.io/cluster/<uid>=owned by the CCM).
CCM_MUTATE_OWNED = [
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:RevokeSecurityGroupIngress",
    "ec2:DeleteSecurityGroup",
    "elasticloadbalancing:AddTags",
    "elasticloadbalancing:AttachLoadBalancerToSubnets",
    "elasticloadbalancing:ApplySecurityGroupsToLoadBalancer",
    "elasticloadbalancing:CreateLoadBalancerPolicy",
    "elasticloadbalancing:CreateLoadBalancerListeners",
    "elasticloadbalancing:ConfigureHealthCheck",
    "elasticloadbalancing:DeleteLoadBalancer",
    "elasticloadbalancing:DeleteLoadBalancerListeners",
    "elasticloadbalancing:DetachLoadBalancerFromSubnets",
    "elasticloadbalancing:DeregisterInstancesFromLoadBalancer",
    "elasticloadbalancing:ModifyLoadBalancerAttributes",
    "elasticloadbalancing:RegisterInstancesWithLoadBalancer",
    "elasticloadbalancing:SetLoadBalancerPoliciesForBackendServer",
    "elasticloadbalancing:CreateListener",
    "elasticloadbalancing:DeleteListener",
    "elasticloadbalancing:DeleteTargetGroup",
    "elasticloadbalancing:ModifyListener",
    "elasticloadbalancing:ModifyTargetGroup",
    "elasticloadbalancing:RegisterTargets",
    "elasticloadbalancing:DeregisterTargets",
    "elasticloadbalancing:SetLoadBalancerPoliciesOfListener",
]
CCM_CREATE_TAGGED = [
    "ec2:CreateSecurityGroup",
    "elasticloadbalancing:CreateLoadBalancer",
    "elasticloadbalancing:CreateTargetGroup",
]
# Session Manager (`kubestep tunnel`, break-glass shells instead of SSH keys and bastions): what
# the AWS managed policy AmazonSSMManagedInstanceCore grants, inline so one document says it all.
SSM_CORE = [
    "ssm:DescribeAssociation",
    "ssm:GetDeployablePatchSnapshotForInstance",
    "ssm:GetDocument",
    "ssm:DescribeDocument",
    "ssm:GetManifest",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:ListAssociations",
    "ssm:ListInstanceAssociations",
    "ssm:PutInventory",
    "ssm:PutComplianceItems",
    "ssm:PutConfigurePackageResult",
    "ssm:UpdateAssociationStatus",
    "ssm:UpdateInstanceAssociationStatus",
    "ssm:UpdateInstanceInformation",
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
    "ec2messages:AcknowledgeMessage",
    "ec2messages:DeleteMessage",
    "ec2messages:FailMessage",
    "ec2messages:GetEndpoint",
    "ec2messages:GetMessages",
    "ec2messages:SendReply",
]
# What DynamoDB does with the state table's key on the caller's behalf: decrypt what it reads,
# encrypt and make data keys for what it writes ("kms:GenerateDataKey*" in AWS's key policy).
TABLE_KEY_ACTIONS = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext"]
# etcd snapshots: the leader uploads them (with their retention tag), and a restore reads them.
BACKUP_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:PutObjectTagging"]
# The AWS Node Termination Handler in queue mode, on the control plane.
NTH_ACTIONS = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]


@dataclass(frozen=True)
class Account:
    partition: str
    region: str
    account: str

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        where = f"{self.region if region else ''}:{self.account if account else ''}"
        return f"arn:{self.partition}:{service}:{where}:{resource}"


@dataclass(frozen=True)
class ClusterFacts:
    """What a cluster's role policies name."""

    account: Account
    service: str
    uid: str
    table_arn: str
    service_kms_key_arn: str | None
    control_plane_secret_arn: str
    node_secret_arn: str
    hosted_zone_id: str
    dns_domain: str
    # Customer keys the cluster's volumes or secrets use (attach needs a grant, decrypt the secret).
    volume_kms_key_arns: tuple[str, ...] = ()
    secrets_kms_key_arn: str | None = None
    node_termination_queue_arn: str | None = None
    # The service's etcd backup bucket (its name): the control plane writes its own prefix.
    backup_bucket: str | None = None
    # The cluster is initialised: its init claim is final, readable but no longer writable.
    initialized: bool = False


def _statement(sid: str, actions: list[str], resources: list[str], conditions: dict | None = None) -> Statement:
    statement: Statement = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if conditions:
        statement["Condition"] = conditions
    return statement


def _k8s_tag(uid: str) -> str:
    return f"kubernetes.io/cluster/{uid}"


# The policy variable AWS fills with the ARN of the instance whose role credentials sign the
# request: a global condition key (EC2 User Guide, "ec2:SourceInstanceARN condition key"), and
# global keys may be policy variables (IAM User Guide, "IAM policy elements: Variables and tags").
SOURCE_INSTANCE_ARN = "${ec2:SourceInstanceARN}"


def _items(sid: str, facts: ClusterFacts, actions: list[str], partition: str, attributes: tuple[str, ...]) -> Statement:
    """Only the items of one partition, and only the attributes an instance writes there: IAM
    scopes DynamoDB items by partition key alone (`dynamodb:LeadingKeys`; there is no sort-key
    condition), so each kind of item an instance writes has its own partition."""
    return _statement(
        sid,
        actions,
        [facts.table_arn],
        {
            "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [partition], "dynamodb:Attributes": list(attributes)},
        },
    )


def _key_statement(sid: str, actions: list[str], key_arns: list[str], conditions: dict) -> Statement:
    """A key named by its ARN, or by an alias ARN (IAM cannot match an alias as the resource: the
    key's aliases are then a condition, `kms:ResourceAliases`)."""
    aliases = [k for k in key_arns if ":alias/" in k]
    if not aliases:
        return _statement(sid, actions, sorted(key_arns), conditions)
    resources = sorted(
        {k for k in key_arns if ":alias/" not in k} | {a.split(":alias/")[0] + ":key/*" for a in aliases}
    )
    names = sorted("alias/" + a.split(":alias/", 1)[1] for a in aliases)
    return _statement(
        sid, actions, resources, {**conditions, "ForAnyValue:StringEquals": {"kms:ResourceAliases": names}}
    )


def _table_key(facts: ClusterFacts) -> list[Statement]:
    """The state table's customer-managed key, which DynamoDB uses on the caller's behalf for
    every item read and written (Amazon DynamoDB Developer Guide, "Key policy for a customer
    managed key"), only through DynamoDB."""
    if not facts.service_kms_key_arn:
        return []
    return [
        _key_statement(
            "StateTableKeyViaDynamoDB",
            TABLE_KEY_ACTIONS,
            [facts.service_kms_key_arn],
            {"StringEquals": {"kms:ViaService": f"dynamodb.{facts.account.region}.amazonaws.com"}},
        )
    ]


def _backups(facts: ClusterFacts) -> list[Statement]:
    """The cluster's own prefix of the backup bucket (`backups/<uid>/`), and the service key only
    as S3 uses it for those objects (SSE-KMS: S3 asks KMS for a data key on a put and a decrypt
    on a get, on the caller's behalf)."""
    if not facts.backup_bucket:
        return []
    a = facts.account
    prefix = backups.bucket_arn(a.partition, facts.backup_bucket) + "/" + backups.cluster_prefix(facts.uid)
    statements = [_statement("OwnEtcdBackups", BACKUP_ACTIONS, [prefix + "*"])]
    if facts.service_kms_key_arn:
        statements.append(
            _key_statement(
                "BackupKeyViaS3",
                ["kms:Decrypt", "kms:GenerateDataKey"],
                [facts.service_kms_key_arn],
                {"StringEquals": {"kms:ViaService": f"s3.{a.region}.amazonaws.com"}},
            )
        )
    return statements


def _bootstrap_bundles(facts: ClusterFacts, *, with_key: bool) -> list[Statement]:
    """Read the cluster's own bootstrap bundles (`bootstrap/<uid>/`), which its loader fetches at
    boot, and, `with_key`, decrypt them with the service key only as S3 does for them (the
    control plane has that from its backups' statement)."""
    if not facts.backup_bucket:
        return []
    a = facts.account
    prefix = backups.bucket_arn(a.partition, facts.backup_bucket) + "/" + bundle.cluster_prefix(facts.uid)
    statements = [_statement("OwnBootstrapBundles", ["s3:GetObject"], [prefix + "*"])]
    if with_key and facts.service_kms_key_arn:
        statements.append(
            _key_statement(
                "BundleKeyViaS3",
                ["kms:Decrypt"],
                [facts.service_kms_key_arn],
                {"StringEquals": {"kms:ViaService": f"s3.{a.region}.amazonaws.com"}},
            )
        )
    return statements


def _secret_keys(facts: ClusterFacts) -> list[Statement]:
    keys_used = sorted({k for k in (facts.service_kms_key_arn, facts.secrets_kms_key_arn) if k})
    if not keys_used:
        return []
    return [
        _key_statement(
            "DecryptSecretsViaSecretsManager",
            ["kms:Decrypt"],
            keys_used,
            {"StringEquals": {"kms:ViaService": f"secretsmanager.{facts.account.region}.amazonaws.com"}},
        )
    ]


CLAIM_ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"]


def _replica_items(facts: ClusterFacts) -> list[Statement]:
    """The replicas' reports; the init claim: read always, written (the conditional claim, then
    `initialized`) only until the cluster is initialised. From then on it is final: no replica,
    whatever its script does, can reset it and make a later empty-volume replica run
    `kubeadm init` against a cluster that exists (split brain). The once-per-version claims
    (`UPGRADE#<version>`, `ADDONS#<version>`) in their own partition, writable for the cluster's
    life: every upgrade takes new ones, and a stale one is taken over after its lease."""
    claim = ["dynamodb:GetItem"] if facts.initialized else CLAIM_ACTIONS
    return [
        _items("ReplicaReports", facts, ["dynamodb:PutItem"], keys.bootstrap_pk(facts.uid), REPORT_ATTRIBUTES),
        _items("InitClaim", facts, claim, keys.init_claim_pk(facts.uid), INIT_CLAIM_ATTRIBUTES),
        _items("VersionClaims", facts, CLAIM_ACTIONS, keys.version_claim_pk(facts.uid), VERSION_CLAIM_ATTRIBUTES),
        # The records of the snapshots its etcd leader uploads, and the pointer to the newest
        # (read back by the next leader to know when one is due).
        _items(
            "EtcdBackupRecords",
            facts,
            ["dynamodb:GetItem", "dynamodb:PutItem"],
            keys.backups_pk(facts.uid),
            BACKUP_ATTRIBUTES,
        ),
        _cluster_administrators(facts),
    ]


def _cluster_administrators(facts: ClusterFacts) -> Statement:
    """Read, never write, the cluster's administrators item, which the replicas serve as
    aws-iam-authenticator's mapping, and its backup policy item beside it: the management service
    alone decides who is cluster-admin and when backups are due. Items are read whole, so no
    attribute condition (one would hold for any read by key)."""
    return _statement(
        "ClusterAdministrators",
        ["dynamodb:GetItem"],
        [facts.table_arn],
        {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [keys.cluster_access_leading_key(facts.uid)]}},
    )


def control_plane_policy(facts: ClusterFacts) -> Document:
    a, uid = facts.account, facts.uid
    owned = {"StringEquals": {f"aws:ResourceTag/{_k8s_tag(uid)}": "owned"}}
    statements = [
        _statement(
            "OwnSecrets", ["secretsmanager:GetSecretValue"], [facts.control_plane_secret_arn, facts.node_secret_arn]
        ),
        *_secret_keys(facts),
        *_table_key(facts),
        *_replica_items(facts),
        *_backups(facts),
        *_bootstrap_bundles(facts, with_key=False),
        # The replica's etcd volume: only volumes and instances of this cluster.
        _statement(
            "OwnEtcdVolumes",
            ["ec2:AttachVolume", "ec2:DetachVolume"],
            [a.arn("ec2", "volume/*"), a.arn("ec2", "instance/*")],
            {"StringEquals": {"aws:ResourceTag/gke:cluster-uid": uid}},
        ),
        # Its own stable name, cp-<i>.<uid>.<domain>, and nothing else in the service's zone.
        _statement(
            "OwnReplicaRecords",
            ["route53:ChangeResourceRecordSets"],
            [a.arn("route53", f"hostedzone/{facts.hosted_zone_id}", region=False, account=False)],
            {
                "ForAllValues:StringLike": {
                    "route53:ChangeResourceRecordSetsNormalizedRecordNames": [f"*.{uid}.{facts.dns_domain}"]
                },
                "ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsRecordTypes": ["A"]},
            },
        ),
        _statement("DnsChanges", ["route53:GetChange"], [a.arn("route53", "change/*", region=False, account=False)]),
        _statement("SessionManager", SSM_CORE, ["*"]),
        _statement("CloudControllerManagerRead", CCM_DESCRIBE, ["*"]),
        _statement("CloudControllerManagerOwned", CCM_MUTATE_OWNED, ["*"], owned),
        _statement(
            "CloudControllerManagerCreate",
            CCM_CREATE_TAGGED,
            ["*"],
            {"StringEquals": {f"aws:RequestTag/{_k8s_tag(uid)}": "owned"}},
        ),
        # Tags only on what it is creating (the condition keys of CreateTags: ec2:CreateAction).
        _statement(
            "TagWhatItCreates",
            ["ec2:CreateTags"],
            [a.arn("ec2", "security-group/*")],
            {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}},
        ),
        _statement(
            "LoadBalancerServiceLinkedRole",
            ["iam:CreateServiceLinkedRole"],
            [
                a.arn(
                    "iam",
                    "role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing",
                    region=False,
                )
            ],
            {"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
        ),
    ]
    if facts.volume_kms_key_arns:
        keys_arns = sorted(set(facts.volume_kms_key_arns))
        statements.append(
            _statement(
                "EncryptedVolumeAttach",
                ["kms:CreateGrant"],
                keys_arns,
                {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            )
        )
        statements.append(_statement("EncryptedVolumeKeys", ["kms:DescribeKey"], keys_arns))
    if facts.node_termination_queue_arn:
        statements.append(_statement("NodeTerminationQueue", NTH_ACTIONS, [facts.node_termination_queue_arn]))
        statements.append(
            _statement(
                "NodeTerminationLifecycle",
                ["autoscaling:CompleteLifecycleAction"],
                [a.arn("autoscaling", "autoScalingGroup:*:autoScalingGroupName/*")],
                {"StringEquals": {"aws:ResourceTag/gke:cluster-uid": uid}},
            )
        )
        statements.append(_statement("NodeTerminationRead", ["autoscaling:DescribeAutoScalingInstances"], ["*"]))
    return {"Version": "2012-10-17", "Statement": statements}


def node_policy(facts: ClusterFacts) -> Document:
    return {
        "Version": "2012-10-17",
        "Statement": [
            _statement("JoinToken", ["secretsmanager:GetSecretValue"], [facts.node_secret_arn]),
            *_secret_keys(facts),
            *_table_key(facts),
            *_bootstrap_bundles(facts, with_key=True),
            # Its own report only: the partition named by its own instance ARN.
            _items(
                "OwnNodeReport",
                facts,
                ["dynamodb:PutItem"],
                keys.node_report_pk(facts.uid, SOURCE_INSTANCE_ARN),
                REPORT_ATTRIBUTES,
            ),
            _statement("Kubelet", ["ec2:DescribeInstances", "ec2:DescribeRegions"], ["*"]),
            _statement("ImagePulls", ECR_READ_ONLY, ["*"]),
            _statement("SessionManager", SSM_CORE, ["*"]),
        ],
    }


def trust_policy() -> Document:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }


def boundary_actions() -> list[str]:
    """Every action a per-cluster role may ever have (the boundary's Allow)."""
    actions = {
        "secretsmanager:GetSecretValue",
        *TABLE_KEY_ACTIONS,
        "kms:CreateGrant",
        "kms:DescribeKey",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "ec2:AttachVolume",
        "ec2:DetachVolume",
        "ec2:CreateTags",
        "route53:ChangeResourceRecordSets",
        "route53:GetChange",
        "iam:CreateServiceLinkedRole",
        "autoscaling:CompleteLifecycleAction",
        "autoscaling:DescribeAutoScalingInstances",
        *CCM_DESCRIBE,
        *CCM_MUTATE_OWNED,
        *CCM_CREATE_TAGGED,
        *NTH_ACTIONS,
        *BACKUP_ACTIONS,
        *ECR_READ_ONLY,
        *SSM_CORE,
    }
    return sorted(actions)
