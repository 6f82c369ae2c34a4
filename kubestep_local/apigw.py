"""A loopback stand-in for the management API's API Gateway stage.

moto deploys the REST API's resources and methods but does not execute Lambda proxy
integrations, so the runtime serves the API itself: every HTTP request becomes an API Gateway
REST (v1) Lambda proxy event for the deployed ``<svc>-api`` function, invoked through boto3
``lambda.invoke`` against the emulator (so it runs through the Lambda seam, like everything
else), and the function's ``statusCode``/``headers``/``body`` are written back.

Routes mirror ``infra/api.py``: resource ``/v1`` and ``/v1/{proxy+}`` on stage ``v1``. The local
server's root plays the role of the stage URL (``ApiUrl`` on AWS is ``https://.../v1/``), so a
client that appends ``v1/clusters`` to ``ApiUrl`` works against both.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
from botocore.config import Config

from kubestep_local.server import ACCOUNT_ID

LOG = logging.getLogger(__name__)

_TEXT_TYPES = re.compile(r"^(text/|application/(json|xml|x-www-form-urlencoded|yaml|x-yaml)|.*\+json)")
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


class ApiGatewayServer:
    """``ThreadingHTTPServer`` on ``host:port`` turning requests into Lambda proxy events."""

    def __init__(
        self,
        endpoint_url: str,
        *,
        port: int = 8080,
        host: str = "127.0.0.1",
        region: str = "us-east-1",
        function_name: str | Callable[[], str | None] | None = None,
        stage: str = "v1",
        base_path: str = "/v1",
        api_id: str = "local",
    ) -> None:
        self.endpoint_url = endpoint_url
        self.host = host
        self.requested_port = port
        self.port = port
        self.region = region
        self._function_name = function_name
        self.stage = stage
        self.base_path = "/" + base_path.strip("/")
        self.api_id = api_id
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lambda = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def function_name(self) -> str | None:
        name = self._function_name
        return name() if callable(name) else name

    @function_name.setter
    def function_name(self, value: str | None) -> None:
        self._function_name = value

    def _client(self) -> Any:
        if self._lambda is None:
            self._lambda = boto3.client(
                "lambda",
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                # The function's own timeout bounds the call; no SDK retries of a POST.
                config=Config(read_timeout=900, retries={"max_attempts": 1}),
            )
        return self._lambda

    def start(self) -> None:
        gateway = self

        class Handler(_ProxyHandler):
            server_version = "kubestep-local-apigw"
            owner = gateway

        self._server = ThreadingHTTPServer((self.host, self.requested_port), Handler)
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="kubestep-local-apigw", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    # -- the proxy event -----------------------------------------------------------------------
    def route(self, path: str) -> tuple[str, dict[str, str] | None] | None:
        """(resource path, path parameters) for a request path, or None (no such resource)."""
        if path.rstrip("/") == self.base_path:
            return self.base_path, None
        prefix = self.base_path + "/"
        if path.startswith(prefix) and len(path) > len(prefix):
            return f"{self.base_path}/{{proxy+}}", {"proxy": path[len(prefix) :]}
        return None

    def build_event(
        self, method: str, raw_path: str, headers: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> dict[str, Any] | None:
        split = urlsplit(raw_path)
        path = split.path or "/"
        routed = self.route(path)
        if routed is None:
            return None
        resource, path_parameters = routed
        single_headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in headers:
            single_headers[name] = value  # API Gateway keeps the last value
            multi_headers.setdefault(name, []).append(value)
        query_pairs = parse_qsl(split.query, keep_blank_values=True)
        single_query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for key, value in query_pairs:
            single_query[key] = value
            multi_query.setdefault(key, []).append(value)
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        is_base64 = False
        text_body: str | None = None
        if body:
            if not content_type or _TEXT_TYPES.match(content_type.lower()):
                try:
                    text_body = body.decode("utf-8")
                except UnicodeDecodeError:
                    is_base64 = True
            else:
                is_base64 = True
            if is_base64:
                text_body = base64.b64encode(body).decode()
        authorization = next((v for k, v in headers if k.lower() == "authorization"), "")
        access_key = m.group(1) if (m := _CREDENTIAL.search(authorization)) else None
        user_agent = next((v for k, v in headers if k.lower() == "user-agent"), None)
        now = datetime.now(UTC)
        request_id = str(uuid.uuid4())
        return {
            "resource": resource,
            "path": path,
            "httpMethod": method,
            "headers": single_headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": single_query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_parameters,
            "stageVariables": None,
            "requestContext": {
                "resourceId": "local",
                "resourcePath": resource,
                "httpMethod": method,
                "extendedRequestId": request_id,
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "path": f"/{self.stage}{path}",
                "accountId": ACCOUNT_ID,
                "protocol": "HTTP/1.1",
                "stage": self.stage,
                "domainPrefix": self.api_id,
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "requestId": request_id,
                "identity": {
                    "cognitoIdentityPoolId": None,
                    "accountId": ACCOUNT_ID if access_key else None,
                    "cognitoIdentityId": None,
                    "caller": access_key,
                    "sourceIp": source_ip,
                    "principalOrgId": None,
                    "accessKey": access_key,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                    # moto does not verify SigV4: every signed caller is the account's root.
                    "userArn": f"arn:aws:iam::{ACCOUNT_ID}:root" if access_key else None,
                    "userAgent": user_agent,
                    "user": access_key,
                },
                "domainName": f"{self.host}:{self.port}",
                "apiId": self.api_id,
            },
            "body": text_body,
            "isBase64Encoded": is_base64,
        }

    def invoke(self, event: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        function_name = self.function_name
        if not function_name:
            return 503, [("Content-Type", "application/json")], b'{"message": "API function not deployed"}'
        response = self._client().invoke(FunctionName=function_name, Payload=json.dumps(event).encode())
        payload = response["Payload"].read()
        if response.get("FunctionError"):
            LOG.warning("API function %s failed: %s", function_name, payload[:2000])
            return 502, [("Content-Type", "application/json")], b'{"message": "Internal server error"}'
        try:
            result = json.loads(payload)
            status = int(result.get("statusCode", 200))
        except (ValueError, TypeError, AttributeError):
            LOG.warning("API function %s returned a malformed proxy response: %s", function_name, payload[:500])
            return 502, [("Content-Type", "application/json")], b'{"message": "Internal server error"}'
        out_headers: list[tuple[str, str]] = []
        names: set[str] = set()
        for name, values in (result.get("multiValueHeaders") or {}).items():
            for value in values or []:
                out_headers.append((name, str(value)))
            names.add(name.lower())
        for name, value in (result.get("headers") or {}).items():
            if name.lower() not in names:
                out_headers.append((name, str(value)))
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        if not any(n.lower() == "content-type" for n, _ in out_headers):
            out_headers.append(("Content-Type", "application/json"))
        return status, out_headers, data


class _ProxyHandler(BaseHTTPRequestHandler):
    owner: ApiGatewayServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        LOG.debug("%s " + format, self.address_string(), *args)

    def _handle(self) -> None:
        started = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        gateway = self.owner
        event = gateway.build_event(self.command, self.path, list(self.headers.items()), body, self.client_address[0])
        if event is None:
            # What API Gateway answers for a path with no resource.
            status, headers, data = (
                403,
                [("Content-Type", "application/json")],
                (b'{"message":"Missing Authentication Token"}'),
            )
        else:
            try:
                status, headers, data = gateway.invoke(event)
            except Exception:  # noqa: BLE001 - an emulator error is a 502 to the client
                LOG.exception("API stand-in failed")
                status, headers, data = (
                    502,
                    [("Content-Type", "application/json")],
                    (b'{"message": "Internal server error"}'),
                )
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", event["requestContext"]["requestId"] if event else str(uuid.uuid4()))
        self.end_headers()
        if self.command != "HEAD":
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self.wfile.write(data)
        LOG.debug("%s %s -> %s in %.3f s", self.command, self.path, status, time.monotonic() - started)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle
