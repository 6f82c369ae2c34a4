"""The runtime's own stand-ins reach moto in process (kubestep_local/moto_compat/in_process.py):
the same answers as over the emulator's HTTP endpoint, errors included, and the same state gate
a snapshot holds."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from kubestep_local.moto_compat import GATE, in_process

pytestmark = pytest.mark.usefixtures("runtime")

# What differs between two answers to the same question: the request's own id and timing.
_PER_REQUEST = ("ResponseMetadata",)


def _answer(call: Any) -> Any:
    try:
        answer = call()
    except ClientError as error:
        return {"error": error.response["Error"], "status": error.response["ResponseMetadata"]["HTTPStatusCode"]}
    return {k: v for k, v in answer.items() if k not in _PER_REQUEST}


def _both(runtime: Any, service: str, ask: Any) -> tuple[Any, Any]:
    over_http = runtime.boto3_client(service)
    here = in_process.client(service, runtime.region)
    return _answer(lambda: ask(over_http)), _answer(lambda: ask(here))


def test_dynamodb_answers_match_the_http_endpoint(runtime: Any) -> None:
    table = f"in-process-{uuid.uuid4().hex[:8]}"
    ddb = runtime.boto3_client("dynamodb")
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    in_process.client("dynamodb", runtime.region).put_item(
        TableName=table, Item={"pk": {"S": "a"}, "n": {"N": "1"}, "m": {"M": {"x": {"L": [{"S": "y"}]}}}}
    )
    for ask in (
        lambda c: c.get_item(TableName=table, Key={"pk": {"S": "a"}}),
        lambda c: c.batch_get_item(RequestItems={table: {"Keys": [{"pk": {"S": "a"}}, {"pk": {"S": "b"}}]}}),
        lambda c: c.query(
            TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "a"}}
        ),
        # An error answer: the same code, message and status.
        lambda c: c.get_item(TableName=f"{table}-absent", Key={"pk": {"S": "a"}}),
        lambda c: c.put_item(TableName=table, Item={"pk": {"S": "a"}}, ConditionExpression="attribute_not_exists(pk)"),
    ):
        over_http, here = _both(runtime, "dynamodb", ask)
        assert here == over_http
    assert _answer(lambda: ddb.get_item(TableName=f"{table}-absent", Key={"pk": {"S": "a"}}))["status"] == 400


def test_query_protocol_and_s3_answers_match_the_http_endpoint(runtime: Any) -> None:
    ec2 = runtime.boto3_client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    bucket = f"in-process-{uuid.uuid4().hex[:8]}"
    runtime.boto3_client("s3").create_bucket(Bucket=bucket)
    in_process.client("s3", runtime.region).put_object(Bucket=bucket, Key="k/v.json", Body=b'{"a": 1}')
    for service, ask in (
        ("ec2", lambda c: c.describe_vpcs(VpcIds=[vpc])),
        ("ec2", lambda c: c.describe_instances(InstanceIds=["i-0123456789abcdef0"])),  # an error (XML)
        ("sts", lambda c: c.get_caller_identity()),
        ("s3", lambda c: c.list_objects_v2(Bucket=bucket)),
    ):
        over_http, here = _both(runtime, service, ask)
        assert here == over_http, service
    body = in_process.client("s3", runtime.region).get_object(Bucket=bucket, Key="k/v.json")["Body"].read()
    assert body == b'{"a": 1}'


def test_an_in_process_call_waits_while_a_snapshot_holds_the_gate(runtime: Any) -> None:
    ddb = in_process.client("dynamodb", runtime.region)
    done = threading.Event()

    def call() -> None:
        ddb.list_tables(Limit=1)
        done.set()

    with GATE.exclusive(timeout=30) as held:
        assert held
        thread = threading.Thread(target=call, daemon=True)
        thread.start()
        time.sleep(0.3)
        assert not done.is_set()  # the snapshot's state cannot change under it
    assert done.wait(30)
