"""Fault injection (kubestep_local/faults.py) inside real Lambda workers: a function deployed into
the stub runtime makes the AWS call its event names; faults make it fail as AWS would."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from kubestep_local.faults import Fault, Invocation
from kubestep_local.runtime import LocalRuntime

# Calls AWS as the event says, with botocore's standard retries (as kubestep's clients retry).
CALLER = """
import json
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

def handler(event, context):
    client = boto3.client(event["service"], config=Config(retries={"mode": "standard", "max_attempts": 5}))
    try:
        answer = getattr(client, event["op"])(**event.get("params", {}))
    except ClientError as exc:
        return {"error": exc.response["Error"]["Code"], "message": str(exc)}
    retries = answer["ResponseMetadata"]["RetryAttempts"]
    return {"answer": json.loads(json.dumps(answer, default=str)), "retries": retries}
"""


@pytest.fixture(scope="module")
def caller(runtime: LocalRuntime) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("caller.py", CALLER)
    role = runtime.boto3_client("iam").create_role(RoleName="caller-role", AssumeRolePolicyDocument="{}")["Role"]
    runtime.boto3_client("lambda").create_function(
        FunctionName="fault-caller",
        Runtime="python3.13",
        Role=role["Arn"],
        Handler="caller.handler",
        Code={"ZipFile": buffer.getvalue()},
        Timeout=60,
    )
    return "fault-caller"


@pytest.fixture(autouse=True)
def no_faults_left(runtime: LocalRuntime):
    yield
    runtime.faults.clear()


def invoke(runtime: LocalRuntime, function: str, event: dict) -> dict:
    client = runtime.boto3_client("lambda")
    response = client.invoke(FunctionName=function, Payload=json.dumps(event).encode())
    payload = json.loads(response["Payload"].read())
    return {"functionError": response.get("FunctionError"), **payload}


def create_volume(token: str | None = None, cluster: str = "c1") -> dict:
    params = {
        "AvailabilityZone": "us-east-1a",
        "Size": 1,
        "TagSpecifications": [{"ResourceType": "volume", "Tags": [{"Key": "case", "Value": token or "none"}]}],
    }
    if token:
        params["ClientToken"] = token
    return {"service": "ec2", "op": "create_volume", "params": params, "clusterName": cluster}


def volumes(runtime: LocalRuntime, case: str) -> list[str]:
    found = runtime.boto3_client("ec2").describe_volumes(Filters=[{"Name": "tag:case", "Values": [case]}])["Volumes"]
    return [v["VolumeId"] for v in found]


def test_throttled_three_times_the_call_still_succeeds(runtime: LocalRuntime, caller: str) -> None:
    (fault,) = runtime.inject(Fault("throttle", "ec2:CreateVolume", times=3, cluster="c1"))
    result = invoke(runtime, caller, create_volume("throttled"))
    assert "answer" in result, result
    assert result["retries"] == 3, "botocore retried each throttling answer"
    assert runtime.faults.get(fault).fired == 3
    assert len(volumes(runtime, "throttled")) == 1
    assert {f.operation for f in runtime.faults.firings(fault)} == {"ec2:CreateVolume"}


def test_a_hard_error_reaches_the_handler_and_changes_nothing(runtime: LocalRuntime, caller: str) -> None:
    runtime.inject(Fault("error", "ec2:CreateVolume", cluster="c1"))
    result = invoke(runtime, caller, create_volume("refused"))
    assert result["error"] == "UnauthorizedOperation" and "CreateVolume" in result["message"]
    assert volumes(runtime, "refused") == []
    # The recorder marks the error as the injected one (the IAM check does not evaluate it).
    calls = runtime.recorder.call_records()
    (refused,) = [c for c in calls if c.function_name == caller and c.operation == "CreateVolume" and c.error]
    assert refused.error_injected and refused.error == "UnauthorizedOperation"
    # Once: the next call goes through.
    assert "answer" in invoke(runtime, caller, create_volume("refused"))


def test_a_lost_response_took_effect_and_botocore_sends_the_call_again(runtime: LocalRuntime, caller: str) -> None:
    runtime.inject(Fault("lost-response", "ec2:CreateSecurityGroup", cluster="c1"))
    vpc = runtime.boto3_client("ec2").create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    group = {"GroupName": "lost", "Description": "lost response", "VpcId": vpc}
    result = invoke(
        runtime, caller, {"service": "ec2", "op": "create_security_group", "params": group, "clusterName": "c1"}
    )
    # The first send made the group; the resent call is told so (a step must read it back).
    assert result["error"] == "InvalidGroup.Duplicate", result
    # The recorder keeps the answer the handler never saw: the IAM check learns what the call made.
    calls = runtime.recorder.call_records()
    (record,) = [c for c in calls if c.function_name == caller and c.operation == "CreateSecurityGroup"]
    made = runtime.boto3_client("ec2").describe_security_groups(Filters=[{"Name": "group-name", "Values": ["lost"]}])
    (group_id,) = [g["GroupId"] for g in made["SecurityGroups"]]
    assert record.error == "InvalidGroup.Duplicate" and not record.error_injected
    assert [answer["GroupId"] for answer in record.lost_responses] == [group_id]
    # CreateVolume carries an idempotency token botocore fills in: the resent call gets the same
    # volume (on AWS, and in the emulator: moto_compat.match_aws_semantics).
    runtime.inject(Fault("lost-response", "ec2:CreateVolume", cluster="c1"))
    result = invoke(runtime, caller, create_volume("tokened"))
    assert result["retries"] == 1
    assert volumes(runtime, "tokened") == [result["answer"]["VolumeId"]]


def test_a_crash_after_the_call_kills_the_worker(runtime: LocalRuntime, caller: str) -> None:
    runtime.inject(Fault("crash", "ec2:CreateVolume", cluster="c1"))
    result = invoke(runtime, caller, create_volume("crashed"))
    assert result["functionError"] == "Unhandled" and result["errorType"] == "Runtime.ExitError"
    assert len(volumes(runtime, "crashed")) == 1, "the call took effect before the worker died"
    # The worker told the calls it made before dying: the recorder knows what the crashed call made.
    calls = [c for c in runtime.recorder.call_records() if c.function_name == caller and c.operation == "CreateVolume"]
    (crashed,) = [c for c in calls if (c.params or {}).get("ClientToken") == "crashed"]
    assert [answer["VolumeId"] for answer in crashed.lost_responses] == volumes(runtime, "crashed")
    assert "answer" in invoke(runtime, caller, create_volume("after-crash")), "a new worker serves the next one"


def test_lambda_service_exception_fails_the_invoke_itself(runtime: LocalRuntime, caller: str) -> None:
    runtime.inject(Fault("service-exception", function=caller, cluster="c1"))
    import boto3

    # Asked once, as Step Functions' Lambda integration asks (the runtime's own client retries 5xx).
    once = boto3.client(
        "lambda",
        endpoint_url=runtime.endpoint_url,
        region_name=runtime.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}),
    )
    with pytest.raises(ClientError) as raised:
        once.invoke(FunctionName=caller, Payload=json.dumps(create_volume("refused-invoke")).encode())
    assert raised.value.response["Error"]["Code"] == "ServiceException"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert volumes(runtime, "refused-invoke") == [], "the function never ran"


def test_faults_hit_only_their_cluster_and_matching_requests(runtime: LocalRuntime, caller: str) -> None:
    (other, matched) = runtime.inject(
        Fault("error", "ec2:CreateVolume", cluster="someone-else", times=None),
        Fault("error", "ec2:CreateVolume", match="needle", times=None),
    )
    assert "answer" in invoke(runtime, caller, create_volume("haystack"))
    assert invoke(runtime, caller, create_volume("needle"))["error"] == "UnauthorizedOperation"
    assert runtime.faults.get(other).fired == 0 and runtime.faults.get(matched).fired == 1
    runtime.faults.remove(matched)
    assert "answer" in invoke(runtime, caller, create_volume("needle")), "removed at run time"


def test_the_invocation_knows_its_cluster_from_any_workflow_event() -> None:
    manifest = {"request": {"cluster": {"metadata": {"name": "prod"}}}, "task": "AcquireLock"}
    assert Invocation.from_event("x-cluster-tasks", manifest).cluster == "prod"
    assert Invocation.from_event("x", {"request": {"clusterName": "prod"}}).cluster == "prod"
    assert Invocation.from_event("x", {"clusterName": "prod", "task": "EnsureEtcdVolume"}).task == "EnsureEtcdVolume"
    with pytest.raises(ValueError, match="needs the AWS operation"):
        Fault("throttle")
    with pytest.raises(ValueError, match="Fault.kind"):
        Fault("explode", "ec2:CreateVolume")


def test_the_worker_reads_the_fault_plan_from_the_variable_the_runtime_sets() -> None:
    """The worker imports nothing of the project before the asset's path is set, so it spells the
    variable out: it must be the one faults.py names and the runtime exports."""
    from pathlib import Path

    from kubestep_local import faults

    worker = (Path(faults.__file__).parent / "_worker.py").read_text()
    assert f'os.environ.get("{faults.ENV_VAR}")' in worker
