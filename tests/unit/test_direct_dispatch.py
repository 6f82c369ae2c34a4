"""The emulator answers JSON- and query-protocol requests without Flask
(kubestep_local/moto_compat/direct_dispatch.py) exactly as moto's Flask app answers them: the same
signed request, sent to a server with the direct route and to one without it, gets the same status,
headers and body, byte for byte but for request ids and dates; S3, Lambda and the moto API stay on
Flask."""

from __future__ import annotations

import http.client
import json
import re
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError

from kubestep_local import moto_compat
from kubestep_local.moto_compat.direct_dispatch import DirectDispatch

REGION = "us-east-1"
# Headers whose values differ from one answer to the next however it is made (the checksum covers
# a body with a request id in it: it is checked on its own).
VARYING_HEADERS = {"date", "x-amzn-requestid", "x-amz-request-id", "x-amz-id-2", "x-amz-crc32"}
# A request id in an answer's body (query protocol: <RequestId>, EC2: <requestId>; JSON errors).
REQUEST_ID = re.compile(rb"(<RequestId>|<requestId>)[^<]*(</RequestId>|</requestId>)")
ROLE_ARN = f"arn:aws:iam::{moto_compat.ACCOUNT_ID}:role/direct-dispatch"


class Answer:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = response.getheaders()
        self.body = response.read()

    def normalised(self) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = [(name, "-" if name.lower() in VARYING_HEADERS else value) for name, value in self.headers]
        return self.status, headers, REQUEST_ID.sub(rb"\1-\2", self.body)

    def checksum_matches(self) -> bool:
        checksum = dict((name.lower(), value) for name, value in self.headers).get("x-amz-crc32")
        return checksum is None or int(checksum) == zlib.crc32(self.body)


