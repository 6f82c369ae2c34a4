"""moto_compat.fix_moto_performance: what moto does again and again is done once, and the answers
stay AWS's (each speed patch has a test here that would fail if it changed an answer); and the
interpreter bug concurrent creates met (an aborted Map iteration)."""

from __future__ import annotations

import copy
import inspect
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from kubestep_local.runtime import LocalRuntime

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def table(runtime: LocalRuntime) -> Iterator[str]:
    name = f"speed-{uuid.uuid4().hex[:8]}"
    dynamodb = runtime.boto3_client("dynamodb")
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    yield name
    dynamodb.delete_table(TableName=name)


def _items(runtime: LocalRuntime, table: str) -> list[dict[str, Any]]:
    return sorted(
        runtime.boto3_client("dynamodb").scan(TableName=table)["Items"], key=lambda i: (i["pk"]["S"], i["sk"]["S"])
    )


def test_a_cancelled_transaction_leaves_every_item_as_it_was(runtime: LocalRuntime, table: str) -> None:
    """TransactWriteItems is all or nothing (DynamoDB API reference, TransactWriteItems): the
    emulator copies only the items a transaction names, and puts exactly those back."""
    dynamodb = runtime.boto3_client("dynamodb")
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}})
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "b"}, "sk": {"S": "1"}, "n": {"N": "1"}})
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "other"}, "sk": {"S": "1"}, "n": {"N": "7"}})
    before = _items(runtime, table)
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "new"}, "sk": {"S": "1"}}}},
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                        "UpdateExpression": "SET n = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}},
                    }
                },
                {"Delete": {"TableName": table, "Key": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": {"pk": {"S": "other"}, "sk": {"S": "1"}},
                        "ConditionExpression": "n = :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
            ]
        )
    assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
    reasons = [r["Code"] for r in raised.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]
    assert _items(runtime, table) == before


def test_a_transaction_that_passes_changes_every_item_it_names(runtime: LocalRuntime, table: str) -> None:
    dynamodb = runtime.boto3_client("dynamodb")
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}})
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "b"}, "sk": {"S": "1"}, "n": {"N": "1"}})
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": table, "Item": {"pk": {"S": "new"}, "sk": {"S": "1"}}}},
            {
                "Update": {
                    "TableName": table,
                    "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                    "UpdateExpression": "SET n = :two",
                    "ExpressionAttributeValues": {":two": {"N": "2"}},
                }
            },
            {"Delete": {"TableName": table, "Key": {"pk": {"S": "b"}, "sk": {"S": "1"}}}},
        ]
    )
    assert [(i["pk"]["S"], i.get("n", {}).get("N")) for i in _items(runtime, table)] == [("a", "2"), ("new", None)]


def test_a_transaction_naming_one_item_twice_is_refused_and_changes_nothing(runtime: LocalRuntime, table: str) -> None:
    dynamodb = runtime.boto3_client("dynamodb")
    dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "1"}})
    before = _items(runtime, table)
    with pytest.raises(ClientError) as raised:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": {"pk": {"S": "a"}, "sk": {"S": "1"}, "n": {"N": "5"}}}},
                {"Delete": {"TableName": table, "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}}}},
            ]
        )
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert _items(runtime, table) == before


def test_each_definition_is_parsed_once_and_each_execution_gets_its_own_components(runtime: LocalRuntime) -> None:
    """The syntax tree of a definition is shared; the components an execution evaluates (which
    hold its retry counters) are built for each execution."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    definition = json.dumps({"StartAt": "Only", "States": {"Only": {"Type": "Pass", "End": True}}})
    first_program, first_tree = AmazonStateLanguageParser.parse(definition)
    second_program, second_tree = AmazonStateLanguageParser.parse(definition)
    assert first_tree is second_tree
    assert first_program is not second_program


def test_a_parsed_definition_knows_each_node_text_as_antlr_joins_it(runtime: LocalRuntime) -> None:
    """The cached tree answers each rule node's text once joined (what the preprocessors ask
    for at every level): the same text antlr4's ``RuleContext.getText`` joins from the tokens."""
    from antlr4 import ParserRuleContext
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    def joined(node: Any) -> str:
        if not isinstance(node, ParserRuleContext):
            return node.symbol.text
        return "".join(joined(child) for child in node.children or ())

    definition = json.dumps(
        {
            "StartAt": "Greet",
            "States": {
                "Greet": {
                    "Type": "Pass",
                    "Parameters": {"greeting.$": "States.Format('hi {}', $.who)", "n": [1, {"a": None}]},
                    "Next": "Done",
                },
                "Done": {"Type": "Succeed"},
            },
        }
    )
    _, tree = AmazonStateLanguageParser.parse(definition)
    nodes, rule_nodes = [tree], 0
    while nodes:
        node = nodes.pop()
        if isinstance(node, ParserRuleContext):
            rule_nodes += 1
            assert "getText" in vars(node)
            assert node.getText() == joined(node)
            nodes.extend(node.children or ())
    assert rule_nodes > 20
    assert tree.getText().startswith('{"StartAt":"Greet"')


