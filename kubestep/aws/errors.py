"""Every AWS error code kubestep reacts to, named once, and the predicates steps use.

Codes come from the services' API references and botocore's own waiters (e.g. EC2's
`NatGatewayAvailable` waiter matches `NatGatewayNotFound`); nothing outside this module spells
an AWS error code (a test keeps it so)."""

from __future__ import annotations

from enum import StrEnum

from botocore.exceptions import ClientError


class Kind(StrEnum):
    """AWS resource kinds whose "does not exist" answers kubestep tells apart."""

    VPC = "vpc"
    SUBNET = "subnet"
    SECURITY_GROUP = "security-group"
    INTERNET_GATEWAY = "internet-gateway"
    ELASTIC_IP = "elastic-ip"
    ROUTE_TABLE = "route-table"
    NAT_GATEWAY = "nat-gateway"
    VPC_ENDPOINT = "vpc-endpoint"
    VOLUME = "volume"
    INSTANCE = "instance"
    LAUNCH_TEMPLATE = "launch-template"
    LAUNCH_TEMPLATE_VERSION = "launch-template-version"
    KEY_PAIR = "key-pair"
    IMAGE = "image"
    NETWORK_INTERFACE = "network-interface"
    LOAD_BALANCER = "load-balancer"
    TARGET_GROUP = "target-group"
    LISTENER = "listener"
    SECRET = "secret"
    EXECUTION = "execution"
    STATE_MACHINE = "state-machine"
    HOSTED_ZONE = "hosted-zone"
    IAM_ENTITY = "iam-entity"
    PARAMETER = "ssm-parameter"
    QUEUE = "sqs-queue"
    SCHEDULE = "schedule"
    STACK = "cloudformation-stack"
    KMS_KEY = "kms-key"
    EVENT_RULE = "eventbridge-rule"
    S3_OBJECT = "s3-object"


NOT_FOUND: dict[Kind, frozenset[str]] = {
    Kind.VPC: frozenset({"InvalidVpcID.NotFound"}),
    Kind.SUBNET: frozenset({"InvalidSubnetID.NotFound"}),
    Kind.SECURITY_GROUP: frozenset({"InvalidGroup.NotFound", "InvalidGroupId.Malformed"}),
    Kind.INTERNET_GATEWAY: frozenset({"InvalidInternetGatewayID.NotFound"}),
    Kind.ELASTIC_IP: frozenset({"InvalidAllocationID.NotFound"}),
    Kind.ROUTE_TABLE: frozenset({"InvalidRouteTableID.NotFound"}),
    # botocore's NatGatewayAvailable/Deleted waiters match NatGatewayNotFound; calls that take a
    # NAT gateway id as a parameter (CreateRoute) answer InvalidNatGatewayID.NotFound.
    Kind.NAT_GATEWAY: frozenset({"NatGatewayNotFound", "InvalidNatGatewayID.NotFound"}),
    Kind.VPC_ENDPOINT: frozenset({"InvalidVpcEndpointId.NotFound"}),
    Kind.VOLUME: frozenset({"InvalidVolume.NotFound"}),
    Kind.INSTANCE: frozenset({"InvalidInstanceID.NotFound"}),
    Kind.LAUNCH_TEMPLATE: frozenset(
        {"InvalidLaunchTemplateId.NotFound", "InvalidLaunchTemplateName.NotFoundException"}
    ),
    Kind.LAUNCH_TEMPLATE_VERSION: frozenset({"InvalidLaunchTemplateId.VersionNotFound"}),
    Kind.KEY_PAIR: frozenset({"InvalidKeyPair.NotFound"}),
    Kind.IMAGE: frozenset({"InvalidAMIID.NotFound", "InvalidAMIID.Malformed"}),
    Kind.NETWORK_INTERFACE: frozenset({"InvalidNetworkInterfaceID.NotFound"}),
    Kind.LOAD_BALANCER: frozenset({"LoadBalancerNotFound"}),
    Kind.TARGET_GROUP: frozenset({"TargetGroupNotFound"}),
    Kind.LISTENER: frozenset({"ListenerNotFound"}),
    Kind.SECRET: frozenset({"ResourceNotFoundException"}),
    Kind.EXECUTION: frozenset({"ExecutionDoesNotExist"}),
    Kind.STATE_MACHINE: frozenset({"StateMachineDoesNotExist"}),
    Kind.HOSTED_ZONE: frozenset({"NoSuchHostedZone"}),
    Kind.IAM_ENTITY: frozenset({"NoSuchEntity"}),
    Kind.PARAMETER: frozenset({"ParameterNotFound"}),
    Kind.QUEUE: frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}),
    Kind.SCHEDULE: frozenset({"ResourceNotFoundException"}),
    Kind.STACK: frozenset({"ValidationError"}),
    Kind.KMS_KEY: frozenset({"NotFoundException"}),
    Kind.EVENT_RULE: frozenset({"ResourceNotFoundException"}),
    # HeadObject has no body: its error code is the HTTP status.
    Kind.S3_OBJECT: frozenset({"NoSuchKey", "404"}),
}

