"""A loopback stand-in for the management API's API Gateway stage.

moto deploys the REST API's resources and methods but does not execute Lambda proxy
integrations, so the runtime serves the API itself: every HTTP request becomes an API Gateway
REST (v1) Lambda proxy event for the deployed ``<svc>-api`` function, invoked through boto3
``lambda.invoke`` against the emulator (so it runs through the Lambda seam, like everything
else), and the function's ``statusCode``/``headers``/``body`` are written back.

Routes mirror ``infra/api.py``: resource ``/v1`` and ``/v1/{proxy+}`` on stage ``v1``. The local
server's root plays the role of the stage URL (``ApiUrl`` on AWS is ``https://.../v1/``), so a
client that appends ``v1/clusters`` to ``ApiUrl`` works against both.

Limits as API Gateway enforces them (REST API quotas,
https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html): a payload over 10 MB
is answered 413 (gateway response ``REQUEST_TOO_LARGE``) before the function is called; the
integration times out after 29 s (504). A client that stalls while sending its request is
disconnected instead of holding a thread.
"""

from __future__ import annotations

import base64
import contextlib
import errno
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
from botocore.exceptions import ReadTimeoutError

from kubestep_local.moto_compat import ACCOUNT_ID
from kubestep_local.server import PortInUse

LOG = logging.getLogger(__name__)

# API Gateway REST API quotas: "Payload size: 10 MB" (not adjustable); integration timeout 29 s.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
INTEGRATION_TIMEOUT_SECONDS = 29.0
# How long a client may take between bytes of its request before it is disconnected.
CLIENT_IDLE_TIMEOUT_SECONDS = 30.0
_JSON = "application/json"
# A too-large body is read and dropped up to this size before answering 413; beyond, the
# connection is closed unread.
DISCARD_BOUND_BYTES = 64 * 1024 * 1024
DISCARD_IDLE_SECONDS = 2.0

_TEXT_TYPES = re.compile(r"^(text/|application/(json|xml|x-www-form-urlencoded|yaml|x-yaml)|.*\+json)")
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")
# The runtime's dummy credentials (`kubestep local env`), which unsigned local CLI calls stand for.
DUMMY_ACCESS_KEY = "testing"


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
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS,
        client_timeout: float = CLIENT_IDLE_TIMEOUT_SECONDS,
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
        self.max_payload_bytes = max_payload_bytes
        self.integration_timeout = integration_timeout
        self.client_timeout = client_timeout
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lambda = None
        self._identities: dict[str, dict[str, str]] = {}
        self._identities_lock = threading.Lock()

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
                # API Gateway waits at most its integration timeout; no SDK retries of a POST.
                config=Config(read_timeout=self.integration_timeout, retries={"max_attempts": 1}),
            )
        return self._lambda

    def caller_identity(self, access_key: str | None) -> dict[str, str]:
        """Who signed with `access_key`, as API Gateway's IAM authorisation puts it in the
        request context (`userArn`, `caller`, `accountId`): the emulator's STS answer for that
        key (an IAM user's or an assumed role's key is that identity). A request without a
        signature comes from the local CLI, which acts with the runtime's dummy credentials."""
        key = access_key or DUMMY_ACCESS_KEY
        with self._identities_lock:
            known = self._identities.get(key)
        if known is not None:
            return known
        sts = boto3.client(
            "sts",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=key,
            aws_secret_access_key=DUMMY_ACCESS_KEY,
        )
        answer = sts.get_caller_identity()
        arn = answer["Arn"]
        # moto names credentials it does not know `arn:aws:sts::ACCOUNT:user/moto`; AWS never gives
        # an IAM user an `sts` ARN, so the stand-in shows that user as AWS would.
        fallback = re.fullmatch(r"arn:([\w-]+):sts::(\d{12}):user/(.+)", arn)
        if fallback:
            arn = f"arn:{fallback.group(1)}:iam::{fallback.group(2)}:user/{fallback.group(3)}"
        identity = {"userArn": arn, "caller": answer["UserId"], "accountId": answer["Account"], "accessKey": key}
        with self._identities_lock:
            self._identities[key] = identity
        return identity

    def start(self) -> None:
        gateway = self

        class Handler(_ProxyHandler):
            server_version = "kubestep-local-apigw"
            owner = gateway
            timeout = gateway.client_timeout  # socket timeout per read: a stalled client is dropped

        try:
            self._server = ThreadingHTTPServer((self.host, self.requested_port), Handler)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUse(self.requested_port, "the management API", "--api-port") from exc
            raise
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
        identity = self.caller_identity(access_key)
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
                    "accountId": identity["accountId"],
                    "cognitoIdentityId": None,
                    "caller": identity["caller"],
                    "sourceIp": source_ip,
                    "principalOrgId": None,
                    "accessKey": identity["accessKey"],
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                    # moto verifies no signature: the access key alone says who signed.
                    "userArn": identity["userArn"],
                    "userAgent": user_agent,
                    "user": identity["caller"],
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
        try:
            response = self._client().invoke(FunctionName=function_name, Payload=json.dumps(event).encode())
        except ReadTimeoutError:
            LOG.warning("API function %s did not answer within %.0f s", function_name, self.integration_timeout)
            return 504, [("Content-Type", _JSON)], b'{"message": "Endpoint request timed out"}'
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