def test_executions_of_one_definition_evaluate_paths_and_intrinsics_on_their_own_input(runtime: LocalRuntime) -> None:
    """Two executions of one state machine (one parse, compiled JSONPaths and intrinsics shared)
    each answer from their own input (Step Functions developer guide, intrinsic functions)."""
    sfn = runtime.boto3_client("stepfunctions")
    definition = {
        "StartAt": "Greet",
        "States": {
            "Greet": {
                "Type": "Pass",
                "Parameters": {"greeting.$": "States.Format('hello {}', $.who.name)", "count.$": "$.count"},
                "ResultPath": "$.out",
                "OutputPath": "$.out",
                "End": True,
            }
        },
    }
    machine = sfn.create_state_machine(
        name=f"speed-{uuid.uuid4().hex[:8]}",
        definition=json.dumps(definition),
        roleArn="arn:aws:iam::123456789012:role/speed-test",
    )["stateMachineArn"]
    arns = [
        sfn.start_execution(stateMachineArn=machine, input=json.dumps({"who": {"name": name}, "count": n}))[
            "executionArn"
        ]
        for n, name in enumerate(("ada", "grace"))
    ]
    outputs = [json.loads(runtime.wait_execution(arn, timeout=60)["output"]) for arn in arns]
    assert outputs == [{"greeting": "hello ada", "count": 0}, {"greeting": "hello grace", "count": 1}]
    sfn.delete_state_machine(stateMachineArn=machine)


def test_an_aborted_map_iteration_fails_the_execution_instead_of_killing_the_interpreter(
    runtime: LocalRuntime,
) -> None:
    """moto_compat.fail_executions_whose_map_iteration_was_aborted: the failure of an aborted
    iteration carries no details dict; the execution's end must still read an error (None, or
    the plain string) instead of raising TypeError in the interpreter thread."""
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )

    def failure(details: Any) -> FailureEventException:
        event = object.__new__(FailureEvent)
        event.event_details = details
        return FailureEventException(failure_event=event)

    assert failure({"taskFailedEventDetails": None}).get_execution_failed_event_details() == {}
    assert failure({"taskFailedEventDetails": "States.Aborted"}).extract_error_cause_pair() == ("States.Aborted", None)
    real = {"taskFailedEventDetails": {"error": "ClientError", "cause": "TagLimitExceeded"}}
    assert failure(real).extract_error_cause_pair() == ("ClientError", "TagLimitExceeded")


class Vpc:
    """Named as moto's models are: ``VpcId`` is found as ``id`` (the class name's prefix)."""

    def __init__(self, vpc_id: str, cidr: str) -> None:
        self.id = vpc_id
        self.cidr_block = cidr


class ImportedVpc:
    """An explicit alias, as moto's models declare them (``Meta.serialization_aliases``)."""

    class Meta:
        serialization_aliases = {"VpcId": "imported_from"}

    def __init__(self, vpc_id: str, cidr: str) -> None:
        self.imported_from = vpc_id
        self.cidr_block = cidr


def _describe_vpcs_answer(vpcs: list[Any]) -> str:
    from moto.core.serialize import XFormedAttributePicker, get_serializer_class
    from moto.core.utils import get_service_model

    operation = get_service_model("ec2").operation_model("DescribeVpcs")
    serializer = get_serializer_class("ec2", "ec2")(operation_model=operation, value_picker=XFormedAttributePicker())
    return serializer.serialize({"Vpcs": vpcs})["body"]


def test_attribute_names_are_looked_up_once_per_class_and_values_read_every_time() -> None:
    """The serializer's member names are cached per member, shape and class: objects of one class
    answer their own values, and a class with other names (an explicit alias) is not given the
    first class's (the EC2 API reference, DescribeVpcs: each Vpc's VpcId and CidrBlock)."""
    from kubestep_local import moto_compat

    vpcs = [Vpc("vpc-1", "10.0.0.0/16"), ImportedVpc("vpc-2", "10.1.0.0/16"), Vpc("vpc-3", "10.2.0.0/16")]
    patches = moto_compat.PatchSet()
    moto_compat.server.look_attribute_aliases_up_once(patches)
    try:
        first, second = _describe_vpcs_answer(vpcs), _describe_vpcs_answer(list(reversed(vpcs)))
    finally:
        patches.undo()
    for vpc_id, cidr in (("vpc-1", "10.0.0.0/16"), ("vpc-2", "10.1.0.0/16"), ("vpc-3", "10.2.0.0/16")):
        assert f"<item><vpcId>{vpc_id}</vpcId><cidrBlock>{cidr}</cidrBlock></item>" in first
        assert f"<item><vpcId>{vpc_id}</vpcId><cidrBlock>{cidr}</cidrBlock></item>" in second
    assert first.index("vpc-1") < first.index("vpc-3") and second.index("vpc-3") < second.index("vpc-1")