class Servers:
    """The same moto backends behind two servers: one with the direct route, one Flask only."""

    def __init__(self) -> None:
        gate = moto_compat.StateGate()
        self.direct = moto_compat.start_server("127.0.0.1", 0, gate=gate)
        self.flask = moto_compat.start_server("127.0.0.1", 0, gate=gate, direct_dispatch=False)
        self.pairs: list[tuple[str, Answer, Answer]] = []

    def stop(self) -> None:
        self.direct.stop()
        self.flask.stop()

    def client(self, service: str, *, both_ways: bool = False) -> Any:
        """A client of the direct server; ``both_ways``: each request also goes, as signed, to the
        Flask-only server, and both answers are kept in ``pairs``."""
        client = boto3.client(
            service,
            endpoint_url=f"http://127.0.0.1:{self.direct.port}",
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        if both_ways:
            client.meta.events.register("before-send", self._send_both_ways)
        return client

    def _send_both_ways(self, request: Any, **_: Any) -> AWSResponse:
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        path = request.url.split(f":{self.direct.port}", 1)[1]
        answers = []
        for port in (self.direct.port, self.flask.port):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            # The same bytes to both, Host included: moto builds URLs (SQS's queue URLs) from it.
            headers = {**request.headers, "Host": f"127.0.0.1:{self.direct.port}"}
            connection.request(request.method, path, body=body, headers=headers)
            answers.append(Answer(connection.getresponse()))
            connection.close()
        direct, flask = answers
        target = request.headers.get("X-Amz-Target", b"").decode()
        self.pairs.append((f"{request.method} {path} {target}", direct, flask))
        return AWSResponse(request.url, direct.status, dict(direct.headers), _Raw(direct.body))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    moto_compat.reset_backends()
    handle = Servers()
    try:
        yield handle
    finally:
        handle.stop()
        moto_compat.reset_backends()


@pytest.fixture
def directly_answered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The targets or actions of the requests DirectDispatch answered."""
    answered: list[str] = []
    original = DirectDispatch.answer

    def answer(self: DirectDispatch, handler: Any, environ: dict[str, Any], start_response: Any) -> Any:
        answered.append(environ.get("HTTP_X_AMZ_TARGET") or environ.get("CONTENT_TYPE", ""))
        return original(self, handler, environ, start_response)

    monkeypatch.setattr(DirectDispatch, "answer", answer)
    return answered


def _expect_error(call: Callable[[], Any], code: str) -> None:
    with pytest.raises(ClientError) as raised:
        call()
    assert raised.value.response["Error"]["Code"] == code


def _resources(servers: Servers) -> dict[str, str]:
    """What the compared calls read, made through the direct server."""
    ddb = servers.client("dynamodb")
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for sort in range(3):
        ddb.put_item(TableName="t", Item={"pk": {"S": "p"}, "sk": {"S": f"s{sort}"}, "n": {"N": "1"}})
    image = moto_compat.publish_ubuntu_images(moto_compat.ACCOUNT_ID, REGION)["amd64"]
    ec2 = servers.client("ec2")
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="m5.large")["Instances"][0]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    template = servers.client("ec2").create_launch_template(
        LaunchTemplateName="lt", LaunchTemplateData={"ImageId": image, "InstanceType": "m5.large"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    servers.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="g",
        LaunchTemplate={"LaunchTemplateId": template},
        MinSize=0,
        MaxSize=1,
        VPCZoneIdentifier=subnet,
    )
    servers.client("elbv2").create_load_balancer(Name="lb", Subnets=[subnet], Type="network", Scheme="internal")
    sfn = servers.client("stepfunctions")
    definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
    machine = sfn.create_state_machine(name="m", definition=json.dumps(definition), roleArn=ROLE_ARN)["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, name="e", input="{}")["executionArn"]
    servers.client("ssm").put_parameter(Name="/direct/p", Value="v", Type="String")
    servers.client("secretsmanager").create_secret(Name="direct-secret", SecretString="s")
    servers.client("events").put_rule(Name="r", ScheduleExpression="rate(5 minutes)")
    servers.client("sqs").create_queue(QueueName="q")
    servers.client("logs").create_log_group(logGroupName="/direct/logs")
    servers.client("kms").create_key(Description="direct")
    return {"instance": instance["InstanceId"], "machine": machine, "execution": execution}


def test_json_and_query_answers_are_flasks_byte_for_byte(servers: Servers, directly_answered: list[str]) -> None:
    made = _resources(servers)
    directly_answered.clear()
    key = {"pk": {"S": "p"}, "sk": {"S": "s1"}}

    ddb = servers.client("dynamodb", both_ways=True)
    ddb.get_item(TableName="t", Key=key)
    ddb.update_item(
        TableName="t",
        Key=key,
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "7"}},
        ReturnValues="ALL_NEW",
    )
    ddb.batch_get_item(RequestItems={"t": {"Keys": [key, {"pk": {"S": "p"}, "sk": {"S": "s2"}}]}})
    ddb.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p"}})
    _expect_error(lambda: ddb.get_item(TableName="missing", Key=key), "ResourceNotFoundException")

    ec2 = servers.client("ec2", both_ways=True)
    ec2.describe_instances(InstanceIds=[made["instance"]])
    ec2.describe_vpcs()
    _expect_error(lambda: ec2.describe_instances(InstanceIds=["i-0123456789abcdef0"]), "InvalidInstanceID.NotFound")

    servers.client("autoscaling", both_ways=True).describe_auto_scaling_groups(AutoScalingGroupNames=["g"])
    elbv2 = servers.client("elbv2", both_ways=True)
    elbv2.describe_load_balancers(Names=["lb"])
    _expect_error(lambda: elbv2.describe_load_balancers(Names=["missing"]), "LoadBalancerNotFound")
    iam = servers.client("iam", both_ways=True)
    iam.list_roles()
    _expect_error(lambda: iam.get_role(RoleName="missing"), "NoSuchEntity")
    servers.client("sts", both_ways=True).get_caller_identity()

    sfn = servers.client("stepfunctions", both_ways=True)
    sfn.describe_execution(executionArn=made["execution"])
    sfn.get_execution_history(executionArn=made["execution"])
    _expect_error(lambda: sfn.describe_state_machine(stateMachineArn=made["machine"] + "x"), "StateMachineDoesNotExist")

    ssm = servers.client("ssm", both_ways=True)
    ssm.get_parameter(Name="/direct/p")
    _expect_error(lambda: ssm.get_parameter(Name="/direct/missing"), "ParameterNotFound")
    secrets = servers.client("secretsmanager", both_ways=True)
    secrets.describe_secret(SecretId="direct-secret")
    _expect_error(lambda: secrets.get_secret_value(SecretId="missing"), "ResourceNotFoundException")
    events = servers.client("events", both_ways=True)
    events.describe_rule(Name="r")
    _expect_error(lambda: events.describe_rule(Name="missing"), "ResourceNotFoundException")
    sqs = servers.client("sqs", both_ways=True)
    assert f":{servers.direct.port}/" in sqs.get_queue_url(QueueName="q")["QueueUrl"]  # the server's URL
    sqs.list_queues()
    servers.client("logs", both_ways=True).describe_log_groups()
    servers.client("kms", both_ways=True).list_keys()
    cloudformation = servers.client("cloudformation", both_ways=True)
    cloudformation.list_stacks()
    _expect_error(lambda: cloudformation.describe_stacks(StackName="missing"), "ValidationError")
    servers.client("resourcegroupstaggingapi", both_ways=True).get_resources()

    assert len(servers.pairs) == 30
    for request, direct, flask in servers.pairs:
        assert direct.normalised() == flask.normalised(), request
        assert direct.checksum_matches() and flask.checksum_matches(), request
    # The direct server answered each of them directly; the Flask-only server none.
    assert len(directly_answered) == len(servers.pairs)
    assert {status for _, direct, _ in servers.pairs for status in [direct.status]} >= {200, 400}
    assert any(body.startswith(b"<?xml") for body in (direct.body for _, direct, _ in servers.pairs))


def test_s3_lambda_and_the_moto_api_stay_on_flask(servers: Servers, directly_answered: list[str]) -> None:
    s3 = servers.client("s3")
    s3.create_bucket(Bucket="direct-dispatch")
    assert s3.list_objects_v2(Bucket="direct-dispatch")["KeyCount"] == 0
    assert servers.client("lambda").list_functions()["Functions"] == []
    connection = http.client.HTTPConnection("127.0.0.1", servers.direct.port, timeout=10)
    connection.request("GET", "/moto-api/config")
    assert "lambda" in json.loads(connection.getresponse().read())
    connection.close()
    assert directly_answered == []
