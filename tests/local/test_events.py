"""EventBridge stand-ins: execution status changes and scheduled rules reach Lambda targets."""

from __future__ import annotations

import json
import time

from kubestep_local.runtime import LocalRuntime


def _events_in_table(runtime: LocalRuntime, detail_type: str) -> list[dict]:
    table = runtime.outputs["TableName"]
    items = runtime.boto3_client("dynamodb").query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"EVENT#{detail_type}"}},
    )["Items"]
    return [json.loads(i["body"]["S"]) for i in items]


def test_failed_execution_delivers_status_change(runtime: LocalRuntime) -> None:
    description = runtime.run_execution("Failing", {"why": "test"}, name="failing-event", check=False)
    assert description["status"] == "FAILED"
    assert runtime.events.wait_idle(timeout=10)
    events = [
        e
        for e in _events_in_table(runtime, "Step Functions Execution Status Change")
        if e["detail"]["name"] == "failing-event"
    ]
    assert len(events) == 1
    event = events[0]
    assert event["source"] == "aws.states"
    assert event["resources"] == [description["executionArn"]]
    detail = event["detail"]
    assert detail["executionArn"] == description["executionArn"]
    assert detail["stateMachineArn"] == runtime.outputs["FailingStateMachineArn"]
    assert detail["status"] == "FAILED"
    assert detail["error"] == "Boom"
    assert json.loads(detail["input"]) == {"why": "test"}
    assert detail["output"] is None
    assert isinstance(detail["startDate"], int) and detail["stopDate"] >= detail["startDate"]
    assert set(event) >= {"version", "id", "detail-type", "source", "account", "time", "region", "resources"}


def test_succeeded_execution_matches_no_rule(runtime: LocalRuntime) -> None:
    runtime.run_execution("Fanout", {"items": []}, name="quiet-success")
    assert runtime.events.wait_idle(timeout=10)
    delivered = [d for d in runtime.events.deliveries() if d.event["detail"].get("name") == "quiet-success"]
    assert delivered == []


def test_cron_rule_fires_only_on_request(runtime: LocalRuntime) -> None:
    assert not [d for d in runtime.events.deliveries() if d.rule_name == "stub-nightly"]
    deliveries = runtime.events.fire_scheduled("stub-nightly")
    assert len(deliveries) == 1
    assert deliveries[0].event["detail-type"] == "Scheduled Event"
    assert deliveries[0].event["resources"][0].endswith(":rule/stub-nightly")
    assert deliveries[0].errored is False


def test_rate_rule_fires_on_the_time_scale(runtime: LocalRuntime) -> None:
    # rate(1 minute) at time scale 0.01 fires every 0.6 s.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if [d for d in runtime.events.deliveries() if d.rule_name == "stub-planner"]:
            break
        time.sleep(0.1)
    planner = [d for d in runtime.events.deliveries() if d.rule_name == "stub-planner"]
    assert planner and planner[0].event["source"] == "aws.events"
