"""The API Gateway stand-in: HTTP request -> proxy event -> deployed function -> HTTP response."""

from __future__ import annotations

import io
import json
import socket
import time
import urllib.error
import urllib.request
import zipfile

import pytest

from kubestep_local.apigw import MAX_PAYLOAD_BYTES, ApiGatewayServer
from kubestep_local.moto_compat import ACCOUNT_ID
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


# -- API Gateway's limits (issue 7, defect 3): REST API quotas, "Payload size: 10 MB", integration
# timeout 29 s (https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html).


def _raw_exchange(url: str, request: bytes, *, timeout: float = 30) -> bytes:
    """Send raw bytes; return the answer's status line, headers and body (by its Content-Length)."""
    from urllib.parse import urlsplit

    split = urlsplit(url)
    with socket.create_connection((split.hostname, split.port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        length = int(
            next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        )
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body


def _invocations_of(runtime: LocalRuntime, function: str) -> int:
    return sum(1 for i in runtime.recorder.invocations() if i.function_name == function)


def test_a_body_over_10_mb_is_413_before_the_function_runs(runtime: LocalRuntime) -> None:
    before = _invocations_of(runtime, "stub-api")
    status, headers, body = _request(
        runtime.api_url + "v1/clusters",
        method="POST",
        body=b"x" * (MAX_PAYLOAD_BYTES + 1),
        headers={"Content-Type": "application/json"},
    )
    assert status == 413
    assert json.loads(body) == {"message": "Request Too Long"}
    assert headers["Connection"] == "close"
    assert _invocations_of(runtime, "stub-api") == before
    # Exactly the limit reaches the function (whose echo of it is over Lambda's 6 MB response
    # limit, which moto enforces: 502, as API Gateway answers a failed invocation).
    status, _, body = _request(
        runtime.api_url + "v1/clusters",
        method="POST",
        body=b"y" * MAX_PAYLOAD_BYTES,
        headers={"Content-Type": "text/plain"},
    )
    assert status == 502
    assert _invocations_of(runtime, "stub-api") == before + 1
    status, _, body = _request(
        runtime.api_url + "v1/clusters", method="POST", body=b"y" * (1 << 20), headers={"Content-Type": "text/plain"}
    )
    assert status == 201 and len(json.loads(body)["body"]) == 1 << 20


def test_a_huge_declared_length_is_refused_without_reading_it(runtime: LocalRuntime) -> None:
    started = time.monotonic()
    answer = _raw_exchange(
        runtime.api_url,
        b"POST /v1/clusters HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000000000\r\n\r\n{",
        timeout=10,
    )
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert time.monotonic() - started < 5


def test_chunked_bodies_count_towards_the_limit(runtime: LocalRuntime) -> None:
    chunk = b"z" * (1 << 20)
    request = b"POST /v1/clusters HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    request += b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(11)) + b"0\r\n\r\n"
    assert _raw_exchange(runtime.api_url, request).startswith(b"HTTP/1.1 413 ")
    small = b'{"a": 1}'
    request = b"POST /v1/clusters HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    request += b"%x\r\n" % len(small) + small + b"\r\n0\r\n\r\n"
    answer = _raw_exchange(runtime.api_url, request)
    assert answer.startswith(b"HTTP/1.1 201 ")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["body"] == small.decode()


def test_broken_framing_is_400(runtime: LocalRuntime) -> None:
    for length in (b"-5", b"ten"):
        answer = _raw_exchange(
            runtime.api_url, b"POST /v1/clusters HTTP/1.1\r\nHost: x\r\nContent-Length: " + length + b"\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]


def test_a_stalled_client_is_dropped_and_others_are_served(runtime: LocalRuntime) -> None:
    server = ApiGatewayServer(runtime.endpoint_url, port=0, function_name="stub-api", client_timeout=0.5)
    server.start()
    try:
        from urllib.parse import urlsplit

        split = urlsplit(server.url)
        with socket.create_connection((split.hostname, split.port), timeout=10) as stalled:
            # Promises 100 bytes, sends 2, then nothing.
            stalled.sendall(b"POST /v1/x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}")
            status, _, _ = _request(server.url + "/v1/other")
            assert status == 200  # served while the stalled request waits
            started = time.monotonic()
            assert stalled.recv(1024) == b""  # closed by the server, no answer
            assert time.monotonic() - started < 5
    finally:
        server.stop()


def test_the_integration_timeout_is_504(runtime: LocalRuntime) -> None:
    server = ApiGatewayServer(runtime.endpoint_url, port=0, function_name="stub-tasks", integration_timeout=0.5)
    server.start()
    try:
        # stub-tasks sleeps on {"task": "sleep"}; the proxy event has no task, so ask it directly.
        server.build_event = lambda *args, **kwargs: {  # type: ignore[method-assign]
            "task": "sleep",
            "seconds": 2,
            "requestContext": {"requestId": "r-1"},
        }
        status, _, body = _request(server.url + "/v1/slow")
    finally:
        server.stop()
    assert status == 504
    assert json.loads(body) == {"message": "Endpoint request timed out"}


def test_the_caller_is_who_signed_as_the_emulators_sts_knows_them(runtime: LocalRuntime) -> None:
    """API Gateway's IAM authorisation puts the signer in the request context; the stand-in asks
    the emulator's STS about the signing key. Unsigned local calls act with the dummy credentials."""
    dummy = runtime.api.caller_identity(None)
    assert dummy["userArn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/moto" and dummy["accountId"] == ACCOUNT_ID
    iam = runtime.boto3_client("iam")
    iam.create_user(UserName="apigw-alice", Path="/team/")
    key = iam.create_access_key(UserName="apigw-alice")["AccessKey"]["AccessKeyId"]
    assert runtime.api.caller_identity(key)["userArn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/team/apigw-alice"
    trust = '{"Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}'
    role = iam.create_role(RoleName="apigw-deployer", Path="/ci/", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    session = runtime.boto3_client("sts").assume_role(RoleArn=role, RoleSessionName="run-7")["Credentials"]
    assumed = runtime.api.caller_identity(session["AccessKeyId"])
    assert assumed["userArn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/apigw-deployer/run-7"
    signed = f"AWS4-HMAC-SHA256 Credential={key}/20261201/us-east-1/execute-api/aws4_request, Signature=x"
    event = runtime.api.build_event("GET", "/v1/clusters", [("Authorization", signed)], b"", "127.0.0.1")
    assert event["requestContext"]["identity"]["userArn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/team/apigw-alice"
    unsigned = runtime.api.build_event("GET", "/v1/clusters", [], b"", "127.0.0.1")
    assert unsigned["requestContext"]["identity"]["userArn"] == dummy["userArn"]
