"""moto_compat's speed fixes of moto's response serializer (the XML of EC2 and Auto Scaling, the
JSON of Step Functions): each answer stays the one moto writes without them. In-process moto
(`mock_aws`, in a subprocess of its own) and reversible patches only, so they live in tests/unit,
away from the shared embedded runtimes (tests/unit/test_mock_aws_placement.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


# moto's own XML answers (mock_aws, no runtime in the process, so no patch applied yet), then the
# same describes with the serializer's speed fixes: each answer must be byte for byte the same
# (request ids aside: moto draws a new one per answer).
_XML_ANSWERS_SCRIPT = r"""
import re, sys
import boto3
from moto import mock_aws
from kubestep_local import moto_compat
from kubestep_local.moto_compat import server

def answers(ec2, autoscaling):
    bodies = []
    def keep(http_response, **_):
        bodies.append(re.sub(rb"<(RequestId|requestId)>[^<]*<", b"<\\1><", http_response.content))

    for client in (ec2, autoscaling):
        client.meta.events.register("after-call", keep)
    ec2.describe_instances()
    ec2.describe_vpc_peering_connections()
    ec2.describe_security_groups()
    autoscaling.describe_auto_scaling_groups()
    for client in (ec2, autoscaling):
        client.meta.events.unregister("after-call", keep)
    return bodies

with mock_aws():
    ec2 = boto3.client("ec2", region_name="us-east-1")
    autoscaling = boto3.client("autoscaling", region_name="us-east-1")
    image = "ami-12c6146b"  # moto runs instances of an image it does not know
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    peer = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    tags = [{"ResourceType": "instance", "Tags": [{"Key": "kubestep:cluster", "Value": "a"}]}]
    ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2, SubnetId=subnet, TagSpecifications=tags)
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet)  # no tags: none answered
    template = ec2.create_launch_template(LaunchTemplateName="t", LaunchTemplateData={"ImageId": image})
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="g", MinSize=1, MaxSize=2, VPCZoneIdentifier=subnet,
        LaunchTemplate={"LaunchTemplateId": template["LaunchTemplate"]["LaunchTemplateId"]},
        Tags=[{"Key": "k", "Value": "v", "PropagateAtLaunch": True}],
    )
    # A transformer moto adds at run time (the new connection's status).
    ec2.create_vpc_peering_connection(VpcId=vpc, PeerVpcId=peer)
    plain = answers(ec2, autoscaling)
    patches = moto_compat.PatchSet()
    server.find_response_transformers_once(patches)
    server.read_plain_dict_members_directly(patches)
    server.validate_xml_names_once(patches)
    server.parse_each_timestamp_text_once(patches)
    fast, again = answers(ec2, autoscaling), answers(ec2, autoscaling)
    patches.undo()
    same = plain == fast == again
    print("same" if same else b"\n----\n".join(plain + fast).decode(), len(b"".join(plain)))