def test_update_expressions_are_parsed_once_and_each_update_applies_its_own_values(
    runtime: LocalRuntime, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One UpdateExpression text, sent again with other values, sets those values; list_append
    appends each time; a syntax error is refused every time (DynamoDB API reference,
    UpdateItem; developer guide, "Update expressions"). The text is tokenized once: moto's two
    readers share the tree, the validator gets its own copy of it (``copy_plain_tree``)."""
    from moto.dynamodb.parsing.expressions import ExpressionTokenizer

    tokenized = []
    make_list = ExpressionTokenizer.make_list
    monkeypatch.setattr(
        ExpressionTokenizer, "make_list", classmethod(lambda cls, text: tokenized.append(text) or make_list(text))
    )
    dynamodb = runtime.boto3_client("dynamodb")
    key = {"pk": {"S": "u"}, "sk": {"S": "1"}}
    expression = "SET #n = :n, #l = list_append(if_not_exists(#l, :empty), :x) REMOVE #gone"
    for n in range(3):
        answer = dynamodb.update_item(
            TableName=table,
            Key=key,
            UpdateExpression=expression,
            ExpressionAttributeNames={"#n": "n", "#l": "l", "#gone": "gone"},
            ExpressionAttributeValues={":n": {"N": str(n)}, ":x": {"L": [{"S": f"x{n}"}]}, ":empty": {"L": []}},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        assert answer["n"] == {"N": str(n)}
        assert answer["l"] == {"L": [{"S": f"x{i}"} for i in range(n + 1)]}
    # Unpatched moto tokenizes it twice per update (6 times here) and deep-copies each tree.
    assert tokenized.count(expression) == 1
    for _ in range(2):
        with pytest.raises(ClientError) as raised:
            dynamodb.update_item(
                TableName=table, Key=key, UpdateExpression="SET = :n", ExpressionAttributeValues={":n": {"N": "1"}}
            )
        assert raised.value.response["Error"]["Code"] == "ValidationException"


def test_an_update_copies_the_item_for_a_stream_only(
    runtime: LocalRuntime, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a table without a stream, UpdateItem does not copy the item: its ALL_OLD answer is the
    item as it was, read before the update (moto copied it twice: for that answer and for a
    stream that does not exist); on a table with one, the stream record's OldImage is still the
    item as it was (DynamoDB API reference, UpdateItem: ReturnValues; Streams API reference,
    StreamRecord: OldImage)."""
    from moto.dynamodb.models.dynamo_type import Item

    copies = []
    deepcopy = Item.__deepcopy__
    monkeypatch.setattr(Item, "__deepcopy__", lambda item, memo: copies.append(item) or deepcopy(item, memo))
    dynamodb = runtime.boto3_client("dynamodb")
    key = {"pk": {"S": "u"}, "sk": {"S": "1"}}
    dynamodb.put_item(TableName=table, Item={**key, "n": {"N": "1"}, "tags": {"SS": ["a"]}})
    copies.clear()
    old = dynamodb.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET n = :n ADD tags :t",
        ExpressionAttributeValues={":n": {"N": "2"}, ":t": {"SS": ["b"]}},
        ReturnValues="ALL_OLD",
    )["Attributes"]
    assert old == {**key, "n": {"N": "1"}, "tags": {"SS": ["a"]}}
    assert copies == []
    item = dynamodb.get_item(TableName=table, Key=key)["Item"]
    assert item["n"] == {"N": "2"} and sorted(item["tags"]["SS"]) == ["a", "b"]

    dynamodb.update_table(
        TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    )
    dynamodb.update_item(
        TableName=table, Key=key, UpdateExpression="SET n = :n", ExpressionAttributeValues={":n": {"N": "3"}}
    )
    streams = runtime.boto3_client("dynamodbstreams")
    arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
    assert [(r["dynamodb"]["OldImage"]["n"], r["dynamodb"]["NewImage"]["n"]) for r in records] == [
        ({"N": "2"}, {"N": "3"})
    ]


def test_old_and_new_images_of_nested_attributes_answer_as_before_the_update(runtime: LocalRuntime, table: str) -> None:
    """ALL_OLD, UPDATED_OLD and UPDATED_NEW of an update that changes a map nested in a map, a
    list's element and a set (DynamoDB API reference, UpdateItem: ReturnValues): the old image
    is the item before the update, though the update changes the containers it was read from
    in place, and the new one after it."""
    dynamodb = runtime.boto3_client("dynamodb")
    key = {"pk": {"S": "nested"}, "sk": {"S": "1"}}
    resources = {"M": {"vpc": {"M": {"id": {"S": "vpc-1"}, "by": {"S": "op-1"}}}, "nlb": {"M": {"id": {"S": "a"}}}}}
    before = {
        **key,
        "resources": resources,
        "zones": {"L": [{"M": {"name": {"S": "a"}}}, {"S": "b"}]},
        "tags": {"SS": ["x"]},
    }
    dynamodb.put_item(TableName=table, Item=before)
    update = {
        "TableName": table,
        "Key": key,
        "UpdateExpression": "SET resources.vpc.id = :id, zones[0].#name = :zone ADD tags :tag",
        "ExpressionAttributeNames": {"#name": "name"},
        "ExpressionAttributeValues": {":id": {"S": "vpc-2"}, ":zone": {"S": "c"}, ":tag": {"SS": ["y"]}},
    }
    assert dynamodb.update_item(**update, ReturnValues="ALL_OLD")["Attributes"] == before
    after = dynamodb.get_item(TableName=table, Key=key)["Item"]
    assert after["resources"]["M"]["vpc"]["M"] == {"id": {"S": "vpc-2"}, "by": {"S": "op-1"}}
    assert after["zones"] == {"L": [{"M": {"name": {"S": "c"}}}, {"S": "b"}]}
    assert sorted(after["tags"]["SS"]) == ["x", "y"]

    # moto answers UPDATED_* with each changed top-level attribute whole (DynamoDB narrows a
    # nested change to its path); what is checked is that the old ones are the item's before.
    dynamodb.put_item(TableName=table, Item=before)
    old = dynamodb.update_item(**update, ReturnValues="UPDATED_OLD")["Attributes"]
    assert old == {"resources": resources, "zones": before["zones"], "tags": {"SS": ["x"]}}
    dynamodb.put_item(TableName=table, Item=before)
    new = dynamodb.update_item(**update, ReturnValues="UPDATED_NEW")["Attributes"]
    assert new["resources"] == {"M": {"vpc": {"M": {"id": {"S": "vpc-2"}}}}}
    assert new["zones"] == after["zones"] and sorted(new["tags"]["SS"]) == ["x", "y"]


