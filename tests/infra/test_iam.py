"""IAM: instance roles and profiles, PassRole, StartExecution, conditions, boundary."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from tests.infra.helpers import as_list, attached_policies, resources_of, statements_of


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
        for p in attached_policies(template).values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_instance_roles_are_per_cluster_under_a_boundary(synthesized_template: dict[str, Any]) -> None:
    # No shared instance roles or profiles: each cluster gets its own (kubestep/resources/instance_roles.py).
    assert not resources_of(synthesized_template, "AWS::IAM::InstanceProfile")
    boundaries = {
        p["Properties"]["ManagedPolicyName"]: p
        for p in resources_of(synthesized_template, "AWS::IAM::ManagedPolicy").values()
        if "ManagedPolicyName" in p["Properties"]
    }
    boundary = boundaries["demo-us-east-1-instance-boundary"]["Properties"]["PolicyDocument"]["Statement"]
    actions = {a for s in boundary for a in as_list(s["Action"])}
    assert {"secretsmanager:GetSecretValue", "ec2:AttachVolume", "route53:ChangeResourceRecordSets"} <= actions
    assert not any(a.startswith("iam:") and a != "iam:CreateServiceLinkedRole" for a in actions)


def test_pass_role_only_to_ec2_and_only_the_services_instance_roles(synthesized_template: dict[str, Any]) -> None:
    """ClusterTasks passes the per-cluster instance roles to EC2 (and into their own instance
    profiles); the API passes the one
    Scheduler role (start UpdateCluster only) to EventBridge Scheduler. Nothing else passes roles."""
    pass_role = [
        (policy, s)
        for policy, s in statements_of(synthesized_template)
        if any(a in ("iam:PassRole", "iam:*", "*") for a in as_list(s["Action"]))
    ]
    assert len(pass_role) == 2
    policies = attached_policies(synthesized_template)
    by_role = {
        role: statement
        for policy_id, statement in pass_role
        for role in [r["Ref"] for r in policies[policy_id]["Properties"]["Roles"]]
    }
    instance_roles = by_role.pop(_function_role(synthesized_template, "demo-cluster-tasks"))
    assert json.dumps(instance_roles["Resource"]).endswith(':role/kubestep/demo/us-east-1/instances/gke-*"]]}')
    # IfExists: AddRoleToInstanceProfile passes the role too and names no service.
    assert instance_roles["Condition"] == {"StringEqualsIfExists": {"iam:PassedToService": "ec2.amazonaws.com"}}
    scheduler = by_role.pop(_function_role(synthesized_template, "demo-api"))
    assert json.dumps(scheduler["Resource"]).endswith(':role/kubestep/demo/us-east-1/scheduler/*"]]}')
    assert scheduler["Condition"] == {"StringEquals": {"iam:PassedToService": "scheduler.amazonaws.com"}}
    assert not by_role
    # IAM's `*` matches `/` too: the instance roles' path must not contain the Scheduler role's.
    instance_pattern = json.dumps(instance_roles["Resource"]).split(":role")[-1].split('"')[0]
    scheduler_pattern = json.dumps(scheduler["Resource"]).split(":role")[-1].split('"')[0]
    assert not fnmatch.fnmatchcase(scheduler_pattern.replace("*", "SchedulerRole"), instance_pattern)


def test_roles_are_created_only_with_the_boundary(synthesized_template: dict[str, Any]) -> None:
    creates = [s for _, s in statements_of(synthesized_template) if "iam:CreateRole" in as_list(s["Action"])]
    assert len(creates) == 1
    (statement,) = creates
    assert set(as_list(statement["Action"])) == {"iam:CreateRole", "iam:PutRolePolicy"}
    condition = statement["Condition"]["StringEquals"]["iam:PermissionsBoundary"]
    assert condition == {"Ref": next(iter(resources_of(synthesized_template, "AWS::IAM::ManagedPolicy")))} or (
        "Ref" in json.dumps(condition)
    )


def test_only_the_api_starts_any_execution_and_only_of_its_own_machines(
    synthesized_template: dict[str, Any], workflows: tuple[str, ...]
) -> None:
    """The API starts its own machines; the upgrade planner and the Scheduler role only
    UpdateCluster; ClusterTasks (PlanRepairs) only AutoRepair; the planner rule's role (CDK's)
    only PlanUpgrades, the sweep rule's only SweepOrphans, the repair rule's only PlanRepairs. No
    one else starts anything."""

    def machine(workflow: str) -> str:
        return json.dumps(
            {
                "Fn::Join": [
                    "",
                    ["arn:aws:states:us-east-1:", {"Ref": "AWS::AccountId"}, f":stateMachine:demo-{workflow}"],
                ]
            }
        )

    policies = attached_policies(synthesized_template)
    machines = resources_of(synthesized_template, "AWS::StepFunctions::StateMachine")
    plan_upgrades = next(i for i, m in machines.items() if m["Properties"]["StateMachineName"] == "demo-PlanUpgrades")
    roles = resources_of(synthesized_template, "AWS::IAM::Role")
    scheduler_role = next(
        i for i, r in roles.items() if r["Properties"].get("Path") == "/kubestep/demo/us-east-1/scheduler/"
    )
    starts: dict[str, list[str]] = {}
    for policy_id, statement in statements_of(synthesized_template):
        if any(a.startswith("states:Start") or a in ("states:*", "*") for a in as_list(statement["Action"])):
            assert as_list(statement["Action"]) == ["states:StartExecution"]
            for role in policies[policy_id]["Properties"]["Roles"]:
                starts.setdefault(role["Ref"], []).extend(json.dumps(r) for r in as_list(statement["Resource"]))
    assert sorted(starts.pop(_function_role(synthesized_template, "demo-api"))) == sorted(machine(w) for w in workflows)
    assert starts.pop(_function_role(synthesized_template, "demo-upgrade-planner")) == [machine("UpdateCluster")]
    assert starts.pop(scheduler_role) == [machine("UpdateCluster")]
    assert starts.pop(_function_role(synthesized_template, "demo-cluster-tasks")) == [machine("AutoRepair")]
    # The EventBridge rules' roles (CDK's): the planner's, the daily sweep's and the repair check's.
    sweeper = next(i for i, m in machines.items() if m["Properties"]["StateMachineName"] == "demo-SweepOrphans")
    repairs = next(i for i, m in machines.items() if m["Properties"]["StateMachineName"] == "demo-PlanRepairs")
    rules = [[json.dumps({"Ref": plan_upgrades})], [json.dumps({"Ref": sweeper})], [json.dumps({"Ref": repairs})]]
    assert sorted(starts.values()) == sorted(rules)
    for role in starts:
        trust = roles[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert [s["Principal"] for s in trust] == [{"Service": "events.amazonaws.com"}]


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
            owner = statement["Condition"]["StringEquals"]["aws:ResourceTag/gke:management-service"]
            assert owner == "demo", action
    assert seen == conditioned


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
        if statement.get("Sid") in ("Everything", "PreflightDescribe"):
            continue  # kms:DescribeKey on *: the boundary's cap, and the look-up of keys a manifest names
        assert statement["Resource"] == "arn:aws:kms:eu-west-1:123456789012:key/*"
        assert statement["Condition"]["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": ["alias/platform"]}
