"""The IAM policies a synthesized template gives each role, with CloudFormation intrinsics
resolved: against a deployed stack's values (the emulator's stack resources) or, without a
deployment, against stand-in values derived from the template itself.

Only the intrinsics the CDK writes into IAM documents are resolved (Ref, Fn::GetAtt …Arn,
Fn::Join, Fn::Sub, Fn::Select, Fn::Split); anything else raises, so a policy the check cannot
read never passes silently."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .evaluator import Statement

# CloudFormation's documented return values (Ref / Fn::GetAtt Arn) of the types the policies name.
_ARN_FORMATS = {
    "AWS::DynamoDB::Table": "arn:{partition}:dynamodb:{region}:{account}:table/{id}",
    "AWS::KMS::Key": "arn:{partition}:kms:{region}:{account}:key/{id}",
    "AWS::Logs::LogGroup": "arn:{partition}:logs:{region}:{account}:log-group:{id}:*",
    "AWS::Lambda::Function": "arn:{partition}:lambda:{region}:{account}:function:{id}",
    "AWS::SQS::Queue": "arn:{partition}:sqs:{region}:{account}:{id}",
    "AWS::IAM::Role": "arn:{partition}:iam::{account}:role/{id}",
    "AWS::Events::Rule": "arn:{partition}:events:{region}:{account}:rule/{id}",
    "AWS::StepFunctions::StateMachine": "{id}",
    "AWS::IAM::ManagedPolicy": "{id}",
    "AWS::SSM::Parameter": "arn:{partition}:ssm:{region}:{account}:parameter/{id}",
    "AWS::S3::Bucket": "arn:{partition}:s3:::{id}",
}
# Properties that name a resource (its physical id) when no deployment says otherwise.
_NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::SSM::Parameter": "Name",
    "AWS::StepFunctions::StateMachine": "StateMachineName",
    "AWS::IAM::Role": "RoleName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::Events::Rule": "Name",
}


class UnresolvedIntrinsic(ValueError):
    pass


@dataclass(frozen=True)
class Environment:
    account: str
    region: str
    partition: str = "aws"
    stack_name: str = "kubestep"


class Resolver:
    """Resolves intrinsics of one template, given each resource's physical id."""

    def __init__(self, template: Mapping[str, Any], env: Environment, physical_ids: Mapping[str, str] | None = None):
        self.template = template
        self.resources: Mapping[str, Any] = template.get("Resources", {})
        self.env = env
        self.physical_ids = dict(physical_ids or {})

    def _physical_id(self, logical_id: str) -> str:
        if logical_id in self.physical_ids:
            return self.physical_ids[logical_id]
        resource = self.resources.get(logical_id)
        if resource is None:
            raise UnresolvedIntrinsic(f"no resource {logical_id}")
        rtype, props = resource["Type"], resource.get("Properties", {})
        if rtype == "AWS::IAM::ManagedPolicy":
            path = props.get("Path", "/")
            name = self.resolve(props.get("ManagedPolicyName", logical_id))
            return f"arn:{self.env.partition}:iam::{self.env.account}:policy{path}{name}"
        if rtype == "AWS::StepFunctions::StateMachine":
            name = self.resolve(props.get("StateMachineName", logical_id))
            return f"arn:{self.env.partition}:states:{self.env.region}:{self.env.account}:stateMachine:{name}"
        if rtype == "AWS::SSM::Parameter" and "Name" in props:
            return self.resolve(props["Name"])
        name_property = _NAME_PROPERTIES.get(rtype)
        if name_property and name_property in props:
            return str(self.resolve(props[name_property]))
        if rtype == "AWS::KMS::Key":
            return f"00000000-0000-0000-0000-{abs(hash(logical_id)) % 10**12:012d}"
        return logical_id

    def ref(self, name: str) -> str:
        pseudo = {
            "AWS::AccountId": self.env.account,
            "AWS::Region": self.env.region,
            "AWS::Partition": self.env.partition,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.env.stack_name,
            "AWS::NoValue": "",
        }
        if name in pseudo:
            return pseudo[name]
        return self._physical_id(name)

    def get_att(self, logical_id: str, attribute: str) -> str:
        resource = self.resources.get(logical_id)
        if resource is None or attribute != "Arn" or resource["Type"] not in _ARN_FORMATS:
            raise UnresolvedIntrinsic(f"Fn::GetAtt {logical_id}.{attribute}")
        physical = self._physical_id(logical_id)
        if resource["Type"] == "AWS::SSM::Parameter":
            physical = physical.lstrip("/")
        return _ARN_FORMATS[resource["Type"]].format(
            partition=self.env.partition, region=self.env.region, account=self.env.account, id=physical
        )

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(v) for v in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical_id, attribute)
            if key == "Fn::Join":
                separator, parts = arg
                return separator.join(str(self.resolve(p)) for p in self.resolve(parts))
            if key == "Fn::Select":
                index, values = arg
                return self.resolve(values)[int(self.resolve(index))]
            if key == "Fn::Split":
                separator, value = arg
                return str(self.resolve(value)).split(separator)
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                variables = {k: self.resolve(v) for k, v in variables.items()}

                def substitute(match: re.Match[str]) -> str:
                    name = match.group(1)
                    if name in variables:
                        return str(variables[name])
                    if "." in name:
                        return self.get_att(*name.split(".", 1))
                    return self.ref(name)

                return re.sub(r"\$\{([^}!]+)\}", substitute, text)
            if key.startswith("Fn::") or key == "Condition":
                raise UnresolvedIntrinsic(f"{key} is not resolved by the IAM check")
        return {k: self.resolve(v) for k, v in node.items()}


@dataclass(frozen=True)
class RolePolicies:
    """What one role may do: its identity statements and its boundary's (None: no boundary)."""

    role_logical_id: str
    statements: list[Statement]
    boundary: list[Statement] | None


def role_policies(template: Mapping[str, Any], resolver: Resolver) -> dict[str, RolePolicies]:
    """Role logical id -> its resolved policies (inline, attached AWS::IAM::Policy, managed
    policies of the template, and the permissions boundary)."""
    resources = template["Resources"]
    managed = {
        resolver.ref(logical_id): r["Properties"]["PolicyDocument"]
        for logical_id, r in resources.items()
        if r["Type"] == "AWS::IAM::ManagedPolicy"
    }
    statements: dict[str, list[Statement]] = {}
    for resource in resources.values():
        props = resource.get("Properties", {})
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for role in props.get("Roles", []):
                statements.setdefault(role["Ref"], []).extend(props["PolicyDocument"]["Statement"])
    out: dict[str, RolePolicies] = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        props = resource.get("Properties", {})
        own = list(statements.get(logical_id, []))
        for inline in props.get("Policies", []):
            own.extend(inline["PolicyDocument"]["Statement"])
        for arn in props.get("ManagedPolicyArns", []):
            resolved = resolver.resolve(arn)
            if resolved not in managed:
                raise UnresolvedIntrinsic(f"{logical_id} attaches a managed policy outside the template: {resolved}")
            own.extend(managed[resolved]["Statement"])
        boundary = None
        if "PermissionsBoundary" in props:
            boundary_arn = resolver.resolve(props["PermissionsBoundary"])
            if boundary_arn not in managed:
                raise UnresolvedIntrinsic(f"{logical_id}'s boundary is outside the template: {boundary_arn}")
            boundary = [dict(s) for s in resolver.resolve(managed[boundary_arn]["Statement"])]
        out[logical_id] = RolePolicies(logical_id, [dict(s) for s in resolver.resolve(own)], boundary)
    return out


def function_policies(template: Mapping[str, Any], resolver: Resolver) -> dict[str, RolePolicies]:
    """Lambda function name (as deployed) -> its execution role's policies."""
    roles = role_policies(template, resolver)
    out = {}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Function":
            role = resource["Properties"]["Role"]["Fn::GetAtt"][0]
            out[resolver.ref(logical_id)] = roles[role]
    return out


def named_role_policies(template: Mapping[str, Any], resolver: Resolver) -> dict[str, RolePolicies]:
    """Role name (its physical id, as deployed) -> its policies: the roles a function hands to a
    service (the Scheduler role) are found by the name at the end of their ARN."""
    return {
        str(resolver.ref(logical_id)): policies for logical_id, policies in role_policies(template, resolver).items()
    }


def managed_policy_statements(template: Mapping[str, Any], resolver: Resolver, name_suffix: str) -> list[Statement]:
    """The resolved statements of the template's managed policy whose name ends with `name_suffix`."""
    for resource in template["Resources"].values():
        name = resource.get("Properties", {}).get("ManagedPolicyName", "")
        if resource["Type"] == "AWS::IAM::ManagedPolicy" and str(resolver.resolve(name)).endswith(name_suffix):
            return [dict(s) for s in resolver.resolve(resource["Properties"]["PolicyDocument"]["Statement"])]
    raise KeyError(f"no managed policy named *{name_suffix}")


def deployed_resolver(template: Mapping[str, Any], cloudformation: Any, stack_name: str) -> Resolver:
    """A resolver using the physical ids of a deployed stack (its account and region from the
    stack's own ARN)."""
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    _, partition, _, region, account, _ = stack["StackId"].split(":", 5)
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
        if r.get("PhysicalResourceId")  # the emulator leaves some (an Events rule) without one
    }
    return Resolver(template, Environment(account, region, partition, stack_name), physical)


def stack_ledger(template: Mapping[str, Any], resolver: Resolver, **kwargs: Any) -> Any:
    """A ledger that knows what the template says about keys and boundaries: each managed policy
    (a boundary the instance roles are created under), each table's and bucket's customer-managed
    key and each key's policy (KMS decides a key's use by it)."""
    from .requests import Ledger

    ledger = Ledger(resolver.env.account, resolver.env.partition, **kwargs)
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            ledger.managed_policies[resolver.ref(logical_id)] = [
                dict(s) for s in resolver.resolve(props["PolicyDocument"]["Statement"])
            ]
        elif resource["Type"] == "AWS::KMS::Key":
            statements = resolver.resolve(props["KeyPolicy"]["Statement"])
            ledger.key_policies[resolver.get_att(logical_id, "Arn")] = [dict(s) for s in statements]
        elif resource["Type"] == "AWS::DynamoDB::Table":
            key = (props.get("SSESpecification") or {}).get("KMSMasterKeyId")
            if key:
                ledger.table_keys[str(resolver.resolve(props["TableName"]))] = str(resolver.resolve(key))
        elif resource["Type"] == "AWS::S3::Bucket":
            rules = (props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration", [])
            keys = [r["ServerSideEncryptionByDefault"].get("KMSMasterKeyID") for r in rules]
            if keys and keys[0]:
                ledger.bucket_keys[str(resolver.ref(logical_id))] = str(resolver.resolve(keys[0]))
    return ledger