# Every attribute type, nested (DynamoDB API reference, AttributeValue).
NESTED_VALUE = {
    "M": {
        "s": {"S": "text é"},
        "n": {"N": "1.5"},
        "b": {"B": "AAE="},
        "yes": {"BOOL": True},
        "none": {"NULL": True},
        "sets": {"M": {"ss": {"SS": ["a", "bé"]}, "ns": {"NS": ["1", "22"]}, "bs": {"BS": ["AAE="]}}},
        "list": {"L": [{"M": {"deep": {"L": [{"S": "x"}, {"M": {"z": {"N": "3"}}}]}}}, {"S": "y"}]},
    }
}


def test_item_json_and_size_are_computed_in_one_pass_as_moto_computes_them() -> None:
    """``DynamoType.to_regular_json`` and ``DynamoType.size`` give moto's own answers for every
    attribute type, nested, without copying or rebuilding a DynamoType; the JSON shares no
    container with the stored value (DynamoDB developer guide, "Item sizes": the size counts
    are moto's)."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    from kubestep_local import moto_compat

    patches = moto_compat.PatchSet()
    made: list[Any] = []
    with pytest.MonkeyPatch.context() as monkeypatch:
        # moto's own (a runtime of this process may have patched them already).
        monkeypatch.setattr(DynamoType, "to_regular_json", inspect.unwrap(DynamoType.to_regular_json))
        monkeypatch.setattr(DynamoType, "size", inspect.unwrap(DynamoType.size))
        moto_answer, moto_size = DynamoType(NESTED_VALUE).to_regular_json(), DynamoType(NESTED_VALUE).size()
        moto_compat.dynamodb.build_item_json_in_one_pass(patches)
        moto_compat.dynamodb.size_items_in_one_pass(patches)
        try:
            stored = DynamoType(NESTED_VALUE)
            copy, init = DynamoType.__deepcopy__, DynamoType.__init__
            monkeypatch.setattr(DynamoType, "__deepcopy__", lambda v, memo: made.append(v) or copy(v, memo))
            monkeypatch.setattr(DynamoType, "__init__", lambda v, value: made.append(v) or init(v, value))
            answer, size = stored.to_regular_json(), stored.size()
        finally:
            patches.undo()
    assert answer == moto_answer and size == moto_size
    assert answer["M"]["b"] == {"B": b"\x00\x01"}
    assert made == []
    answer["M"]["list"]["L"][0]["M"]["deep"]["L"].append({"S": "added"})
    answer["M"]["sets"]["M"]["ss"]["SS"].append("c")
    assert DynamoType(NESTED_VALUE).to_regular_json() == moto_answer == stored.to_regular_json()


def test_a_projection_of_top_level_attributes_answers_as_moto_projects_it() -> None:
    """A ProjectionExpression (DynamoDB developer guide, "Projection expressions") naming
    top-level attributes, one twice and one the item lacks, answers moto's own projection
    without converting the attributes it does not name; a nested path is moto's own answer."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    from kubestep_local import moto_compat

    attrs = {"pk": {"S": "c"}, "sk": {"S": "CLUSTER"}, "uid": {"S": "u1"}, "tags": {"SS": ["b", "a"]}}
    spec = {"M": {"list": NESTED_VALUE["M"]["list"], "n": {"N": "1.5"}, "ns": {"NS": ["2", "10"]}}}
    attrs |= {"spec": spec, "members": {"N": "3"}}
    top_level, nested = [["members"], ["uid"], ["tags"], ["uid"], ["absent"]], [["uid"], ["spec", "list"]]
    patches = moto_compat.PatchSet()
    converted: list[Any] = []
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(Item, "project", inspect.unwrap(Item.project))  # moto's own
        item = Item(DynamoType(attrs["pk"]), DynamoType(attrs["sk"]), attrs)
        moto_answers = [item.project(paths).to_json() for paths in (top_level, nested)]
        moto_compat.dynamodb.project_only_the_named_attributes(patches)
        try:
            to_regular_json = DynamoType.to_regular_json
            monkeypatch.setattr(DynamoType, "to_regular_json", lambda v: converted.append(v.type) or to_regular_json(v))
            answer = item.project(top_level).to_json()
            assert sorted(converted) == ["N", "S", "SS"]  # members, uid, tags: never the map
            assert [answer, item.project(nested).to_json()] == moto_answers
        finally:
            patches.undo()
    assert moto_answers[0]["Attributes"].keys() == {"members", "uid", "tags"}


def test_an_item_is_built_in_one_pass_and_refused_over_the_size_limit_where_moto_refuses_it() -> None:
    """An item is built with the same attributes as moto builds it, sizing each attribute once;
    an item over 400 KB is refused with moto's error at the same size, one byte under is kept
    (DynamoDB developer guide, "Item sizes")."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    from kubestep_local import moto_compat

    attrs = {"pk": {"S": "c"}, "sk": {"S": "1"}, "spec": NESTED_VALUE, "tags": {"SS": ["a"]}}
    # "pk" + "c" + "sk" + "1" + "big" = 9 bytes beside the big string.
    at_limit = {"pk": {"S": "c"}, "sk": {"S": "1"}, "big": {"S": "x" * (moto_compat.dynamodb.MOTO_ITEM_SIZE_LIMIT - 9)}}
    over = {**at_limit, "big": {"S": at_limit["big"]["S"] + "x"}}

    def outcomes() -> list[Any]:
        built = Item(DynamoType(attrs["pk"]), DynamoType(attrs["sk"]), attrs)
        kept = Item(DynamoType(at_limit["pk"]), DynamoType(at_limit["sk"]), at_limit)
        with pytest.raises(ItemSizeTooLarge) as refused:
            Item(DynamoType(over["pk"]), DynamoType(over["sk"]), over)
        return [built.to_json(), built.size(), kept.size(), type(built.attrs), str(refused.value)]

    patches = moto_compat.PatchSet()
    sized: list[Any] = []
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(Item, "__init__", inspect.unwrap(Item.__init__))  # moto's own
        moto_outcomes = outcomes()
        moto_compat.dynamodb.build_items_in_one_pass(patches)
        try:
            size = DynamoType.size
            monkeypatch.setattr(DynamoType, "size", lambda v: sized.append(v) or size(v))
            item = Item(DynamoType(attrs["pk"]), DynamoType(attrs["sk"]), attrs)
            monkeypatch.setattr(DynamoType, "size", size)
            assert outcomes() == moto_outcomes
        finally:
            patches.undo()
    top_level = [id(v) for v in item.attrs.values()]
    assert sorted(top_level) == sorted(id(v) for v in sized if id(v) in top_level)  # each attribute sized once
    assert moto_outcomes[2] == moto_compat.dynamodb.MOTO_ITEM_SIZE_LIMIT


def _parse_authorize_ingress(values: Any) -> dict:
    from moto.core.parse import EC2QueryParser
    from moto.core.utils import get_service_model

    operation = get_service_model("ec2").operation_model("AuthorizeSecurityGroupIngress")
    return EC2QueryParser(operation).parse({"method": "POST", "values": values, "headers": {}, "body": b""})


def test_query_parameters_parse_the_same_from_a_plain_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    """A query-protocol request (the EC2 API reference, AuthorizeSecurityGroupIngress: a list of
    IpPermissions, each with its own IpRanges and a tag list) parses to the same parameters
    whether the parser walks werkzeug's multi-dicts or the plain dict the patch hands it."""
    from werkzeug.datastructures import CombinedMultiDict, MultiDict

    from kubestep_local import moto_compat

    form = {
        "Action": "AuthorizeSecurityGroupIngress",
        "GroupId": "sg-1",
        "IpPermissions.1.IpProtocol": "tcp",
        "IpPermissions.1.FromPort": "443",
        "IpPermissions.1.ToPort": "443",
        "IpPermissions.1.IpRanges.1.CidrIp": "10.0.0.0/16",
        "IpPermissions.1.IpRanges.1.Description": "api",
        "IpPermissions.1.IpRanges.2.CidrIp": "10.1.0.0/16",
        "IpPermissions.2.IpProtocol": "udp",
        "IpPermissions.2.FromPort": "53",
        "IpPermissions.2.ToPort": "53",
        "IpPermissions.2.Groups.1.GroupId": "sg-2",
        "TagSpecification.1.ResourceType": "security-group-rule",
        "TagSpecification.1.Tag.1.Key": "k",
        "TagSpecification.1.Tag.1.Value": "v",
    }
    from moto.core.parse import QueryParser

    values = CombinedMultiDict([MultiDict({"Version": "2016-11-15"}), MultiDict(form)])
    expected = _parse_authorize_ingress(values)
    walked: list[type] = []
    walk = QueryParser._gonna_recurse
    monkeypatch.setattr(
        QueryParser,
        "_gonna_recurse",
        lambda self, params, prefix: walked.append(type(params)) or walk(self, params, prefix),
    )
    patches = moto_compat.PatchSet()
    moto_compat.server.parse_query_parameters_from_a_dict(patches)
    try:
        parsed = _parse_authorize_ingress(values)
    finally:
        patches.undo()
    assert parsed == expected
    assert walked and set(walked) == {dict}  # the patched parse walked the plain dict only
    assert [p["IpProtocol"] for p in parsed["IpPermissions"]] == ["tcp", "udp"]
    assert [r["CidrIp"] for r in parsed["IpPermissions"][0]["IpRanges"]] == ["10.0.0.0/16", "10.1.0.0/16"]
    assert parsed["IpPermissions"][1]["UserIdGroupPairs"] == [{"GroupId": "sg-2"}]
    assert parsed["TagSpecifications"][0]["Tags"] == [{"Key": "k", "Value": "v"}]


