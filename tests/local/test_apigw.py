"""The API Gateway stand-in: HTTP request -> proxy event -> deployed function -> HTTP response."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import zipfile

import pytest

from kubestep_local.apigw import ApiGatewayServer
from kubestep_local.runtime import LocalRuntime

SCOPE = "20240101/us-east-1/execute-api/aws4_request"
THROWAWAY = """
import json

def handler(event, context):
    return {"statusCode": 418, "headers": {"X-Event": json.dumps(sorted(event))}, "body": "teapot"}
"""


def _request(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_round_trip_through_the_deployed_api_function(runtime: LocalRuntime) -> None:
    assert runtime.api.function_name == "stub-api"
    status, headers, body = _request(
        runtime.api_url + "v1/clusters/demo?view=full&tag=a&tag=b",
        method="POST",
        body=b'{"hello": "world"}',
        headers={
            "Content-Type": "application/json",
            "Authorization": f"AWS4-HMAC-SHA256 Credential=AKIDLOCAL/{SCOPE}",
        },
    )
    assert status == 201
    assert headers["X-Stub"] == "yes"
    assert headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    echoed = json.loads(body)
    assert echoed == {
        "path": "/v1/clusters/demo",
        "proxy": "clusters/demo",
        "method": "POST",
        "query": {"view": "full", "tag": "b"},
        "multiQuery": {"view": ["full"], "tag": ["a", "b"]},
        "stage": "v1",
        "resourcePath": "/v1/{proxy+}",
        "body": '{"hello": "world"}',
        "function": "stub-api",
    }


def test_base_resource_and_unknown_paths(runtime: LocalRuntime) -> None:
    status, _, body = _request(runtime.api_url + "v1")
    assert status == 200
    assert json.loads(body)["resourcePath"] == "/v1"
    assert json.loads(body)["proxy"] is None
    status, _, body = _request(runtime.api_url + "elsewhere")
    assert status == 403
    assert json.loads(body) == {"message": "Missing Authentication Token"}


def test_event_shape_with_a_throwaway_function(runtime: LocalRuntime) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("teapot.py", THROWAWAY)
    role = runtime.boto3_client("iam").create_role(RoleName="teapot-role", AssumeRolePolicyDocument="{}")
    runtime.boto3_client("lambda").create_function(
        FunctionName="teapot",
        Runtime="python3.13",
        Role=role["Role"]["Arn"],
        Handler="teapot.handler",
        Code={"ZipFile": buffer.getvalue()},
    )
    server = ApiGatewayServer(runtime.endpoint_url, port=0, function_name="teapot")
    server.start()
    try:
        status, headers, body = _request(server.url + "/v1/x", method="DELETE")
    finally:
        server.stop()
    assert status == 418
    assert body == b"teapot"
    assert json.loads(headers["X-Event"]) == sorted(
        [
            "resource",
            "path",
            "httpMethod",
            "headers",
            "multiValueHeaders",
            "queryStringParameters",
            "multiValueQueryStringParameters",
            "pathParameters",
            "stageVariables",
            "requestContext",
            "body",
            "isBase64Encoded",
        ]
    )


@pytest.mark.parametrize("content_type", ["application/octet-stream"])
def test_binary_bodies_are_base64(runtime: LocalRuntime, content_type: str) -> None:
    event = runtime.api.build_event("PUT", "/v1/blob", [("Content-Type", content_type)], b"\x00\xff", "127.0.0.1")
    assert event is not None
    assert event["isBase64Encoded"] is True
    assert event["body"] == "AP8="
