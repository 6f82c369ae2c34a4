"""IAM: instance roles and profiles, PassRole, StartExecution, conditions, boundary."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.helpers import as_list, resources_of, statements_of


def _role_ids(template: dict[str, Any]) -> dict[str, str]:
    """RoleName -> logical id, for named roles."""
    return {
        r["Properties"]["RoleName"]: logical_id
        for logical_id, r in resources_of(template, "AWS::IAM::Role").items()
        if "RoleName" in r["Properties"]
    }


def _function_role(template: dict[str, Any], function_name: str) -> str:
    for function in resources_of(template, "AWS::Lambda::Function").values():
        if function["Properties"]["FunctionName"] == function_name:
            return function["Properties"]["Role"]["Fn::GetAtt"][0]
    raise AssertionError(function_name)


def _statements_of_role(template: dict[str, Any], role_id: str) -> list[dict[str, Any]]:
    return [
        s
        for p in resources_of(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_instance_roles_and_profiles(synthesized_template: dict[str, Any]) -> None:
    roles = _role_ids(synthesized_template)
    assert {"demo-control-plane", "demo-node"} <= set(roles)
    profiles = {
        p["Properties"]["InstanceProfileName"]: p["Properties"]["Roles"]
        for p in resources_of(synthesized_template, "AWS::IAM::InstanceProfile").values()
    }
    assert profiles == {
        "demo-control-plane": [{"Ref": roles["demo-control-plane"]}],
        "demo-node": [{"Ref": roles["demo-node"]}],
    }
    for name in ("demo-control-plane", "demo-node"):
        trust = resources_of(synthesized_template, "AWS::IAM::Role")[roles[name]]["Properties"][
            "AssumeRolePolicyDocument"
        ]
        assert trust["Statement"] == [
            {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}}
        ]


def test_pass_role_only_on_the_two_instance_roles(synthesized_template: dict[str, Any]) -> None:
    roles = _role_ids(synthesized_template)
    expected = sorted(json.dumps({"Fn::GetAtt": [roles[n], "Arn"]}) for n in ("demo-control-plane", "demo-node"))
    pass_role = [
        (policy, s)
        for policy, s in statements_of(synthesized_template)
        if any(a in ("iam:PassRole", "iam:*", "*") for a in as_list(s["Action"]))
    ]
    assert len(pass_role) == 1, "only the ClusterTasks function passes roles"
    policy_id, statement = pass_role[0]
    cluster_tasks_role = _function_role(synthesized_template, "demo-cluster-tasks")
    assert {"Ref": cluster_tasks_role} in resources_of(synthesized_template, "AWS::IAM::Policy")[policy_id][
        "Properties"
    ]["Roles"]
    assert sorted(json.dumps(r) for r in as_list(statement["Resource"])) == expected


def test_only_the_api_starts_executions_and_only_of_its_own_machines(
    synthesized_template: dict[str, Any], workflows: tuple[str, ...]
) -> None:
    api_role = _function_role(synthesized_template, "demo-api")
    starts = [
        (policy, s)
        for policy, s in statements_of(synthesized_template)
        if any(a.startswith("states:Start") or a in ("states:*", "*") for a in as_list(s["Action"]))
    ]
    assert len(starts) == 1
    policy_id, statement = starts[0]
    assert {"Ref": api_role} in resources_of(synthesized_template, "AWS::IAM::Policy")[policy_id]["Properties"]["Roles"]
    assert as_list(statement["Action"]) == ["states:StartExecution"]
    expected = sorted(
        json.dumps(
            {
                "Fn::Join": [
                    "",
                    ["arn:aws:states:us-east-1:", {"Ref": "AWS::AccountId"}, f":stateMachine:demo-{w}"],
                ]
            }
        )
        for w in workflows
    )
    assert sorted(json.dumps(r) for r in as_list(statement["Resource"])) == expected


def test_describe_execution_is_scoped_to_own_machines(synthesized_template: dict[str, Any]) -> None:
    for _, statement in statements_of(synthesized_template):
        if "states:DescribeExecution" in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                text = json.dumps(resource)
                assert ":execution:demo-" in text and text.endswith(':*"]]}'), text


def test_no_statement_allows_every_action(synthesized_template: dict[str, Any]) -> None:
    for policy_id, statement in statements_of(synthesized_template):
        for action in as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), (policy_id, action)
        assert "NotAction" not in statement and "NotResource" not in statement


def test_destructive_actions_are_conditioned_on_the_service_tag(synthesized_template: dict[str, Any]) -> None:
    conditioned = {
        "ec2:DeleteVpc",
        "ec2:DeleteSubnet",
        "ec2:DeleteNatGateway",
        "ec2:ReleaseAddress",
        "ec2:DeleteInternetGateway",
        "ec2:TerminateInstances",
        "ec2:DeleteLaunchTemplate",
        "autoscaling:DeleteAutoScalingGroup",
        "autoscaling:UpdateAutoScalingGroup",
    }
    seen = set()
    for _, statement in statements_of(synthesized_template):
        for action in set(as_list(statement["Action"])) & conditioned:
            seen.add(action)
            assert statement["Condition"] == {"StringEquals": {"aws:ResourceTag/gke:management-service": "demo"}}, (
                action
            )
    assert seen == conditioned


def test_control_plane_role(synthesized_template: dict[str, Any]) -> None:
    role = _role_ids(synthesized_template)["demo-control-plane"]
    statements = {s.get("Sid"): s for s in _statements_of_role(synthesized_template, role)}
    attach = statements["EtcdVolumeAttach"]
    assert sorted(attach["Action"]) == ["ec2:AttachVolume", "ec2:DetachVolume"]
    assert attach["Condition"] == {"StringEquals": {"aws:ResourceTag/gke:management-service": "demo"}}
    assert statements["ClusterSecrets"]["Action"] == "secretsmanager:GetSecretValue"
    assert json.dumps(statements["ClusterSecrets"]["Resource"]).endswith(':secret:gke-*"]]}')
    assert statements["ClusterSecrets"]["Condition"] == {
        "StringEquals": {"aws:ResourceTag/gke:management-service": "demo"}
    }
    assert statements["ServiceKeyDecrypt"]["Action"] == "kms:Decrypt"
    ccm = statements["CloudControllerManager"]["Action"]
    for action in (
        "ec2:DescribeInstances",
        "ec2:CreateSecurityGroup",
        "ec2:CreateTags",
        "elasticloadbalancing:CreateLoadBalancer",
        "elasticloadbalancing:RegisterTargets",
    ):
        assert action in ccm


def test_nodes_read_the_bootstrap_secret_but_decrypt_only_through_secrets_manager(
    synthesized_template: dict[str, Any],
) -> None:
    role = _role_ids(synthesized_template)["demo-node"]
    statements = {s.get("Sid"): s for s in _statements_of_role(synthesized_template, role)}
    assert statements["ClusterSecrets"]["Action"] == "secretsmanager:GetSecretValue"
    decrypt = statements["ServiceKeyDecryptViaSecretsManager"]
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}
    assert not any(
        a.startswith(("ec2:Attach", "ec2:Detach", "ec2:Create", "ec2:Delete", "elasticloadbalancing:"))
        for s in statements.values()
        for a in as_list(s["Action"])
    )


def test_instances_write_only_bootstrap_reports(synthesized_template: dict[str, Any]) -> None:
    roles = _role_ids(synthesized_template)
    table_id = next(iter(resources_of(synthesized_template, "AWS::DynamoDB::Table")))
    for name in ("demo-control-plane", "demo-node"):
        dynamodb = [
            s
            for s in _statements_of_role(synthesized_template, roles[name])
            if any(a.startswith("dynamodb:") for a in as_list(s["Action"]))
        ]
        assert dynamodb == [
            {
                "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem"],
                "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["BOOTSTRAP#*"]}},
                "Effect": "Allow",
                "Resource": {"Fn::GetAtt": [table_id, "Arn"]},
                "Sid": "BootstrapReport",
            }
        ]


def test_node_role_managed_policies(synthesized_template: dict[str, Any]) -> None:
    role = resources_of(synthesized_template, "AWS::IAM::Role")[_role_ids(synthesized_template)["demo-node"]]
    names = sorted(a["Fn::Join"][1][-1].split("/")[-1] for a in role["Properties"]["ManagedPolicyArns"])
    assert names == ["AmazonEC2ContainerRegistryReadOnly", "AmazonSSMManagedInstanceCore"]


def test_permissions_boundary_on_every_role(variant_template: dict[str, Any]) -> None:
    roles = resources_of(variant_template, "AWS::IAM::Role")
    assert roles
    for logical_id, role in roles.items():
        assert role["Properties"].get("PermissionsBoundary") == (
            "arn:aws:iam::123456789012:policy/platform-boundary"
        ), logical_id


def test_alias_key_is_matched_through_resource_aliases(variant_template: dict[str, Any]) -> None:
    kms = [s for _, s in statements_of(variant_template) if any(a.startswith("kms:") for a in as_list(s["Action"]))]
    assert kms
    for statement in kms:
        if statement.get("Sid") == "CloudControllerManager":
            continue  # kms:DescribeKey on *, as the cloud provider documents
        assert statement["Resource"] == "arn:aws:kms:eu-west-1:123456789012:key/*"
        assert statement["Condition"]["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": ["alias/platform"]}