def test_instances_are_looked_up_in_place_with_the_same_answers(runtime: LocalRuntime) -> None:
    """EC2 answers for instances stay moto's (and AWS's: DescribeInstances, TerminateInstances)
    while lookups read the reservations in place instead of copying each one first."""
    from moto.ec2.models import ec2_backends

    from kubestep_local import moto_compat
    from kubestep_local.moto_compat.core import iter_backends

    ec2 = runtime.boto3_client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    launched = ec2.run_instances(ImageId=image, MinCount=3, MaxCount=3, InstanceType="t3.micro")["Instances"]
    ids = [i["InstanceId"] for i in launched]
    ec2.terminate_instances(InstanceIds=[ids[0]])
    backend = next(b for _a, r, b in iter_backends(ec2_backends) if r == runtime.region)
    reservation = next(r for r in backend.reservations.values() if {i.id for i in r.instances} >= set(ids))
    assert backend.get_instance(ids[1]) is next(i for i in reservation.instances if i.id == ids[1])
    assert [i.id for i in backend.all_instances(filters=[{"name": "instance-state-name", "values": ["running"]}])][
        -2:
    ] == ids[1:]
    assert moto_compat.instance_state(runtime.region, ids[0]) in ("shutting-down", "terminated")
    assert moto_compat.instance_running(runtime.region, ids[2])
    assert moto_compat.instance_state(runtime.region, "i-0000000000000dead") is None
    described = ec2.describe_instances(InstanceIds=ids[1:])["Reservations"]
    assert sorted(i["InstanceId"] for r in described for i in r["Instances"]) == sorted(ids[1:])
    assert len(reservation.instances) == 3  # nothing trimmed the stored reservation


def test_an_instances_zone_read_in_place_is_the_one_describe_instances_answers(runtime: LocalRuntime) -> None:
    """The instance simulator reads an instance's zone as the instance reads it from its metadata,
    in place (`moto_compat.instance_zone`): the same zone moto's DescribeInstances answers."""
    from kubestep_local import moto_compat

    ec2 = runtime.boto3_client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    ids = [
        ec2.run_instances(
            ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.micro", Placement={"AvailabilityZone": zone}
        )["Instances"][0]["InstanceId"]
        for zone in (f"{runtime.region}b", f"{runtime.region}c")
    ]
    described = ec2.describe_instances(InstanceIds=ids)["Reservations"]
    zones = {i["InstanceId"]: i["Placement"]["AvailabilityZone"] for r in described for i in r["Instances"]}
    assert [moto_compat.instance_zone(runtime.region, i) for i in ids] == [zones[i] for i in ids]
    assert [zones[i] for i in ids] == [f"{runtime.region}b", f"{runtime.region}c"]
    assert moto_compat.instance_zone(runtime.region, "i-0000000000000dead") is None


@pytest.fixture
def indexed_table(runtime: LocalRuntime) -> Iterator[str]:
    """A table like kubestep's (pk, sk) with a GSI on (gsi1pk, gsi1sk) and a sparse hash-only GSI
    on ``owner`` (an item without the attribute is not in the index)."""
    name = f"speed-query-{uuid.uuid4().hex[:8]}"
    dynamodb = runtime.boto3_client("dynamodb")
    dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "gsi1pk", "gsi1sk", "owner")
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "gsi1",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "byowner",
                "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    yield name
    dynamodb.delete_table(TableName=name)


def _random_item(rng: Any) -> dict[str, Any]:
    item = {"pk": {"S": f"p{rng.randrange(4)}"}, "sk": {"S": f"s{rng.randrange(12):02d}"}, "n": {"N": "0"}}
    if rng.random() < 0.6:
        item["gsi1pk"] = {"S": f"g{rng.randrange(3)}"}
    if rng.random() < 0.7:
        item["gsi1sk"] = {"S": f"k{rng.randrange(20):02d}"}
    if rng.random() < 0.4:
        item["owner"] = {"S": f"o{rng.randrange(2)}"}
    return item


def _random_update(rng: Any, table: str) -> dict[str, Any]:
    """SET or REMOVE an index key attribute (the item enters or leaves an index) and bump n."""
    key = {k: v for k, v in _random_item(rng).items() if k in ("pk", "sk")}
    attribute = rng.choice(["gsi1pk", "gsi1sk", "owner"])
    if rng.random() < 0.35:
        return {
            "TableName": table,
            "Key": key,
            "UpdateExpression": "REMOVE #a SET n = :one",
            "ExpressionAttributeNames": {"#a": attribute},
            "ExpressionAttributeValues": {":one": {"N": "1"}},
            "ConditionExpression": "attribute_exists(pk)",
        }
    value = {"gsi1pk": f"g{rng.randrange(3)}", "gsi1sk": f"k{rng.randrange(20):02d}", "owner": f"o{rng.randrange(2)}"}
    return {
        "TableName": table,
        "Key": key,
        "UpdateExpression": "SET #a = :v",
        "ExpressionAttributeNames": {"#a": attribute},
        "ExpressionAttributeValues": {":v": {"S": value[attribute]}},
    }