# "Already exists" answers: an earlier attempt (or a concurrent one) won; read it back.
ALREADY_EXISTS: dict[Kind, frozenset[str]] = {
    Kind.SECURITY_GROUP: frozenset({"InvalidGroup.Duplicate"}),
    Kind.LAUNCH_TEMPLATE: frozenset({"InvalidLaunchTemplateName.AlreadyExistsException"}),
    Kind.SECRET: frozenset({"ResourceExistsException"}),
    Kind.EXECUTION: frozenset({"ExecutionAlreadyExists"}),
    Kind.HOSTED_ZONE: frozenset({"HostedZoneAlreadyExists", "ConflictingDomainExists"}),
    Kind.IAM_ENTITY: frozenset({"EntityAlreadyExists"}),
    Kind.SCHEDULE: frozenset({"ConflictException"}),
}

# Auto Scaling answers "AlreadyExists" for a group name in use.
AUTO_SCALING_GROUP_EXISTS = "AlreadyExists"
# Auto Scaling answers ValidationError ("... not found") for a group that is gone.
AUTO_SCALING_VALIDATION = "ValidationError"
# IAM: AddRoleToInstanceProfile of a profile that holds its one role already (a retried call).
IAM_LIMIT_EXCEEDED = "LimitExceeded"
# Secrets Manager: DeleteSecret of a secret already scheduled for deletion (a retried call), or
# CreateSecret of a name whose secret is scheduled for deletion.
SECRET_INVALID_REQUEST = "InvalidRequestException"
# A rule that is already there (AuthorizeSecurityGroupIngress) or already gone (Revoke...).
PERMISSION_DUPLICATE = "InvalidPermission.Duplicate"
PERMISSION_NOT_FOUND = "InvalidPermission.NotFound"

# Something else still uses the resource: wait, then retry the delete.
IN_USE = frozenset(
    {
        "DependencyViolation",
        "VolumeInUse",
        "IncorrectState",
        "ResourceInUse",
        "ScalingActivityInProgress",
        "DeleteConflict",
        "InvalidChangeBatch",  # Route 53: the record changed under us
    }
)
DEPENDENCY_VIOLATION = "DependencyViolation"

# DynamoDB's answers to a conditional write that lost.
CONDITIONAL_CHECK_FAILED = "ConditionalCheckFailedException"
TRANSACTION_CANCELED = "TransactionCanceledException"

# Throttling, as botocore's retry handler classifies it (botocore/retries/standard.py).
THROTTLING = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)

# What each API protocol answers when it throttles, and when IAM denies a call (botocore parses
# them by protocol); the local runtime's fault injection answers with these.
THROTTLING_BY_PROTOCOL = {"ec2": "RequestLimitExceeded", "json": "TooManyRequestsException", "query": "Throttling"}
UNAUTHORIZED_BY_PROTOCOL = {"ec2": "UnauthorizedOperation", "json": "AccessDeniedException", "query": "AccessDenied"}

