"""The CloudWatch dashboard: every widget names metrics that exist — the Powertools metrics the
code emits (namespace and `service` dimension from the functions' environment), each state
machine's execution metrics, each function's errors and throttles, the API's errors and latency."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.infra.helpers import resources_of

ROOT = Path(__file__).resolve().parents[2]


def _body(template: dict[str, Any]) -> dict[str, Any]:
    """The dashboard body with each CloudFormation reference written as `<Ref:LogicalId>`."""
    (dashboard,) = resources_of(template, "AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    text = ""
    for part in parts:
        if isinstance(part, str):
            text += part
        elif "Ref" in part:
            text += f"<Ref:{part['Ref']}>"
        elif "Fn::GetAtt" in part:
            text += f"<GetAtt:{'.'.join(part['Fn::GetAtt'])}>"
        else:
            text += "<" + json.dumps(part) + ">"
    return json.loads(text)


def _metrics(body: dict[str, Any]) -> list[list[Any]]:
    return [m for w in body["widgets"] if w["type"] == "metric" for m in w["properties"]["metrics"]]


def _emitted_metric_names() -> set[str]:
    names = set()
    for path in [*sorted((ROOT / "kubestep" / "api").rglob("*.py")), *sorted((ROOT / "lambdas").glob("*.py"))]:
        names |= set(re.findall(r'add_metric\(name="([A-Za-z]+)"', path.read_text()))
    return names


def test_dashboard_is_named_after_the_service(synthesized_template: dict[str, Any]) -> None:
    (dashboard,) = resources_of(synthesized_template, "AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == "kubestep-demo"


def test_every_powertools_metric_the_code_emits_is_graphed(synthesized_template: dict[str, Any]) -> None:
    function = next(iter(resources_of(synthesized_template, "AWS::Lambda::Function").values()))
    variables = function["Properties"]["Environment"]["Variables"]
    namespace, service = variables["POWERTOOLS_METRICS_NAMESPACE"], variables["POWERTOOLS_SERVICE_NAME"]
    graphed = {m[1] for m in _metrics(_body(synthesized_template)) if m[0] == namespace}
    emitted = _emitted_metric_names()
    assert {"OperationStarted", "StepFailed", "StepSucceeded"} <= emitted
    assert graphed == emitted
    for metric in _metrics(_body(synthesized_template)):
        if metric[0] == namespace:
            assert metric[2:4] == ["service", service], metric  # the dimension Powertools adds


def test_each_state_machine_has_its_execution_metrics(synthesized_template: dict[str, Any]) -> None:
    machines = set(resources_of(synthesized_template, "AWS::StepFunctions::StateMachine"))
    assert len(machines) >= 4
    by_name: dict[str, set[str]] = {}
    for metric in _metrics(_body(synthesized_template)):
        if metric[0] == "AWS/States":
            assert metric[2] == "StateMachineArn"
            by_name.setdefault(metric[1], set()).add(metric[3])
    wanted = {"ExecutionsStarted", "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionTime"}
    assert set(by_name) == wanted
    for name in wanted:
        assert by_name[name] == {f"<Ref:{logical_id}>" for logical_id in machines}, name


def test_each_function_has_errors_and_throttles(synthesized_template: dict[str, Any]) -> None:
    functions = set(resources_of(synthesized_template, "AWS::Lambda::Function"))
    by_name: dict[str, set[str]] = {}
    for metric in _metrics(_body(synthesized_template)):
        if metric[0] == "AWS/Lambda":
            assert metric[2] == "FunctionName"
            by_name.setdefault(metric[1], set()).add(metric[3])
    assert set(by_name) == {"Errors", "Throttles"}
    for name in by_name:
        assert by_name[name] == {f"<Ref:{logical_id}>" for logical_id in functions}, name


def test_api_errors_and_latency(synthesized_template: dict[str, Any]) -> None:
    (api,) = resources_of(synthesized_template, "AWS::ApiGateway::RestApi").values()
    api_metrics = [m for m in _metrics(_body(synthesized_template)) if m[0] == "AWS/ApiGateway"]
    assert {m[1] for m in api_metrics} == {"Count", "4XXError", "5XXError", "Latency"}
    assert all(m[2:4] == ["ApiName", api["Properties"]["Name"]] for m in api_metrics)