class RequestTooLarge(Exception):
    """The request body is over the payload limit (its declared length, if known, is the arg)."""


class BadRequest(Exception):
    """The request's framing is broken (Content-Length, chunked encoding)."""


class _ProxyHandler(BaseHTTPRequestHandler):
    owner: ApiGatewayServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        LOG.debug("%s " + format, self.address_string(), *args)

    def _read_body(self) -> bytes:
        """The request body, at most the payload limit; raises RequestTooLarge or BadRequest.

        Over the limit nothing more is kept: the 413 goes out at once, then ``_discard`` drops
        what the client still sends (bounded) and the connection is closed."""
        limit = self.owner.max_payload_bytes
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        try:
            length = int(raw_length)
        except ValueError:
            raise BadRequest(f"invalid Content-Length {raw_length!r}") from None
        if length < 0:
            raise BadRequest(f"invalid Content-Length {raw_length!r}")
        if length > limit:
            raise RequestTooLarge(length)
        body = self.rfile.read(length)
        if len(body) < length:
            raise BadRequest("the request body ended before its Content-Length")
        return body

    def _discard(self, length: int) -> None:
        """After the 413: read and drop the rest of the body, up to a bound and while the client
        keeps sending, so a client that sends it all before reading the answer gets the 413
        instead of a reset connection."""
        remaining = min(length, DISCARD_BOUND_BYTES)
        with contextlib.suppress(OSError):
            self.connection.settimeout(DISCARD_IDLE_SECONDS)
            while remaining > 0:
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    return
                remaining -= len(chunk)

    def _read_chunked(self, limit: int) -> bytes:
        body = bytearray()
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadRequest("invalid chunk size") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(body)
            if len(body) + size > limit:
                raise RequestTooLarge(DISCARD_BOUND_BYTES)  # the rest's length is unknown
            chunk = self.rfile.read(size)
            if len(chunk) < size:
                raise BadRequest("the request body ended inside a chunk")
            body += chunk
            self.rfile.readline(3)  # the CRLF after the chunk

    def _handle(self) -> None:
        started = time.monotonic()
        gateway = self.owner
        event = None
        try:
            body = self._read_body()
        except RequestTooLarge as exc:
            self.close_connection = True
            self._answer(413, [("Content-Type", _JSON), ("Connection", "close")], b'{"message":"Request Too Long"}')
            if exc.args:
                self._discard(exc.args[0])
            return
        except BadRequest as exc:
            self.close_connection = True
            data = json.dumps({"message": str(exc)}).encode()
            self._answer(400, [("Content-Type", _JSON), ("Connection", "close")], data)
            return
        except (TimeoutError, ConnectionError):
            # The client stalled or went away in the middle of its request: nothing to answer.
            self.close_connection = True
            return
        event = gateway.build_event(self.command, self.path, list(self.headers.items()), body, self.client_address[0])
        if event is None:
            # What API Gateway answers for a path with no resource.
            status, headers, data = 403, [("Content-Type", _JSON)], b'{"message":"Missing Authentication Token"}'
        else:
            try:
                status, headers, data = gateway.invoke(event)
            except Exception:  # noqa: BLE001 - an emulator error is a 502 to the client
                LOG.exception("API stand-in failed")
                status, headers, data = 502, [("Content-Type", _JSON)], b'{"message": "Internal server error"}'
        self._answer(status, headers, data, event["requestContext"]["requestId"] if event else None)
        LOG.debug("%s %s -> %s in %.3f s", self.command, self.path, status, time.monotonic() - started)

    def _answer(self, status: int, headers: list[tuple[str, str]], data: bytes, request_id: str | None = None) -> None:
        try:
            self.send_response(status)
            for name, value in headers:
                if name.lower() not in ("content-length", "transfer-encoding"):
                    if name.lower() == "connection" and value.lower() != "close":
                        continue
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", request_id or str(uuid.uuid4()))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle
