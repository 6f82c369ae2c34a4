"""One Standard state machine per stepfunctions/*.asl.json, with its definition inline."""

from __future__ import annotations

import json
from typing import Any

from infra.state_machines import STEPFUNCTIONS_DIR, discover_workflows
from tests.infra.conftest import CONTRACT_WORKFLOWS
from tests.infra.helpers import as_list, resources_of, statements_of


def _machines(template: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {
        m["Properties"]["StateMachineName"]: (logical_id, m)
        for logical_id, m in resources_of(template, "AWS::StepFunctions::StateMachine").items()
    }


def test_one_machine_per_asl_file(synthesized_template: dict[str, Any], workflows: tuple[str, ...]) -> None:
    assert workflows, "no workflows discovered"
    assert sorted(_machines(synthesized_template)) == sorted(f"demo-{w}" for w in workflows)
    for workflow in workflows:
        assert f"{workflow}StateMachineArn" in synthesized_template["Outputs"]


def test_the_contract_workflows_have_asl_files() -> None:
    present = discover_workflows(STEPFUNCTIONS_DIR)
    if not present:
        return  # the suite runs on stand-ins until the ASL files exist
    missing = [w for w in CONTRACT_WORKFLOWS if w not in present]
    assert not missing, f"stepfunctions/ lacks {missing} (docs/contracts.md)"


def test_standard_logging_all_without_execution_data_and_tracing(
    synthesized_template: dict[str, Any],
) -> None:
    log_groups = resources_of(synthesized_template, "AWS::Logs::LogGroup")
    for name, (_, machine) in _machines(synthesized_template).items():
        props = machine["Properties"]
        assert props["StateMachineType"] == "STANDARD"
        assert props["TracingConfiguration"] == {"Enabled": True}
        logging = props["LoggingConfiguration"]
        assert logging["Level"] == "ALL"
        assert logging["IncludeExecutionData"] is False
        (destination,) = logging["Destinations"]
        log_group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
        assert log_groups[log_group_id]["Properties"]["LogGroupName"] == f"/aws/vendedlogs/states/{name}"


def test_definition_is_inline_text_with_substitutions(synthesized_template: dict[str, Any]) -> None:
    functions = {
        f["Properties"]["FunctionName"]: logical_id
        for logical_id, f in resources_of(synthesized_template, "AWS::Lambda::Function").items()
    }
    for machine_name, (_, machine) in _machines(synthesized_template).items():
        props = machine["Properties"]
        assert "DefinitionS3Location" not in props, "from_file: neither cfn-lint nor moto can read it"
        definition = props["DefinitionString"]
        if isinstance(definition, dict):  # a Fn::Sub is fine too
            definition = definition["Fn::Sub"] if isinstance(definition["Fn::Sub"], str) else definition["Fn::Sub"][0]
        assert isinstance(definition, str)
        assert '"TimeoutSeconds"' in definition, f"{machine_name} must set TimeoutSeconds"
        assert props["DefinitionSubstitutions"] == {
            "NetworkTasksFunctionArn": {"Fn::GetAtt": [functions["demo-network-tasks"], "Arn"]},
            "ClusterTasksFunctionArn": {"Fn::GetAtt": [functions["demo-cluster-tasks"], "Arn"]},
            "UpgradePlannerFunctionArn": {"Fn::GetAtt": [functions["demo-upgrade-planner"], "Arn"]},
        }
        json.loads(definition)  # the placeholders sit inside strings: still valid JSON


def test_machines_may_invoke_exactly_the_three_task_functions(synthesized_template: dict[str, Any]) -> None:
    functions = {
        f["Properties"]["FunctionName"]: logical_id
        for logical_id, f in resources_of(synthesized_template, "AWS::Lambda::Function").items()
    }
    expected = sorted(
        json.dumps({"Fn::GetAtt": [functions[n], "Arn"]})
        for n in ("demo-network-tasks", "demo-cluster-tasks", "demo-upgrade-planner")
    )
    roles = {m["Properties"]["RoleArn"]["Fn::GetAtt"][0] for _, m in _machines(synthesized_template).values()}
    policies = resources_of(synthesized_template, "AWS::IAM::Policy")
    for role in roles:
        invoke = [
            s
            for p in policies.values()
            if {"Ref": role} in p["Properties"]["Roles"]
            for s in p["Properties"]["PolicyDocument"]["Statement"]
            if "lambda:InvokeFunction" in as_list(s["Action"])
        ]
        assert len(invoke) == 1
        assert sorted(json.dumps(r) for r in as_list(invoke[0]["Resource"])) == expected
    # Nobody else may invoke the task functions.
    for policy_id, statement in statements_of(synthesized_template):
        if "lambda:InvokeFunction" in as_list(statement["Action"]):
            assert any({"Ref": r} in policies[policy_id]["Properties"]["Roles"] for r in roles)


def test_execution_status_rule(synthesized_template: dict[str, Any], workflows: tuple[str, ...]) -> None:
    [rule] = [
        r for r in resources_of(synthesized_template, "AWS::Events::Rule").values() if "EventPattern" in r["Properties"]
    ]
    machines = _machines(synthesized_template)
    functions = {
        f["Properties"]["FunctionName"]: logical_id
        for logical_id, f in resources_of(synthesized_template, "AWS::Lambda::Function").items()
    }
    props = rule["Properties"]
    assert props["Name"] == "demo-execution-status"
    assert props["State"] == "ENABLED"
    pattern = props["EventPattern"]
    assert pattern["source"] == ["aws.states"]
    assert pattern["detail-type"] == ["Step Functions Execution Status Change"]
    assert sorted(pattern["detail"]["status"]) == ["ABORTED", "FAILED", "TIMED_OUT"]
    assert sorted(json.dumps(a) for a in pattern["detail"]["stateMachineArn"]) == sorted(
        json.dumps({"Ref": logical_id}) for logical_id, _ in machines.values()
    )
    (target,) = props["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [functions["demo-execution-events"], "Arn"]}
    permissions = [
        p["Properties"]
        for p in resources_of(synthesized_template, "AWS::Lambda::Permission").values()
        if p["Properties"]["Principal"] == "events.amazonaws.com"
    ]
    assert len(permissions) == 1
    assert permissions[0]["FunctionName"] == {"Fn::GetAtt": [functions["demo-execution-events"], "Arn"]}


def test_the_orphan_sweeper_runs_daily_and_deletes(synthesized_template: dict[str, Any]) -> None:
    """Issue 11: SweepOrphans once a day, not as a dry run."""
    (rule,) = [
        r["Properties"]
        for r in resources_of(synthesized_template, "AWS::Events::Rule").values()
        if r["Properties"]["Name"] == "demo-sweep-orphans"
    ]
    assert rule["ScheduleExpression"] == "rate(1 day)" and rule["State"] == "ENABLED"
    (target,) = rule["Targets"]
    machines = _machines(synthesized_template)
    assert target["Arn"] == {"Ref": machines["demo-SweepOrphans"][0]}
    assert json.loads(target["Input"]) == {"dryRun": False}