def _write_randomly(dynamodb: Any, rng: Any, table: str) -> None:
    """One write of each kind DynamoDB has, chosen at random."""
    kind = rng.choice(["put", "update", "delete", "batch", "transaction"])
    try:
        if kind == "put":
            dynamodb.put_item(TableName=table, Item=_random_item(rng))
        elif kind == "update":
            dynamodb.update_item(**_random_update(rng, table))
        elif kind == "delete":
            key = {k: v for k, v in _random_item(rng).items() if k in ("pk", "sk")}
            dynamodb.delete_item(TableName=table, Key=key)
        elif kind == "batch":
            requests = {}
            for _ in range(rng.randrange(1, 6)):
                item = _random_item(rng)
                keyed = (item["pk"]["S"], item["sk"]["S"])  # one request per key in a batch
                key = {"pk": item["pk"], "sk": item["sk"]}
                requests[keyed] = (
                    {"PutRequest": {"Item": item}} if rng.random() < 0.6 else {"DeleteRequest": {"Key": key}}
                )
            dynamodb.batch_write_item(RequestItems={table: list(requests.values())})
        else:
            operations: dict[tuple[str, str], dict[str, Any]] = {}
            for _ in range(rng.randrange(1, 4)):
                update = _random_update(rng, table)
                update.pop("ConditionExpression", None)
                put = _random_item(rng)
                choice = rng.choice(
                    [
                        {"Put": {"TableName": table, "Item": put}},
                        {"Update": update},
                        {"Delete": {"TableName": table, "Key": {"pk": put["pk"], "sk": put["sk"]}}},
                    ]
                )
                named = next(iter(choice.values()))
                key = named.get("Key") or named["Item"]
                operations[(key["pk"]["S"], key["sk"]["S"])] = choice
            dynamodb.transact_write_items(TransactItems=list(operations.values()))
    except ClientError as error:  # a REMOVE on an item that does not exist: nothing changes
        assert error.response["Error"]["Code"] == "ConditionalCheckFailedException", error


def _random_query(rng: Any, table: str) -> dict[str, Any]:
    query: dict[str, Any] = {"TableName": table, "ScanIndexForward": rng.random() < 0.5}
    if rng.random() < 0.6:
        query["Limit"] = rng.randrange(1, 5)
    where = rng.choice(["table", "table-prefix", "gsi1", "gsi1-range", "byowner"])
    if where.startswith("table"):
        query["KeyConditionExpression"] = "pk = :h"
        query["ExpressionAttributeValues"] = {":h": {"S": f"p{rng.randrange(5)}"}}
        query["ConsistentRead"] = True
        if where == "table-prefix":
            query["KeyConditionExpression"] += " AND begins_with(sk, :p)"
            query["ExpressionAttributeValues"][":p"] = {"S": "s0"}
    elif where.startswith("gsi1"):
        query["IndexName"] = "gsi1"
        query["KeyConditionExpression"] = "gsi1pk = :h"
        query["ExpressionAttributeValues"] = {":h": {"S": f"g{rng.randrange(4)}"}}
        if where == "gsi1-range":
            query["KeyConditionExpression"] += " AND gsi1sk > :r"
            query["ExpressionAttributeValues"][":r"] = {"S": f"k{rng.randrange(20):02d}"}
    else:
        query["IndexName"] = "byowner"
        query["KeyConditionExpression"] = "#o = :h"
        query["ExpressionAttributeNames"] = {"#o": "owner"}
        query["ExpressionAttributeValues"] = {":h": {"S": f"o{rng.randrange(3)}"}}
    return query


