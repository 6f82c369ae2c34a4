"""What the Lambda workers' call recorder keeps of a call's parameters and response
(kubestep_local/_worker.py ``record_safe``): secret material and blobs out, everything else as it
was, down to twelve levels; and the fault hook's request text, made only for a call a fault
could hit (kubestep_local/faults.py ``_before_send``)."""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.conditions import Key

from kubestep_local import faults
from kubestep_local._worker import record_safe
from kubestep_local.faults import Fault, FaultPlan, Invocation


def nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth):
        value = {"k": value}
    return value


def test_secrets_and_blobs_are_left_out_and_the_rest_kept():
    params = {
        "UserData": "c2VjcmV0",
        "PolicyDocument": {"Statement": [{"Action": "s3:GetObject"}]},
        "ResponseMetadata": "any",
        "Name": "n",
        "Count": 3,
        "Ratio": 0.5,
        "Flag": True,
        "Nothing": None,
        "Size": Decimal("1.5"),
        "At": datetime.datetime(2026, 1, 2, 3, 4, 5),
        "Body": b"12345",
        "Long": "x" * 2049,
        "Limit": "y" * 2048,
        "Ids": ["a", "z" * 3000, 7, None, {"Password": "p"}],
        "Tuple": ("a", b"b"),
        "Many": list(range(250)),
    }
    assert record_safe(params) == {
        "UserData": "<redacted>",
        "PolicyDocument": {"Statement": [{"Action": "s3:GetObject"}]},
        "Name": "n",
        "Count": 3,
        "Ratio": 0.5,
        "Flag": True,
        "Nothing": None,
        "Size": "1.5",
        "At": "2026-01-02 03:04:05",
        "Body": "<5 bytes>",
        "Long": "<2049 chars>",
        "Limit": "y" * 2048,
        "Ids": ["a", "<3000 chars>", 7, None, {"Password": "<redacted>"}],
        "Tuple": ["a", "<1 bytes>"],
        "Many": list(range(200)),
    }


def test_a_long_str_subclass_is_cut_and_a_condition_recorded_as_its_expression():
    class Name(str):
        pass

    condition = Key("pk").eq("CLUSTER#a")
    kept = record_safe({"Name": Name("n"), "Long": Name("n" * 2049), "KeyConditionExpression": condition})
    assert kept["Name"] == "n" and kept["Long"] == "<2049 chars>"
    assert kept["KeyConditionExpression"]["Values"] == {":v0": "CLUSTER#a"}


@pytest.mark.parametrize("leaf", ["s", 1, None, True, 2.5])
def test_values_deeper_than_twelve_levels_are_cut(leaf):
    assert record_safe(nested(12, leaf)) == nested(12, leaf)
    assert record_safe(nested(13, leaf)) == nested(13, "<nested>")
    assert record_safe(nested(12, [leaf])) == nested(12, ["<nested>"])
    assert record_safe(nested(11, [leaf])) == nested(11, [leaf])


class _Request:
    """A botocore AWSRequest as the before-send hook sees it; counts reads of its body."""

    url = "https://ec2.us-east-1.amazonaws.com/"

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.body_reads = 0

    @property
    def body(self) -> bytes:
        self.body_reads += 1
        return self._body


@pytest.fixture
def plan(tmp_path, monkeypatch) -> FaultPlan:
    plan = FaultPlan(tmp_path / "faults.json")
    monkeypatch.setattr(faults, "_plan", plan)
    monkeypatch.setattr(faults, "_invocation", Invocation("demo-cluster-tasks", cluster="prod"))
    return plan


def _send(body: str) -> tuple[Any, _Request]:
    request = _Request(body.encode())
    answer = faults._before_send(request, "before-send.ec2.CreateVolume", "ec2", "ec2")
    return answer, request


def test_a_call_no_fault_can_hit_is_sent_without_its_request_text_made(plan):
    plan.add(
        Fault("error", "ec2:DeleteVolume", match="needle", times=None),
        Fault("error", "ec2:CreateVolume", cluster="someone-else", match="needle", times=None),
        Fault("error", "*", function="network-tasks", times=None),
    )
    answer, request = _send("Action=CreateVolume&TagSpecification.1.Tag.1.Value=needle")
    assert answer is None and request.body_reads == 0
    assert [fault.fired for fault in plan.faults()] == [0, 0, 0]


def test_a_fault_that_matches_the_request_text_still_fires(plan):
    [fault] = plan.add(Fault("error", "ec2:CreateVolume", match="a needle", times=None))
    answer, request = _send("Action=CreateVolume&Name=hay")
    assert answer is None and request.body_reads == 1, "read to decide, and it did not match"
    answer, request = _send("Action=CreateVolume&Name=a+needle")
    assert answer is not None and answer.status_code == 403
    assert b"UnauthorizedOperation" in b"".join(answer.raw.stream())
    assert plan.get(fault).fired == 1
    assert json.loads(json.dumps([f.__dict__ for f in plan.firings()]))[0]["cluster"] == "prod"
