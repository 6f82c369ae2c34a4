"""The five Lambda functions, and the guard that every function in the template is Python."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubestep.models import AWSManagementService
from tests.infra.helpers import resources_of

FUNCTIONS = {
    "demo-network-tasks": "lambdas.network_tasks.handler",
    "demo-cluster-tasks": "lambdas.cluster_tasks.handler",
    "demo-execution-events": "lambdas.execution_events.handler",
    "demo-api": "lambdas.api.handler",
    "demo-upgrade-planner": "lambdas.upgrade_planner.handler",
}


def _functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["Properties"]["FunctionName"]: f for f in resources_of(template, "AWS::Lambda::Function").values()}


def test_the_five_functions(synthesized_template: dict[str, Any]) -> None:
    functions = _functions(synthesized_template)
    assert sorted(functions) == sorted(FUNCTIONS)
    code = {json.dumps(f["Properties"]["Code"], sort_keys=True) for f in functions.values()}
    assert len(code) == 1, "all functions share one code asset"
    for name, function in functions.items():
        props = function["Properties"]
        assert props["Handler"] == FUNCTIONS[name]
        assert props["Runtime"] == "python3.13"
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert "S3Bucket" in props["Code"], "a file asset, not inline code or an image"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_environment(synthesized_template: dict[str, Any], name: str) -> None:
    table_id = next(iter(resources_of(synthesized_template, "AWS::DynamoDB::Table")))
    key_id = next(iter(resources_of(synthesized_template, "AWS::KMS::Key")))
    env = _functions(synthesized_template)[name]["Properties"]["Environment"]["Variables"]
    assert env["POWERTOOLS_SERVICE_NAME"] == "kubestep"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "kubestep"
    assert env["KUBESTEP_SERVICE_NAME"] == "demo"
    assert env["KUBESTEP_TABLE_NAME"] == {"Ref": table_id}
    assert env["KUBESTEP_KMS_KEY_ARN"] == {"Fn::GetAtt": [key_id, "Arn"]}
    assert env["KUBESTEP_TABLE_ARN"] == {"Fn::GetAtt": [table_id, "Arn"]}
    assert env["KUBESTEP_INSTANCE_ROLE_PATH"] == "/kubestep/demo/"
    assert "Ref" in json.dumps(env["KUBESTEP_INSTANCE_ROLE_BOUNDARY_ARN"])
    # Built from the name (no Ref to a state machine: that would be a dependency cycle).
    assert env["KUBESTEP_STATE_MACHINE_ARN_PREFIX"] == {
        "Fn::Join": ["", ["arn:aws:states:us-east-1:", {"Ref": "AWS::AccountId"}, ":stateMachine:demo-"]]
    }
    # The manifest is not in the environment (4 KB limit) but in an SSM parameter.
    assert "KUBESTEP_MANAGEMENT_SERVICE" not in env
    (parameter,) = resources_of(synthesized_template, "AWS::SSM::Parameter").values()
    assert env["KUBESTEP_MANAGEMENT_SERVICE_PARAMETER"] == {
        "Ref": next(iter(resources_of(synthesized_template, "AWS::SSM::Parameter")))
    }
    manifest = parameter["Properties"]["Value"]
    assert isinstance(manifest, str) and "\n" not in manifest and ": " not in manifest, "compact JSON"
    service = AWSManagementService.model_validate_json(manifest)
    assert service.name == "demo"
    assert service.spec.region == "us-east-1"


def test_each_function_has_its_own_log_group_with_retention(synthesized_template: dict[str, Any]) -> None:
    log_groups = resources_of(synthesized_template, "AWS::Logs::LogGroup")
    for name, function in _functions(synthesized_template).items():
        ref = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        props = log_groups[ref]["Properties"]
        assert props["LogGroupName"] == f"/aws/lambda/{name}"
        assert props["RetentionInDays"] == 30


def test_every_lambda_function_is_python(synthesized_template: dict[str, Any]) -> None:
    """The "no Node.js custom resource" guard (DESIGN §6): log_retention, AwsCustomResource,
    autoDeleteObjects and a VPC's restrictDefaultSecurityGroup would each add a Node.js Lambda."""
    runtimes = {}
    for logical_id, resource in synthesized_template["Resources"].items():
        assert not resource["Type"].startswith("Custom::"), f"custom resource {logical_id}"
        assert resource["Type"] != "AWS::CloudFormation::CustomResource", logical_id
        if resource["Type"] in ("AWS::Lambda::Function", "AWS::Serverless::Function"):
            runtimes[logical_id] = resource["Properties"].get("Runtime")
    assert len(runtimes) == len(FUNCTIONS)
    assert all(str(r).startswith("python") for r in runtimes.values()), runtimes
    assert "nodejs" not in json.dumps(synthesized_template)


def test_function_roles_write_only_their_own_log_group(synthesized_template: dict[str, Any]) -> None:
    roles = resources_of(synthesized_template, "AWS::IAM::Role")
    for function in _functions(synthesized_template).values():
        role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
        assert "ManagedPolicyArns" not in roles[role_id]["Properties"], "no AWSLambdaBasicExecutionRole"
        log_group_id = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        policies = [
            p
            for p in resources_of(synthesized_template, "AWS::IAM::Policy").values()
            if {"Ref": role_id} in p["Properties"]["Roles"]
        ]
        log_statements = [
            s
            for p in policies
            for s in p["Properties"]["PolicyDocument"]["Statement"]
            if any(
                str(a).startswith("logs:") for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
            )
        ]
        assert log_statements == [
            {
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Effect": "Allow",
                "Resource": {"Fn::GetAtt": [log_group_id, "Arn"]},
            }
        ]


def test_scheduled_upgrades_are_wired(synthesized_template: dict[str, Any]) -> None:
    """The planner rule starts PlanUpgrades on the manifest's schedule; the Scheduler role may
    only start UpdateCluster, and only Scheduler (of this account) may assume it."""
    rules = {
        r["Properties"]["Name"]: r["Properties"]
        for r in resources_of(synthesized_template, "AWS::Events::Rule").values()
    }
    planner = rules["demo-plan-upgrades"]
    assert planner["ScheduleExpression"] == "rate(15 minutes)"
    [target] = planner["Targets"]
    machines = resources_of(synthesized_template, "AWS::StepFunctions::StateMachine")
    plan_id = next(i for i, m in machines.items() if m["Properties"]["StateMachineName"] == "demo-PlanUpgrades")
    assert target["Arn"] == {"Ref": plan_id}
    roles = resources_of(synthesized_template, "AWS::IAM::Role")
    scheduler = next(r for r in roles.values() if r["Properties"].get("Path") == "/kubestep/demo/scheduler/")
    [trust] = scheduler["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]
    policies = resources_of(synthesized_template, "AWS::IAM::Policy").values()
    granted = [
        s
        for p in policies
        if any(r.get("Ref") in {i for i, role in roles.items() if role is scheduler} for r in p["Properties"]["Roles"])
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert [s["Action"] for s in granted] == ["states:StartExecution"]
    assert "demo-UpdateCluster" in json.dumps(granted[0]["Resource"])