def _pages(dynamodb: Any, query: dict[str, Any]) -> list[tuple[list[Any], Any]]:
    pages = []
    asked = dict(query)
    while True:
        answer = dynamodb.query(**asked)
        pages.append((answer["Items"], answer.get("LastEvaluatedKey")))
        if "LastEvaluatedKey" not in answer:
            return pages
        asked["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


def _expected_by_scan(dynamodb: Any, query: dict[str, Any]) -> list[tuple[str, str]]:
    """The keys a query must return, in order, from a Scan of the whole table (DynamoDB developer
    guide, "Query": items sorted by the sort key, then, on an index, by the table's key; an item
    without every key attribute of an index is not in it)."""
    items = dynamodb.scan(TableName=query["TableName"], ConsistentRead=True)["Items"]
    wanted = query["ExpressionAttributeValues"]
    index = query.get("IndexName")
    hash_attr, range_attrs = {None: ("pk", ["sk"]), "gsi1": ("gsi1pk", ["gsi1sk"]), "byowner": ("owner", [])}[index]
    kept = [i for i in items if i.get(hash_attr) == wanted[":h"] and all(r in i for r in range_attrs)]
    if ":p" in wanted:
        kept = [i for i in kept if i["sk"]["S"].startswith(wanted[":p"]["S"])]
    if ":r" in wanted:
        kept = [i for i in kept if i["gsi1sk"]["S"] > wanted[":r"]["S"]]
    kept.sort(key=lambda i: (*(i[r]["S"] for r in range_attrs), i["pk"]["S"], i["sk"]["S"]))
    if not query["ScanIndexForward"]:
        kept.reverse()
    return [(i["pk"]["S"], i["sk"]["S"]) for i in kept]


def test_a_query_reads_only_its_partition_and_answers_as_moto_reading_the_whole_table(
    runtime: LocalRuntime, indexed_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After random writes of every kind (put, update setting or removing an index's key
    attribute, delete, batch, transaction), each random Query (the table's partition with or
    without a sort key condition, a GSI with a range, a sparse hash-only GSI; Limit,
    ExclusiveStartKey, ScanIndexForward) answers page by page as moto does when it reads the
    whole table, and returns the keys a Scan says it must."""
    import random

    from moto.dynamodb.models.table import Table

    from kubestep_local.moto_compat import dynamodb as patched

    rng = random.Random(18)
    dynamodb = runtime.boto3_client("dynamodb")
    read = []
    all_items = Table.all_items
    monkeypatch.setattr(Table, "all_items", lambda table: read.append(len(r := all_items(table))) or r)
    for _ in range(20):
        for _ in range(rng.randrange(1, 15)):
            _write_randomly(dynamodb, rng, indexed_table)
        items = dynamodb.scan(TableName=indexed_table, ConsistentRead=True)["Items"]
        for _ in range(6):
            query = _random_query(rng, indexed_table)
            read.clear()
            narrowed = _pages(dynamodb, query)
            pages_read = list(read)
            keys = [(i["pk"]["S"], i["sk"]["S"]) for page, _ in narrowed for i in page]
            expected = _expected_by_scan(dynamodb, query)
            if query.get("IndexName") == "byowner":  # no sort key: DynamoDB promises no order
                keys, expected = sorted(keys), sorted(expected)
            assert keys == expected, query
            # Each page read only the items with the partition key asked, not the whole table.
            hash_attr = {None: "pk", "gsi1": "gsi1pk", "byowner": "owner"}[query.get("IndexName")]
            matching = sum(1 for i in items if i.get(hash_attr) == query["ExpressionAttributeValues"][":h"])
            assert pages_read == [matching] * len(narrowed), (query, pages_read, matching)
            with monkeypatch.context() as whole_table:
                whole_table.setattr(patched, "query_candidates", lambda *args: None)
                assert _pages(dynamodb, query) == narrowed, query


UPDATE_SEQUENCE = Path(__file__).with_name("dynamodb_update_sequence.py")


def _sequence_answers(mode: str) -> dict[str, Any]:
    """dynamodb_update_sequence.py's answers and items, in a process of its own: moto there is
    patched only if ``mode`` is "patched" (this process's runtime has patched it already)."""
    result = subprocess.run(
        [sys.executable, str(UPDATE_SEQUENCE), mode],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        check=True,
    )
    return json.loads(result.stdout)


def test_updates_and_conditional_puts_answer_as_moto_answers_them() -> None:
    """The same UpdateItem and PutItem requests (expressions sent again with other values, items
    an update creates, condition failures, a syntax error and each of moto's validator refusals)
    get the same answers and leave the same items with the emulator's speed fixes as with moto
    as it ships (DynamoDB API reference, UpdateItem and PutItem). An update tree shared between
    requests, or a walk of it that processed other nodes, would answer with another request's
    values or another error."""
    patched, moto = _sequence_answers("patched"), _sequence_answers("moto")
    assert patched["answers"] == moto["answers"]
    assert patched["items"] == moto["items"]
    errors = [answer[1] for answer in moto["answers"] if answer[0] == "error"]
    assert "ConditionalCheckFailed" in errors and "InvalidTokenException" in errors
    assert len(moto["items"]) == 6


def test_an_update_tree_is_copied_node_by_node_as_deepcopy_copies_it() -> None:
    """The validator's copy of a cached update tree (``copy_plain_tree``) equals moto's deep copy
    and shares no node or list of children with the cached tree, which later requests read."""
    from moto.dynamodb.parsing.ast_nodes import Node
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    from kubestep_local.moto_compat.dynamodb import copy_plain_tree, is_plain_tree

    def shape(node: Any) -> Any:
        if not isinstance(node, Node):
            return node
        children = None if node.children is None else [shape(c) for c in node.children]
        assert node.children is None or all(not isinstance(c, Node) or c.parent is node for c in node.children)
        return (type(node), node.type, children)

    def nodes_and_lists(node: Any) -> list[int]:
        if not isinstance(node, Node):
            return []
        found = [id(node)] + ([id(node.children)] if node.children is not None else [])
        return found + [i for child in node.children or () for i in nodes_and_lists(child)]

    tree = UpdateExpressionParser.make("SET a.b[1] = if_not_exists(#x, :y) + :z REMOVE d[2], #e ADD f :g DELETE h :i")
    assert is_plain_tree(tree)
    copied = copy_plain_tree(tree)
    assert shape(copied) == shape(copy.deepcopy(tree)) == shape(tree)
    assert copied.parent is None
    assert not set(nodes_and_lists(copied)) & set(nodes_and_lists(tree))
