"""Where the emulator's CPU goes for one AWS request, between the socket and moto's backend.

Starts the emulator's server in this process with the runtime's moto patches (as
``LocalRuntime._start_parts`` applies them), makes a few thousand representative calls with boto3
from one client thread (one request handler runs at a time), and times each layer on the
handler thread's own CPU clock (``time.thread_time``):

    python scripts/request_path_cpu.py [--rounds 100] [--profile FILE]

With ``--profile`` the handler's requests also run under cProfile (which inflates Python code
several times: read its shares, not its milliseconds). It asserts nothing; it prints numbers.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import cProfile
import functools
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.config import Config

from kubestep_local import moto_compat
from kubestep_local.moto_compat import server as moto_server
from kubestep_local.moto_compat.direct_dispatch import DirectDispatch
from kubestep_local.server import EmulatorServer

REGION = "us-east-1"
CPU: collections.Counter[str] = collections.Counter()
COUNT: collections.Counter[str] = collections.Counter()
_tls = threading.local()


def timed(owner: Any, name: str, label: str, patches: moto_compat.PatchSet) -> None:
    """Wrap the function ``owner.name`` so its CPU time on the calling thread adds up under ``label``."""
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not getattr(_tls, "on", False):
            return original(*args, **kwargs)
        started = time.thread_time()
        try:
            return original(*args, **kwargs)
        finally:
            CPU[label] += time.thread_time() - started
            COUNT[label] += 1

    patches.set(owner, name, wrapper)


@contextlib.contextmanager
def instrumented(profile: cProfile.Profile | None) -> Iterator[moto_compat.PatchSet]:
    from moto.core import utils as moto_utils
    from moto.core.responses import BaseResponse
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler

    handler_class = moto_server.keep_alive_request_handler()
    patches = moto_compat.PatchSet()
    original_handle = handler_class.handle_one_request

    def handle_one_request(self: Any) -> None:
        _tls.on = True
        if profile is not None:
            profile.enable()
        started = time.thread_time()
        try:
            original_handle(self)
        finally:
            if profile is not None:
                profile.disable()
            CPU["request"] += time.thread_time() - started
            COUNT["request"] += 1
            _tls.on = False

    patches.set(handler_class, "handle_one_request", handle_one_request)
    timed(handler_class, "run_wsgi", "run_wsgi", patches)
    timed(MotoRequestHandler, "make_environ", "make_environ", patches)
    timed(DomainDispatcherApplication, "__call__", "dispatcher_and_flask", patches)
    timed(DomainDispatcherApplication, "get_application", "dispatcher_routing", patches)
    timed(moto_utils.convert_to_flask_response, "__call__", "moto_view", patches)
    timed(DirectDispatch, "route", "direct_route", patches)
    timed(DirectDispatch, "answer", "direct_answer", patches)
    timed(BaseResponse, "_dispatch", "moto_dispatch", patches)
    timed(BaseResponse, "setup_class", "moto_setup_class", patches)
    timed(BaseResponse, "call_action", "moto_call_action", patches)
    with contextlib.ExitStack() as stack:
        stack.callback(patches.undo)
        yield patches


def scenario(endpoint: str) -> dict[str, Callable[[], Any]]:
    """Resources to read, and one call per kind of request kubestep's workers make most."""

    def client(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}),
        )

    ddb, ec2, asg, sfn, sts = (client(s) for s in ("dynamodb", "ec2", "autoscaling", "stepfunctions", "sts"))
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk")],
        BillingMode="PAY_PER_REQUEST",
    )
    for p in range(10):
        for s in range(10):
            ddb.put_item(
                TableName="t",
                Item={
                    "pk": {"S": f"cluster#{p}"},
                    "sk": {"S": f"item#{s}"},
                    "spec": {"M": {"replicas": {"N": "3"}, "name": {"S": f"c{p}"}, "tags": {"L": [{"S": "a"}]}}},
                    "version": {"N": "1"},
                },
            )
    image = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    reservation = ec2.run_instances(ImageId=image, MinCount=3, MaxCount=3, InstanceType="m5.large")
    instance_id = reservation["Instances"][0]["InstanceId"]
    template = ec2.create_launch_template(
        LaunchTemplateName="lt", LaunchTemplateData={"ImageId": image, "InstanceType": "m5.large"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    asg.create_auto_scaling_group(
        AutoScalingGroupName="g",
        LaunchTemplate={"LaunchTemplateId": template},
        MinSize=0,
        MaxSize=2,
        AvailabilityZones=[f"{REGION}a"],
    )
    definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "End": True}}}
    machine = sfn.create_state_machine(
        name="m", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r"
    )["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING":
        time.sleep(0.05)
    key = {"pk": {"S": "cluster#3"}, "sk": {"S": "item#4"}}
    return {
        "dynamodb GetItem": lambda: ddb.get_item(TableName="t", Key=key, ConsistentRead=True),
        "dynamodb UpdateItem": lambda: ddb.update_item(
            TableName="t",
            Key=key,
            UpdateExpression="SET #v = #v + :one",
            ExpressionAttributeNames={"#v": "version"},
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="ALL_NEW",
        ),
        "dynamodb BatchGetItem": lambda: ddb.batch_get_item(
            RequestItems={"t": {"Keys": [{"pk": {"S": f"cluster#{p}"}, "sk": {"S": "item#1"}} for p in range(5)]}}
        ),
        "dynamodb Query": lambda: ddb.query(
            TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "cluster#2"}}
        ),
        "ec2 DescribeInstances": lambda: ec2.describe_instances(InstanceIds=[instance_id]),
        "autoscaling DescribeAutoScalingGroups": lambda: asg.describe_auto_scaling_groups(AutoScalingGroupNames=["g"]),
        "stepfunctions DescribeExecution": lambda: sfn.describe_execution(executionArn=execution),
        "stepfunctions GetExecutionHistory": lambda: sfn.get_execution_history(executionArn=execution),
        "sts GetCallerIdentity": lambda: sts.get_caller_identity(),
    }


LAYERS = (
    ("HTTP request line and headers (http.server)", lambda c: c["request"] - c["run_wsgi"]),
    ("WSGI environ (werkzeug make_environ)", lambda c: c["make_environ"]),
    (
        "body read, state gate, wsgiref answer writer",
        lambda c: (
            c["run_wsgi"] - c["make_environ"] - c["dispatcher_and_flask"] - c["direct_route"] - c["direct_answer"]
        ),
    ),
    ("DomainDispatcherApplication routing", lambda c: c["dispatcher_routing"]),
    (
        "Flask (request context, URL map, CORS, Response)",
        lambda c: c["dispatcher_and_flask"] - c["dispatcher_routing"] - c["moto_view"],
    ),
    (
        "moto's view wrapper (request normalising, Response object)",
        lambda c: c["moto_view"] - c["moto_dispatch"] if c["moto_view"] else 0.0,
    ),
    ("DirectDispatch.route", lambda c: c["direct_route"]),
    (
        "DirectDispatch.answer outside moto (request, Response, CORS)",
        lambda c: c["direct_answer"] - c["moto_dispatch"] if c["direct_answer"] else 0.0,
    ),
    ("moto BaseResponse.setup_class (parse, region, account)", lambda c: c["moto_setup_class"]),
    ("moto call_action (backend action, serialisation, request id)", lambda c: c["moto_call_action"]),
)


def report(title: str, cpu: collections.Counter[str], count: int) -> None:
    total = cpu["request"]
    print(f"\n{title}: {count} requests, {1000 * total / count:.3f} ms of handler-thread CPU a request")
    for name, value in LAYERS:
        part = value(cpu)
        print(f"  {1000 * part / count:7.3f} ms  {100 * part / total:5.1f} %  {name}")
    outside = total - cpu["moto_dispatch"]
    print(f"  outside moto's response classes: {1000 * outside / count:.3f} ms a request")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100, help="calls of each kind (default 100)")
    parser.add_argument("--profile", help="write the handler's cProfile statistics here")
    parser.add_argument(
        "--flask", action="store_true", help="every request through Flask, as moto's server does (no DirectDispatch)"
    )
    args = parser.parse_args(argv)

    server = EmulatorServer(port=0)
    patches = moto_compat.PatchSet()
    if args.flask:
        patches.set(moto_compat, "start_server", functools.partial(moto_compat.start_server, direct_dispatch=False))
    try:
        server.start()
        moto_compat.fix_interpreter_bugs(patches)
        moto_compat.match_aws_semantics(patches)
        moto_compat.fix_moto_performance(patches)
        calls = scenario(server.endpoint_url)
        for call in calls.values():  # warm: first-call imports and caches out of the numbers
            for _ in range(3):
                call()
        profile = cProfile.Profile(time.thread_time) if args.profile else None
        per_call: dict[str, collections.Counter[str]] = {}
        with instrumented(profile):
            for name, call in calls.items():
                before = CPU.copy()
                for _ in range(args.rounds):
                    call()
                per_call[name] = CPU - before
        for name, cpu in per_call.items():
            report(name, cpu, args.rounds)
        report("all", CPU, COUNT["request"])
        if profile is not None:
            profile.dump_stats(args.profile)
            print(f"\ncProfile statistics: {args.profile}")
    finally:
        patches.undo()
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
