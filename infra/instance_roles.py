"""IAM roles and instance profiles for control-plane replicas and nodes.

`<svc>-control-plane` and `<svc>-node` (docs/contracts.md); profiles share the role names.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.config import SERVICE_TAG, ServiceConfig
from infra.encryption import ServiceKey
from infra.permissions import SERVICE_LINKED_ROLES, TABLE_KEY_ACTIONS
from kubestep.store import keys

# The AWS cloud-controller-manager's control-plane policy as kubernetes/cloud-provider-aws
# documents it (docs/prerequisites.md), minus AttachVolume/DetachVolume which are granted
# below only on kubestep's own volumes and instances. Required since Kubernetes 1.27 for
# nodes to become Ready on AWS; it creates service load balancers and their security groups,
# whose names and ids nobody knows in advance, hence `Resource: *`.
CLOUD_CONTROLLER_MANAGER_ACTIONS = [
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
    "ec2:CreateSecurityGroup",
    "ec2:CreateTags",
    "ec2:CreateVolume",
    "ec2:ModifyInstanceAttribute",
    "ec2:ModifyVolume",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:CreateRoute",
    "ec2:DeleteRoute",
    "ec2:DeleteSecurityGroup",
    "ec2:DeleteVolume",
    "ec2:RevokeSecurityGroupIngress",
    "elasticloadbalancing:AddTags",
    "elasticloadbalancing:AttachLoadBalancerToSubnets",
    "elasticloadbalancing:ApplySecurityGroupsToLoadBalancer",
    "elasticloadbalancing:CreateLoadBalancer",
    "elasticloadbalancing:CreateLoadBalancerPolicy",
    "elasticloadbalancing:CreateLoadBalancerListeners",
    "elasticloadbalancing:ConfigureHealthCheck",
    "elasticloadbalancing:DeleteLoadBalancer",
    "elasticloadbalancing:DeleteLoadBalancerListeners",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DetachLoadBalancerFromSubnets",
    "elasticloadbalancing:DeregisterInstancesFromLoadBalancer",
    "elasticloadbalancing:ModifyLoadBalancerAttributes",
    "elasticloadbalancing:RegisterInstancesWithLoadBalancer",
    "elasticloadbalancing:SetLoadBalancerPoliciesForBackendServer",
    "elasticloadbalancing:CreateListener",
    "elasticloadbalancing:CreateTargetGroup",
    "elasticloadbalancing:DeleteListener",
    "elasticloadbalancing:DeleteTargetGroup",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeLoadBalancerPolicies",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:ModifyListener",
    "elasticloadbalancing:ModifyTargetGroup",
    "elasticloadbalancing:RegisterTargets",
    "elasticloadbalancing:DeregisterTargets",
    "elasticloadbalancing:SetLoadBalancerPoliciesOfListener",
    "kms:DescribeKey",
]

# kubelet's / the CCM node part's needs (cloud-provider-aws docs), plus DescribeTags: the
# bootstrap script reads its ASG's gke:* tags from its own instance.
NODE_EC2_ACTIONS = ["ec2:DescribeInstances", "ec2:DescribeRegions", "ec2:DescribeTags"]


class InstanceRoles(Construct):
    """The two roles the ClusterTasks function passes to EC2 (and nothing else)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ServiceConfig,
        key: ServiceKey,
        table_arn: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        svc = config.name
        elb = "elasticloadbalancing.amazonaws.com"
        ec2_principal = iam.ServicePrincipal("ec2.amazonaws.com")
        ssm_core = iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")

        self.control_plane_role = iam.Role(
            self,
            "ControlPlaneRole",
            role_name=f"{svc}-control-plane",
            description=f"kubestep {svc}: control-plane replicas (kubeadm, etcd, cloud-controller-manager)",
            assumed_by=ec2_principal,
            # SSM Session Manager instead of SSH keys and bastions for break-glass access.
            managed_policies=[ssm_core],
        )
        self.node_role = iam.Role(
            self,
            "NodeRole",
            role_name=f"{svc}-node",
            description=f"kubestep {svc}: worker nodes (kubelet, image pulls)",
            assumed_by=ec2_principal,
            managed_policies=[
                ssm_core,
                iam.ManagedPolicy.from_aws_managed_policy_name("AmazonEC2ContainerRegistryReadOnly"),
            ],
        )

        # Bootstrap report (docs/contracts.md): items of the bootstrap partition only.
        bootstrap_report = iam.PolicyStatement(
            sid="BootstrapReport",
            actions=["dynamodb:PutItem", "dynamodb:UpdateItem"],
            resources=[table_arn],
            conditions={"ForAllValues:StringLike": {"dynamodb:LeadingKeys": [keys.bootstrap_leading_key_pattern()]}},
        )
        # DynamoDB uses the table's customer-managed key on the caller's behalf.
        table_key = key.statement(
            TABLE_KEY_ACTIONS,
            conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{stack.region}.amazonaws.com"}},
            sid="StateTableKeyViaDynamoDB",
        )

        # user-data reads the cluster's bootstrap secret gke-<uid>-bootstrap (kubestep/bootstrap.py).
        self.secret_resources = [f"arn:{stack.partition}:secretsmanager:{stack.region}:{stack.account}:secret:gke-*"]
        # Several management services may share an account: only this service's secrets
        # (ClusterTasks creates them with the service tag in `Tags`).
        cluster_secrets = iam.PolicyStatement(
            sid="ClusterSecrets",
            actions=["secretsmanager:GetSecretValue"],
            resources=self.secret_resources,
            conditions={"StringEquals": {f"aws:ResourceTag/{SERVICE_TAG}": svc}},
        )

        for statement in (
            iam.PolicyStatement(
                sid="EtcdVolumeAttach",
                actions=["ec2:AttachVolume", "ec2:DetachVolume"],
                # Both the volume and the instance are kubestep's and carry the service tag.
                resources=[
                    f"arn:{stack.partition}:ec2:{stack.region}:{stack.account}:volume/*",
                    f"arn:{stack.partition}:ec2:{stack.region}:{stack.account}:instance/*",
                ],
                conditions={"StringEquals": {f"aws:ResourceTag/{SERVICE_TAG}": svc}},
            ),
            iam.PolicyStatement(
                sid="CloudControllerManager",
                actions=CLOUD_CONTROLLER_MANAGER_ACTIONS,
                resources=["*"],
            ),
            iam.PolicyStatement(
                sid="CloudControllerManagerServiceLinkedRole",
                actions=["iam:CreateServiceLinkedRole"],
                resources=[
                    f"arn:{stack.partition}:iam::{stack.account}:role/aws-service-role/{elb}/{SERVICE_LINKED_ROLES[elb]}"
                ],
                conditions={"StringEquals": {"iam:AWSServiceName": elb}},
            ),
            iam.PolicyStatement(sid="BootstrapTags", actions=["ec2:DescribeTags"], resources=["*"]),
            cluster_secrets,
            key.statement(["kms:Decrypt"], sid="ServiceKeyDecrypt"),
            bootstrap_report,
            table_key,
        ):
            self.control_plane_role.add_to_policy(statement)

        for statement in (
            iam.PolicyStatement(sid="Kubelet", actions=NODE_EC2_ACTIONS, resources=["*"]),
            # `kubeadm join` needs the bootstrap token, which user-data fetches from the secret.
            cluster_secrets,
            key.statement(
                ["kms:Decrypt"],
                conditions={"StringEquals": {"kms:ViaService": f"secretsmanager.{stack.region}.amazonaws.com"}},
                sid="ServiceKeyDecryptViaSecretsManager",
            ),
            bootstrap_report,
            table_key,
        ):
            self.node_role.add_to_policy(statement)

        # Named like their roles so manifests can say `iamInstanceProfile: <svc>-node`.
        self.control_plane_profile = iam.CfnInstanceProfile(
            self,
            "ControlPlaneInstanceProfile",
            instance_profile_name=f"{svc}-control-plane",
            roles=[self.control_plane_role.role_name],
        )
        self.node_profile = iam.CfnInstanceProfile(
            self,
            "NodeInstanceProfile",
            instance_profile_name=f"{svc}-node",
            roles=[self.node_role.role_name],
        )

    @property
    def control_plane_profile_arn(self) -> str:
        return self.control_plane_profile.attr_arn

    @property
    def node_profile_arn(self) -> str:
        return self.node_profile.attr_arn
