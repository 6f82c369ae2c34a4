"""The management service's KMS key: table, secrets, and the default key for EBS volumes."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.config import ServiceConfig


def autoscaling_service_linked_role_arn(stack: cdk.Stack) -> str:
    return (
        f"arn:{stack.partition}:iam::{stack.account}:role/aws-service-role/"
        "autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling"
    )


class ServiceKey(Construct):
    """A customer-managed key with rotation, or the key the manifest names (`spec.kmsKeyARN`).

    IAM statements for the key go through `statement()` so that an alias ARN in the manifest
    (which IAM cannot match as a resource) becomes a `kms:ResourceAliases` condition.
    """

    def __init__(self, scope: Construct, construct_id: str, *, config: ServiceConfig) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self._alias_name: str | None = None
        self.created: kms.Key | None = None
        given = config.kms_key_arn
        if given:
            arn = cdk.Arn.split(given, cdk.ArnFormat.SLASH_RESOURCE_NAME)
            self._alias_region, self._alias_account = arn.region, arn.account
            if arn.resource == "alias":
                self._alias_name = f"alias/{arn.resource_name}"
            # The ARN as given (key or alias ARN, possibly another account): DynamoDB's
            # KMSMasterKeyId accepts both.
            self.key: kms.IKey = kms.Key.from_key_arn(self, "Imported", given)
            # The key's own policy is the owner's: it must let this account's principals and
            # the Auto Scaling service-linked role use it (see README / docs).
            self.key_arn = given
            return

        self.created = kms.Key(
            self,
            "Key",
            description=f"kubestep management service {config.name}: state table, cluster secrets, EBS",
            enable_key_rotation=True,
            # Data in the table and in EBS volumes outlives the stack; deleting the key would
            # make it unreadable.
            removal_policy=cdk.RemovalPolicy.RETAIN,
            alias=f"alias/{config.name}-kubestep",
        )
        self.key = self.created
        self.key_arn = self.created.key_arn
        self._allow_autoscaling_service_linked_role(stack)
        self._allow_cloudwatch_logs(stack)

    @property
    def log_key(self) -> kms.IKey | None:
        """The key the stack's log groups are encrypted with: the stack's own key, whose policy
        lets CloudWatch Logs use it. A key the manifest names is the owner's, and its policy may
        not: those log groups keep CloudWatch Logs' default encryption (see docs/architecture.md)."""
        return self.created

    def _allow_cloudwatch_logs(self, stack: cdk.Stack) -> None:
        """CloudWatch Logs encrypts this account's log groups with the key (AWS: "Encrypt log data
        in CloudWatch Logs using AWS KMS", its key policy statement, limited by the encryption
        context to this account's and region's log groups)."""
        assert self.created is not None
        self.created.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"
                        )
                    }
                },
            )
        )

    def _allow_autoscaling_service_linked_role(self, stack: cdk.Stack) -> None:
        """Let Auto Scaling launch instances whose EBS volumes use this key.

        AWS documents these two statements ("Required AWS KMS key policy for use with encrypted
        volumes"); without them launches fail with `Client.InternalError`. AWS's example names
        the service-linked role as the principal, but KMS rejects a key policy whose principal
        does not exist yet, and in a fresh account `AWSServiceRoleForAutoScaling` only appears
        with the first Auto Scaling group. So the principal is `*` narrowed by
        `aws:PrincipalArn` to exactly that role: same effect, deployable in any account.
        """
        assert self.created is not None
        only_the_role = {"ArnEquals": {"aws:PrincipalArn": autoscaling_service_linked_role_arn(stack)}}
        self.created.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAutoScalingServiceLinkedRoleUseOfTheKey",
                principals=[iam.AnyPrincipal()],
                actions=[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncrypt*",
                    "kms:GenerateDataKey*",
                    "kms:DescribeKey",
                ],
                resources=["*"],
                conditions=only_the_role,
            )
        )
        self.created.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowAutoScalingServiceLinkedRoleAttachmentOfPersistentResources",
                principals=[iam.AnyPrincipal()],
                actions=["kms:CreateGrant"],
                resources=["*"],
                conditions={**only_the_role, "Bool": {"kms:GrantIsForAWSResource": True}},
            )
        )

    def statement(
        self, actions: list[str], *, conditions: dict[str, Any] | None = None, sid: str | None = None
    ) -> iam.PolicyStatement:
        """An identity-policy statement that allows `actions` on this key."""
        merged: dict[str, Any] = dict(conditions or {})
        if self._alias_name is None:
            resources = [self.key_arn]
        else:
            resources = self.wildcard_resources
            merged["ForAnyValue:StringEquals"] = {"kms:ResourceAliases": [self._alias_name]}
        return iam.PolicyStatement(sid=sid, actions=actions, resources=resources, conditions=merged or None)

    @property
    def wildcard_resources(self) -> list[str]:
        """`key/*` when the manifest names the key by alias, else nothing."""
        if self._alias_name is None:
            return []
        stack = cdk.Stack.of(self)
        return [
            f"arn:{stack.partition}:kms:{self._alias_region or stack.region}:"
            f"{self._alias_account or stack.account}:key/*"
        ]
