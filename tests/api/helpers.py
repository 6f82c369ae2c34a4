"""API Gateway REST (v1) proxy events for `lambdas.api.handler`, in-process, as API Gateway
builds them for `ANY /v1/{proxy+}` on stage `v1`; and a loopback HTTP server that does the same
for HTTP clients (the ApiClient, schemathesis)."""

from __future__ import annotations

import base64
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

ACCOUNT = "123456789012"
CALLER_ARN = f"arn:aws:iam::{ACCOUNT}:user/tester"


class FakeContext:
    function_name = "unit-api"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:unit-api"
    log_group_name = "/aws/lambda/unit-api"
    log_stream_name = "local"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def proxy_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    raw_body: str | bytes | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | list[tuple[str, str]] | None = None,
    caller: str | None = CALLER_ARN,
) -> dict[str, Any]:
    headers = dict(headers or {})
    if body is not None and raw_body is None:
        raw_body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    is_base64 = isinstance(raw_body, bytes)
    text = base64.b64encode(raw_body).decode() if isinstance(raw_body, bytes) else raw_body
    pairs = list(query.items()) if isinstance(query, dict) else list(query or [])
    single_query = {k: v for k, v in pairs}
    multi_query: dict[str, list[str]] = {}
    for key, value in pairs:
        multi_query.setdefault(key, []).append(value)
    proxy = path.removeprefix("/v1").lstrip("/")
    return {
        "resource": "/v1/{proxy+}" if proxy else "/v1",
        "path": path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": {k: [v] for k, v in headers.items()} or None,
        "queryStringParameters": single_query or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": {"proxy": proxy} if proxy else None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "abc123",
            "resourcePath": "/v1/{proxy+}",
            "httpMethod": method,
            "path": f"/v1{path}",
            "accountId": ACCOUNT,
            "stage": "v1",
            "requestId": str(uuid.uuid4()),
            "apiId": "unitapi",
            "protocol": "HTTP/1.1",
            "identity": {
                "caller": caller,
                "userArn": caller,
                "accessKey": "AKIDTEST" if caller else None,
                "accountId": ACCOUNT if caller else None,
                "sourceIp": "127.0.0.1",
                "userAgent": "pytest",
                "user": caller,
            },
        },
        "body": text,
        "isBase64Encoded": is_base64,
    }


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    text: str
    raw: dict[str, Any] = field(repr=False)

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def error(self) -> dict[str, Any]:
        return self.json["error"]

    @property
    def fields(self) -> set[str]:
        return {d["field"] for d in self.error["details"]}


def invoke(event: dict[str, Any]) -> Answer:
    from lambdas.api import handler

    result = handler(event, FakeContext())
    headers = {k: v[-1] for k, v in (result.get("multiValueHeaders") or {}).items()}
    headers.update(result.get("headers") or {})
    body = result.get("body") or ""
    if result.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return Answer(result["statusCode"], headers, body, result)


def call(method: str, path: str, **kwargs: Any) -> Answer:
    return invoke(proxy_event(method, path, **kwargs))


class LocalGateway:
    """HTTP on loopback -> proxy event -> `lambdas.api.handler` in this process. Its root plays
    the stage URL (like `ApiUrl`), so clients append `v1/...` as they do on AWS."""

    def __init__(self, *, require_auth: bool = False) -> None:
        gateway = self
        self.require_auth = require_auth
        self.requests: list[dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                headers = dict(self.headers.items())
                record = {"method": self.command, "path": split.path, "headers": headers}
                gateway.requests.append(record)
                if gateway.require_auth and not self.headers.get("Authorization"):
                    # API Gateway with IAM auth refuses unsigned requests before the function runs.
                    status, out, payload = (
                        403,
                        {"Content-Type": "application/json"},
                        b'{"message":"Missing Authentication Token"}',
                    )
                elif not split.path.startswith("/v1"):
                    status, out, payload = (
                        403,
                        {"Content-Type": "application/json"},
                        b'{"message":"Forbidden"}',
                    )
                else:
                    raw: str | bytes | None
                    try:
                        raw = data.decode() if data else None
                    except UnicodeDecodeError:
                        raw = data
                    event = proxy_event(
                        self.command,
                        split.path,
                        raw_body=raw,
                        headers=headers,
                        query=parse_qsl(split.query, keep_blank_values=True),
                    )
                    answer = invoke(event)
                    status, out, payload = answer.status, answer.headers, answer.text.encode()
                record["status"] = status
                self.send_response(status)
                for name, value in out.items():
                    if name.lower() not in ("content-length", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def __getattr__(self, name: str) -> Any:
                # Every method (schemathesis tries TRACE, QUERY...) reaches the function.
                if name.startswith("do_"):
                    return self._handle
                raise AttributeError(name)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> LocalGateway:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