# A request AWS refused for the caller's input (a bad id or instance type named in a spec).
INVALID_PARAMETER = frozenset({"InvalidParameterValue", "InvalidParameterCombination", "InvalidParameter"})
INVALID_INSTANCE_TYPE = "InvalidInstanceType"
UNAUTHORIZED = frozenset({"UnauthorizedOperation", "AccessDenied", "AccessDeniedException"})


def error_code(exc: BaseException) -> str:
    if not isinstance(exc, ClientError):
        return ""
    return exc.response.get("Error", {}).get("Code", "")


def error_message(exc: BaseException) -> str:
    if not isinstance(exc, ClientError):
        return str(exc)
    return exc.response.get("Error", {}).get("Message", "")


def is_error(exc: BaseException, *codes: str) -> bool:
    return isinstance(exc, ClientError) and error_code(exc) in codes


def is_not_found(exc: BaseException, kind: Kind) -> bool:
    return is_error(exc, *NOT_FOUND[kind])


def is_already_exists(exc: BaseException, kind: Kind) -> bool:
    return is_error(exc, *ALREADY_EXISTS[kind])


def is_in_use(exc: BaseException) -> bool:
    return is_error(exc, *IN_USE)


def is_throttling(exc: BaseException) -> bool:
    return is_error(exc, *THROTTLING)


def is_condition_failed(exc: BaseException) -> bool:
    return is_error(exc, CONDITIONAL_CHECK_FAILED, TRANSACTION_CANCELED)


def is_group_gone(exc: BaseException) -> bool:
    """Auto Scaling's answer for a group that no longer exists."""
    return is_error(exc, AUTO_SCALING_VALIDATION) and "not found" in error_message(exc).lower()


def is_instance_not_managed(exc: BaseException) -> bool:
    """Auto Scaling's answer to TerminateInstanceInAutoScalingGroup for an instance no group holds
    any more ("Instance Id not found - No managed instance found for instance ID i-..."): a resent
    terminate whose first call already took the instance out."""
    return is_error(exc, AUTO_SCALING_VALIDATION) and "no managed instance found" in error_message(exc).lower()


def is_launch_template_not_visible(exc: BaseException) -> bool:
    """Auto Scaling's words for a launch template it cannot see yet (eventual consistency)."""
    message = error_message(exc)
    return is_error(exc, AUTO_SCALING_VALIDATION) and "launch template" in message and "does not exist" in message


def is_instance_profile_not_visible(exc: BaseException) -> bool:
    """EC2/Auto Scaling refuse a just-created instance profile for ~10 s (IAM propagation)."""
    message = error_message(exc).lower()
    return is_error(exc, AUTO_SCALING_VALIDATION, *INVALID_PARAMETER) and "instance profile" in message


# Right after a create, AWS may not show the new resource to the next call yet (EC2's
# eventual consistency): a step that uses it must wait and retry, not fail.
NOT_YET_VISIBLE_KINDS = (
    Kind.VPC,
    Kind.SUBNET,
    Kind.SECURITY_GROUP,
    Kind.INTERNET_GATEWAY,
    Kind.ELASTIC_IP,
    Kind.ROUTE_TABLE,
    Kind.NAT_GATEWAY,
    Kind.VOLUME,
    Kind.INSTANCE,
    Kind.LAUNCH_TEMPLATE,
    Kind.TARGET_GROUP,
    Kind.LOAD_BALANCER,
    Kind.HOSTED_ZONE,
    Kind.IAM_ENTITY,
)


def not_yet_visible(exc: BaseException) -> bool:
    if not isinstance(exc, ClientError):
        return False
    if any(is_not_found(exc, kind) for kind in NOT_YET_VISIBLE_KINDS):
        return True
    return is_launch_template_not_visible(exc) or is_instance_profile_not_visible(exc)