"""


def test_xml_answers_are_byte_identical_with_the_serializer_speed_fixes() -> None:
    """DescribeInstances, DescribeVpcPeeringConnections, DescribeSecurityGroups and
    DescribeAutoScalingGroups answer the same bytes with the transformer paths, the XML names and
    the timestamp texts (a group's CreatedTime, an instance's LaunchTime) worked out once and
    plain dicts read with ``dict.get`` (EC2 API reference, DescribeInstances:
    an instance without tags has no tagSet; moto's transformers decide it) as moto answers them
    without."""
    result = subprocess.run(
        [sys.executable, "-c", _XML_ANSWERS_SCRIPT], capture_output=True, text=True, check=False, cwd=PROJECT_ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    verdict, size = result.stdout.split()[0], int(result.stdout.split()[-1])
    assert verdict == "same", result.stdout[-6000:]
    assert size > 5000  # the answers were not empty


def test_a_response_transformer_moto_adds_at_run_time_is_applied() -> None:
    """moto adds a transformer to a service's table while it runs (CreateVpcPeeringConnection):
    a path worked out before the table changed is worked out again."""
    from moto.core.serialize import AttributePicker, AttributePickerContext

    from kubestep_local import moto_compat

    transformers: dict[str, Any] = {"Item.Tags": lambda tags: tags or None}
    picker = AttributePicker(response_transformers=transformers)
    context = AttributePickerContext(obj={"State": "running", "Tags": []}, key="State", shape=None, key_path="Item")
    patches = moto_compat.PatchSet()
    moto_compat.server.find_response_transformers_once(patches)
    try:
        assert picker(context) == "running"
        transformers["Item.State"] = lambda _: "pending"
        assert picker(context) == "pending"
        transformers["Item.State"] = lambda _: "initiating"  # the same path, a new transformer
        assert picker(context) == "initiating"
        tags = AttributePickerContext(obj={"Tags": []}, key="Tags", shape=None, key_path="Item")
        assert picker(tags) is None
    finally:
        patches.undo()


def test_an_xml_name_xmltodict_refuses_is_still_refused() -> None:
    """Only names that passed xmltodict's check are remembered: one it refuses is refused every time."""
    import xmltodict

    from kubestep_local import moto_compat

    patches = moto_compat.PatchSet()
    moto_compat.server.validate_xml_names_once(patches)
    try:
        assert xmltodict.unparse({"Reply": {"Name": "x"}}) == xmltodict.unparse({"Reply": {"Name": "x"}})
        for _ in range(2):
            with pytest.raises(ValueError, match="whitespace"):
                xmltodict.unparse({"Reply": {"bad name": "x"}})
    finally:
        patches.undo()


TIMESTAMP_TEXTS = [
    "2026-12-06T11:00:00Z",
    "2026-12-06T11:00:00.123Z",
    "2026-12-06T11:00:00.123456789Z",
    "2026-12-06T11:00:00",
    "2026-12-06T11:00:00.5+05:30",
    "2026-12-06T23:30:00-0800",
    "2026-12-06T11:00:00+00:00",
]


@pytest.mark.parametrize("text", TIMESTAMP_TEXTS)
def test_a_timestamp_text_parses_to_what_botocore_parses_it_to(text: str) -> None:
    """moto's serializer reads a whole ISO 8601 timestamp text as botocore's
    ``parse_to_aware_datetime`` reads it, the first time and every time after (aware, in UTC)."""
    from botocore.utils import parse_to_aware_datetime
    from moto.core import serialize

    from kubestep_local import moto_compat

    expected = parse_to_aware_datetime(text)
    patches = moto_compat.PatchSet()
    moto_compat.server.parse_each_timestamp_text_once(patches)
    try:
        first, again = serialize.parse_to_aware_datetime(text), serialize.parse_to_aware_datetime(text)
    finally:
        patches.undo()
    for parsed in (first, again):
        assert parsed == expected
        assert parsed.utcoffset() == expected.utcoffset()
        assert parsed.isoformat() == expected.isoformat()
    assert again is first  # parsed once


def test_other_timestamp_values_are_parsed_as_botocore_parses_them() -> None:
    """A datetime, an epoch number (or its text) and a date without a time (dateutil fills the
    rest) are not remembered: each is parsed as botocore parses it; a text that is no
    timestamp is refused as botocore refuses it."""
    from datetime import datetime, timedelta, timezone

    from botocore.utils import parse_to_aware_datetime
    from moto.core import serialize

    from kubestep_local import moto_compat

    values: list[object] = [datetime(2026, 1, 2, 3, 4, 5), datetime(2026, 1, 2, tzinfo=timezone(timedelta(hours=2)))]
    values += [1767225600, 1767225600.5, "1767225600", "2026-01-02"]
    patches = moto_compat.PatchSet()
    moto_compat.server.parse_each_timestamp_text_once(patches)
    try:
        for value in values:
            assert serialize.parse_to_aware_datetime(value) == parse_to_aware_datetime(value), value
        with pytest.raises(ValueError, match="Invalid timestamp"):
            serialize.parse_to_aware_datetime("not a time")
    finally:
        patches.undo()


def _history_answer() -> str:
    """GetExecutionHistory's answer, as moto's serializer writes it from the history's dicts."""
    from datetime import UTC, datetime

    from moto.core.serialize import XFormedAttributePicker, get_serializer_class
    from moto.core.utils import get_service_model

    class Details(dict):  # a dict subclass: read as moto reads it
        pass

    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    events = [
        {
            "timestamp": started,
            "type": "ExecutionStarted",
            "id": 1,
            "previousEventId": 0,
            "executionStartedEventDetails": {"input": '{"a": 1}', "inputDetails": {"truncated": False}},
        },
        {
            "timestamp": started,
            "type": "TaskStateEntered",
            "id": 2,
            "previousEventId": 1,
            "stateEnteredEventDetails": Details(name="Create", input="{}"),
        },
        {
            "timestamp": started,
            "type": "TaskScheduled",
            "id": 3,
            "previousEventId": 2,
            "taskScheduledEventDetails": {
                "resourceType": "lambda",
                "resource": "invoke",
                "region": "us-east-1",
                "parameters": '{"FunctionName": "f"}',
            },
        },
        {
            "timestamp": started,
            "type": "ExecutionFailed",
            "id": 4,
            "previousEventId": 3,
            "executionFailedEventDetails": {"error": "States.TaskFailed", "cause": "boom"},
        },
    ]
    operation = get_service_model("stepfunctions").operation_model("GetExecutionHistory")
    serializer = get_serializer_class("stepfunctions", "json")(
        operation_model=operation, value_picker=XFormedAttributePicker()
    )
    return serializer.serialize({"events": events, "nextToken": None})["body"]


def test_an_answer_read_from_plain_dicts_is_the_same_read_with_dict_get() -> None:
    """GetExecutionHistory's events (plain dicts, one a dict subclass) serialize to the same JSON
    whether each member is read with ``dict.get`` or as moto reads it (Step Functions API
    reference, GetExecutionHistory: each event's details member for its type only)."""
    import moto.core.utils
    from moto.core import serialize

    from kubestep_local import moto_compat

    patches = moto_compat.PatchSet()
    moto_compat.server.read_plain_dict_members_directly(patches)
    try:
        fast = _history_answer()
        patches.set(serialize, "get_value", moto.core.utils.get_value)  # moto's own reader
        plain = _history_answer()
    finally:
        patches.undo()
    assert fast == plain
    events = json.loads(fast)["events"]
    assert [e["type"] for e in events] == ["ExecutionStarted", "TaskStateEntered", "TaskScheduled", "ExecutionFailed"]
    assert events[1]["stateEnteredEventDetails"] == {"name": "Create", "input": "{}"}
    assert set(events[3]) == {"timestamp", "type", "id", "previousEventId", "executionFailedEventDetails"}
