"""A tiny CDK app shaped like the management-service stack, for the local runtime's own tests.

Run as a script (``python stub_app.py <outdir>``) so jsii's Node process stays out of pytest.
It writes a ``lambdas/`` package into ``<outdir>/../code`` and synthesizes one stack
``kubestep-stub`` with the resource types the real stack uses (KMS key, DynamoDB Table with
GSI/TTL/PITR, IAM roles + instance profile, three Python functions from one asset, log group,
state machines from strings with DefinitionSubstitutions, EventBridge rules, an API Gateway
REST API with an IAM-authorized ``{proxy+}`` Lambda integration under stage ``v1``).
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

SERVICE = "stub"

HANDLER_CODE = textwrap.dedent(
    """
    import json
    import os
    import time

    import boto3


    class ResourcePending(Exception):
        pass


    class Boom(Exception):
        pass


    def _table():
        return boto3.resource("dynamodb").Table(os.environ["KUBESTEP_TABLE_NAME"])


    def handler(event, context):
        task = event.get("task")
        if task == "echo":
            import pydantic_core

            return {"event": event, "function": context.function_name,
                    "remaining": context.get_remaining_time_in_millis() > 0,
                    "memory": context.memory_limit_in_mb,
                    "arn": context.invoked_function_arn,
                    "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
                    "region": os.environ.get("AWS_REGION"),
                    "service": os.environ.get("KUBESTEP_SERVICE_NAME"),
                    "timeScale": os.environ.get("KUBESTEP_LOCAL_TIME_SCALE"),
                    "handlerFile": __file__,
                    "nativeDep": pydantic_core.__file__}
        if task == "sleep":
            time.sleep(float(event.get("seconds", 1)))
            return {"slept": event.get("seconds"), "pid": os.getpid()}
        if task == "flaky":
            # Fails with ResourcePending until the counter reaches `succeedAfter`.
            item = _table().update_item(
                Key={"pk": "FLAKY#" + event["key"], "sk": "COUNTER"},
                UpdateExpression="ADD attempts :one",
                ExpressionAttributeValues={":one": 1},
                ReturnValues="UPDATED_NEW",
            )
            attempts = int(item["Attributes"]["attempts"])
            if attempts < int(event.get("succeedAfter", 3)):
                raise ResourcePending(f"attempt {attempts}")
            return {"attempts": attempts}
        if task == "boom":
            raise Boom("it went boom")
        if task == "exit":
            os._exit(3)
        return {"unknown": task}
    """
)

EVENTS_CODE = textwrap.dedent(
    """
    import json
    import os

    import boto3


    def handler(event, context):
        boto3.client("dynamodb").put_item(
            TableName=os.environ["KUBESTEP_TABLE_NAME"],
            Item={"pk": {"S": "EVENT#" + event.get("detail-type", "none")},
                  "sk": {"S": event.get("id", "")},
                  "body": {"S": json.dumps(event)}},
        )
        return {"ok": True}
    """
)

API_CODE = textwrap.dedent(
    """
    import base64
    import json


    def handler(event, context):
        body = event.get("body")
        if body and event.get("isBase64Encoded"):
            body = base64.b64decode(body).decode()
        return {
            "statusCode": 201 if event["httpMethod"] == "POST" else 200,
            "headers": {"Content-Type": "application/json", "X-Stub": "yes"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": json.dumps({
                "path": event["path"],
                "proxy": (event.get("pathParameters") or {}).get("proxy"),
                "method": event["httpMethod"],
                "query": event.get("queryStringParameters"),
                "multiQuery": event.get("multiValueQueryStringParameters"),
                "stage": event["requestContext"]["stage"],
                "resourcePath": event["requestContext"]["resourcePath"],
                "body": body,
                "function": context.function_name,
            }),
        }
    """
)


def _asl(definition: dict) -> str:
    return json.dumps(definition, indent=2)


FANOUT = _asl(
    {
        "Comment": "Map of concurrency 4 over sleeping tasks",
        "StartAt": "Fanout",
        "TimeoutSeconds": 300,
        "States": {
            "Fanout": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 4,
                "ItemSelector": {
                    "task": "sleep",
                    "seconds.$": "$$.Map.Item.Value",
                    "operationId.$": "$$.Execution.Name",
                },
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Sleep",
                    "States": {"Sleep": {"Type": "Task", "Resource": "${TasksFunctionArn}", "End": True}},
                },
                "End": True,
            }
        },
    }
)

RETRY_CATCH = _asl(
    {
        "Comment": "Retry on a custom error, Catch another, scaled Wait",
        "StartAt": "Flaky",
        "TimeoutSeconds": 300,
        "States": {
            "Flaky": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {
                    "FunctionName": "${TasksFunctionArn}",
                    "Payload": {
                        "task": "flaky",
                        "key.$": "$$.Execution.Name",
                        "operationId.$": "$$.Execution.Name",
                        "succeedAfter": 3,
                    },
                },
                "ResultSelector": {"attempts.$": "$.Payload.attempts"},
                "ResultPath": "$.flaky",
                "Retry": [
                    {
                        "ErrorEquals": ["ResourcePending"],
                        "IntervalSeconds": 10,
                        "MaxAttempts": 5,
                        "BackoffRate": 2.0,
                    },
                    {
                        "ErrorEquals": [
                            "Lambda.ServiceException",
                            "Lambda.SdkClientException",
                            "Lambda.TooManyRequestsException",
                        ],
                        "MaxAttempts": 2,
                    },
                ],
                "Next": "Pause",
            },
            "Pause": {"Type": "Wait", "Seconds": 30, "Next": "Boom"},
            "Boom": {
                "Type": "Task",
                "Resource": "${TasksFunctionArn}",
                "Parameters": {"task": "boom", "operationId.$": "$$.Execution.Name"},
                "Retry": [{"ErrorEquals": ["ResourcePending"], "MaxAttempts": 3}],
                "Catch": [{"ErrorEquals": ["Boom"], "ResultPath": "$.error", "Next": "Caught"}],
                "Next": "Done",
            },
            "Caught": {
                "Type": "Pass",
                "Parameters": {
                    "error.$": "$.error.Error",
                    "flaky.$": "$.flaky",
                    "execution.$": "$$.Execution.Name",
                },
                "End": True,
            },
            "Done": {"Type": "Succeed"},
        },
    }
)

FAILING = _asl(
    {
        "StartAt": "Boom",
        "TimeoutSeconds": 60,
        "States": {
            "Boom": {
                "Type": "Task",
                "Resource": "${TasksFunctionArn}",
                "Parameters": {"task": "boom"},
                "End": True,
            }
        },
    }
)

WORKFLOWS = {"Fanout": FANOUT, "RetryCatch": RETRY_CATCH, "Failing": FAILING}


def write_code(code_dir: Path) -> None:
    package = code_dir / "lambdas"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    (package / "tasks.py").write_text(HANDLER_CODE)
    (package / "events.py").write_text(EVENTS_CODE)
    (package / "api.py").write_text(API_CODE)
    # A stand-in for a native dependency built for another platform: the runtime must not
    # load it (only `kubestep` and `lambdas` come from the asset).
    (code_dir / "pydantic_core").mkdir(exist_ok=True)
    (code_dir / "pydantic_core" / "__init__.py").write_text("raise ImportError('aarch64 build')\n")


def synth(outdir: Path) -> Path:
    import aws_cdk as cdk
    from aws_cdk import aws_apigateway as apigw
    from aws_cdk import aws_dynamodb as ddb
    from aws_cdk import aws_events as events
    from aws_cdk import aws_events_targets as targets
    from aws_cdk import aws_iam as iam
    from aws_cdk import aws_kms as kms
    from aws_cdk import aws_lambda as lambda_
    from aws_cdk import aws_logs as logs
    from aws_cdk import aws_stepfunctions as sfn

    code_dir = outdir.parent / "code"
    write_code(code_dir)
    app = cdk.App(outdir=str(outdir))
    stack = cdk.Stack(app, f"kubestep-{SERVICE}", env=cdk.Environment(region="us-east-1"))
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    table = ddb.Table(
        stack,
        "Table",
        table_name=f"{SERVICE}-kubestep",
        partition_key=ddb.Attribute(name="pk", type=ddb.AttributeType.STRING),
        sort_key=ddb.Attribute(name="sk", type=ddb.AttributeType.STRING),
        billing_mode=ddb.BillingMode.PAY_PER_REQUEST,
        encryption=ddb.TableEncryption.CUSTOMER_MANAGED,
        encryption_key=key,
        point_in_time_recovery_specification=ddb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True),
        time_to_live_attribute="ttl",
        removal_policy=cdk.RemovalPolicy.DESTROY,
    )
    table.add_global_secondary_index(
        index_name="gsi1",
        partition_key=ddb.Attribute(name="gsi1pk", type=ddb.AttributeType.STRING),
        sort_key=ddb.Attribute(name="gsi1sk", type=ddb.AttributeType.STRING),
    )
    role = iam.Role(
        stack,
        "ControlPlaneRole",
        role_name=f"{SERVICE}-control-plane",
        assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
    )
    table.grant_write_data(role)
    iam.CfnInstanceProfile(
        stack, "ControlPlaneProfile", instance_profile_name=f"{SERVICE}-control-plane", roles=[role.role_name]
    )

    code = lambda_.Code.from_asset(str(code_dir))
    env = {
        "KUBESTEP_TABLE_NAME": table.table_name,
        "KUBESTEP_SERVICE_NAME": SERVICE,
        "POWERTOOLS_SERVICE_NAME": "kubestep",
    }

    def function(cid: str, name: str, handler: str) -> lambda_.Function:
        fn = lambda_.Function(
            stack,
            cid,
            function_name=f"{SERVICE}-{name}",
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler=handler,
            code=code,
            environment=env,
            timeout=cdk.Duration.seconds(30),
            memory_size=512,
        )
        table.grant_read_write_data(fn)
        return fn

    tasks = function("TasksFunction", "tasks", "lambdas.tasks.handler")
    events_fn = function("EventsFunction", "execution-events", "lambdas.events.handler")
    api_fn = function("ApiFunction", "api", "lambdas.api.handler")

    machines = []
    for workflow, text in WORKFLOWS.items():
        log_group = logs.LogGroup(
            stack,
            f"{workflow}Logs",
            log_group_name=f"/aws/vendedlogs/states/{SERVICE}-{workflow}",
            removal_policy=cdk.RemovalPolicy.DESTROY,
        )
        machine = sfn.StateMachine(
            stack,
            workflow,
            state_machine_name=f"{SERVICE}-{workflow}",
            definition_body=sfn.DefinitionBody.from_string(text),
            definition_substitutions={"TasksFunctionArn": tasks.function_arn},
            timeout=cdk.Duration.minutes(5),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL),
        )
        tasks.grant_invoke(machine)
        machines.append(machine)
        cdk.CfnOutput(stack, f"{workflow}StateMachineArn", value=machine.state_machine_arn)

    events.Rule(
        stack,
        "ExecutionStatus",
        rule_name=f"{SERVICE}-execution-status",
        event_pattern=events.EventPattern(
            source=["aws.states"],
            detail_type=["Step Functions Execution Status Change"],
            detail={
                "status": ["FAILED", "TIMED_OUT", "ABORTED"],
                "stateMachineArn": [m.state_machine_arn for m in machines],
            },
        ),
        targets=[targets.LambdaFunction(events_fn)],
    )
    events.Rule(
        stack,
        "Planner",
        rule_name=f"{SERVICE}-planner",
        schedule=events.Schedule.rate(cdk.Duration.minutes(1)),
        targets=[targets.LambdaFunction(events_fn)],
    )
    events.Rule(
        stack,
        "Nightly",
        rule_name=f"{SERVICE}-nightly",
        schedule=events.Schedule.cron(minute="0", hour="3"),
        targets=[targets.LambdaFunction(events_fn)],
    )

    api = apigw.LambdaRestApi(
        stack,
        "Api",
        rest_api_name=f"{SERVICE}-api",
        handler=api_fn,
        proxy=True,
        deploy_options=apigw.StageOptions(stage_name="v1"),
        default_method_options=apigw.MethodOptions(authorization_type=apigw.AuthorizationType.IAM),
        cloud_watch_role=False,
    )
    cdk.CfnOutput(stack, "TableName", value=table.table_name)
    cdk.CfnOutput(stack, "ApiUrl", value=api.url)
    cdk.CfnOutput(stack, "ServiceName", value=SERVICE)
    assembly = app.synth()
    return Path(assembly.get_stack_by_name(stack.stack_name).template_full_path)


if __name__ == "__main__":
    print(synth(Path(sys.argv[1]).resolve()))
