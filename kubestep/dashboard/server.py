"""The dashboard's HTTP server: the static page, the list of targets, and the signing proxy.

Guards, in the order they run on every request:
- it listens on 127.0.0.1 only;
- `Host` must name that loopback address and port (a DNS-rebinding page reaches us with its
  own host name), and an `Origin` or `Sec-Fetch-Site` a browser sends must be this page's own;
- `/api/...` needs this run's session token in the `X-Kubestep-Session` header. The CLI prints
  (and opens) the page's URL with the token in its fragment, which browsers never send to any
  server; the page keeps it in its own origin's sessionStorage and sends it with each call. It
  is no cookie: browsers scope cookies by host, not port, so any page of any other server on
  127.0.0.1 would receive a cookie, while sessionStorage and a header the page sets belong to
  this origin (host and port) alone;
- the proxy forwards only `proxy.ALLOWED_ROUTES`; an action (POST, PATCH, DELETE) must also
  carry the page's `X-Kubestep-Dashboard` header (no cross-site form can), a body only as
  `application/json` with its route's fields, and goes out with an Idempotency-Key, so a retry
  never starts a second operation;
- credentials never reach the page: requests are signed here, by `ApiClient`.

A target that is the local runtime follows it: when a call cannot connect, the runtime's recorded
endpoints are read again (it writes them each time it starts, on whatever ports it got) and the
call is made once more there.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from kubestep.api.client import ApiClient, ApiError
from kubestep.dashboard.proxy import ProxyError, action_body, allowed_route

LOOPBACK = "127.0.0.1"
SESSION_HEADER = "X-Kubestep-Session"
ACTION_HEADER = "X-Kubestep-Dashboard"
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_BODY = 1024  # the page's actions send a version or two node counts at most
ACTION_METHODS = ("POST", "PATCH", "DELETE")
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9_-]{8,64}")
# A request that stops sending (a body shorter than its Content-Length, an idle keep-alive
# connection) gives its thread back after this many seconds.
REQUEST_TIMEOUT_SECONDS = 15
_CONTENT_LENGTH = re.compile(r"\d{1,9}")
STATIC_FILES = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    # Named by the page, so a browser never asks for /favicon.ico (a 404 in its console).
    "icon.svg": "image/svg+xml",
}
# Everything the page needs comes from this server; nothing inline, no framing.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass
class DashboardTarget:
    """One management service the page shows: a name (a context's, or `default`), where its API
    is, and how to make its client. `error` says why it cannot be reached (it is still listed)."""

    name: str
    endpoint: str | None = None
    region: str | None = None
    local: bool = False
    make_client: Callable[[], ApiClient] | None = None
    error: str | None = None
    # The local runtime: where its API is now (None: not running), and a client for an endpoint.
    locate: Callable[[], str | None] | None = None
    client_at: Callable[[str], ApiClient] | None = None
    _client: ApiClient | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def client(self) -> ApiClient:
        with self._lock:
            if self._client is None:
                if self.make_client is None:
                    raise ProxyError(502, "TargetUnavailable", self.error or f"target {self.name} has no endpoint")
                try:
                    self._client = self.make_client()
                except Exception as exc:  # a profile that does not exist, no region, ...
                    self.error = " ".join(str(exc).split())
                    self.make_client = None
                    raise ProxyError(502, "TargetUnavailable", self.error) from None
            return self._client

    def moved(self) -> bool:
        """Whether the target now answers elsewhere (a local runtime restarted on other ports):
        then later calls go there. Asked after a call could not connect."""
        if self.locate is None or self.client_at is None:
            return False
        endpoint = self.locate()
        with self._lock:
            if not endpoint or endpoint == self.endpoint:
                return False
            client_at = self.client_at
            self.endpoint = endpoint
            self.make_client = lambda: client_at(endpoint)
            self._client = None
            self.error = None
            return True

    def describe(self) -> dict[str, Any]:
        """What the page may know about a target: never a credential or a profile."""
        return {
            "name": self.name,
            "endpoint": self.endpoint,
            "region": self.region,
            "kind": "local" if self.local else "aws",
            "error": self.error,
        }


class DashboardServer:
    """`DashboardServer(targets, port=0).start()`; `url` is what to open (it carries the token)."""

    def __init__(
        self,
        targets: Sequence[DashboardTarget],
        *,
        port: int = 0,
        poll_seconds: float = 2.0,
        token: str | None = None,
    ) -> None:
        names = [t.name for t in targets]
        if len(set(names)) != len(names):
            raise ValueError(f"target names must be unique: {names}")
        self.targets = {t.name: t for t in targets}
        self.poll_seconds = poll_seconds
        self.token = token or secrets.token_urlsafe(32)
        self._httpd = _QuietServer((LOOPBACK, port), _handler_class(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    @property
    def url(self) -> str:
        """The URL to open: the token rides in the fragment, which the browser keeps to itself;
        the page takes it from there and drops it from the address bar."""
        return f"{self.base_url}#token={quote(self.token)}"

    def allowed_hosts(self) -> set[str]:
        return {f"{host}:{self.port}" for host in (LOOPBACK, "localhost", "[::1]")}

    def start(self) -> DashboardServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="kubestep-dashboard", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (then `close()`)."""
        self._httpd.serve_forever()

    def close(self) -> None:
        self._httpd.server_close()

    def stop(self) -> None:
        """Stop the thread `start()` began, and close the socket."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.close()

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # One line, not socketserver's traceback: a broken request must not bury the URL.
        error = sys.exc_info()[1]
        print(f"kubestep dashboard: a request from {client_address[0]} failed: {error!r}", file=sys.stderr)


def _static(name: str) -> bytes:
    return resources.files("kubestep.dashboard").joinpath("static", name).read_bytes()


def _handler_class(server: DashboardServer) -> type[BaseHTTPRequestHandler]:
    class Handler(_Handler):
        dashboard = server

    return Handler


class _Handler(BaseHTTPRequestHandler):
    dashboard: DashboardServer
    server_version = "kubestep-dashboard"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT_SECONDS

    # -------------------------------------------------------------- plumbing
    def log_message(self, format: str, *args: Any) -> None:
        pass  # the CLI prints the URL; per-request lines would bury it

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in {**SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode()
        self._send(status, body, "application/json", {"Cache-Control": "no-store"})

    def _error(self, status: int, code: str, message: str, **extra: Any) -> None:
        self._json(status, {"error": {"code": code, "message": message, **extra}})

    # -------------------------------------------------------------- guards
    def _same_origin(self) -> str | None:
        """Why the request is refused (None: it comes from this page, or from no page at all)."""
        host = self.headers.get("Host", "")
        allowed = self.dashboard.allowed_hosts()
        if host not in allowed:
            return f"Host {host[:80]!r} is not this dashboard's loopback address"
        origin = self.headers.get("Origin")
        if origin is not None and origin not in {f"http://{h}" for h in allowed}:
            return f"Origin {origin[:80]!r} is not this dashboard"
        fetch_site = self.headers.get("Sec-Fetch-Site")
        if fetch_site is not None and fetch_site not in ("same-origin", "none"):
            return f"a {fetch_site[:20]} request"
        return None

    def _has_session(self) -> bool:
        given = self.headers.get(SESSION_HEADER)
        return given is not None and hmac.compare_digest(given.encode(), self.dashboard.token.encode())

    def _read_body(self) -> bytes | None:
        """The request's body (b"" when it has none); None after answering a framing it will not
        read: a bad or negative Content-Length, a body too large, chunks. The connection is then
        closed, since where the next request starts is unknown."""
        lengths = self.headers.get_all("Content-Length") or []
        if self.headers.get("Transfer-Encoding") is not None:
            return self._bad_framing(411, "LengthRequired", "the dashboard takes no chunked body")
        if not lengths:
            return b""
        if len(lengths) != 1 or not _CONTENT_LENGTH.fullmatch(lengths[0].strip()):
            return self._bad_framing(400, "BadRequest", "Content-Length must be one non-negative whole number")
        length = int(lengths[0])
        if length > MAX_BODY:
            return self._bad_framing(413, "PayloadTooLarge", f"the dashboard's actions send at most {MAX_BODY} bytes")
        try:
            body = self.rfile.read(length) if length else b""
        except TimeoutError:
            self.close_connection = True
            return None
        if len(body) != length:
            self.close_connection = True
            return None  # the client went away mid-body: nobody to answer
        return body

    def _bad_framing(self, status: int, code: str, message: str) -> None:
        self.close_connection = True
        self._error(status, code, message)
        return None

    # -------------------------------------------------------------- methods
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self._read_body() is not None:  # read and dropped: a read takes no body
            self._dispatch("GET", b"")

    def do_HEAD(self) -> None:  # noqa: N802
        if self._read_body() is not None:
            self._dispatch("GET", b"")

    def _action(self) -> None:
        body = self._read_body()
        if body is not None:
            self._dispatch(self.command, body)

    do_POST = do_PATCH = do_DELETE = _action  # noqa: N815

    def _refuse_method(self) -> None:
        self.close_connection = True  # its body, if any, is not read
        self._error(405, "MethodNotAllowed", "the dashboard answers GET, HEAD, POST, PATCH and DELETE only")

    do_PUT = do_OPTIONS = _refuse_method  # noqa: N815

    def _dispatch(self, method: str, body: bytes) -> None:
        refusal = self._same_origin()
        if refusal:
            self._error(403, "Forbidden", f"refused: {refusal}")
            return
        parts = urlsplit(self.path)
        path = parts.path
        if path == "/" and method == "GET":
            self._send(200, _static("index.html"), STATIC_FILES["index.html"], {"Cache-Control": "no-cache"})
        elif path.startswith("/static/") and method == "GET":
            self._static_file(path.removeprefix("/static/"))
        elif path.startswith("/api/"):
            self._api(method, path.removeprefix("/api/"), parts.query, body)
        else:
            self._error(404, "NotFound", "no such page")

    def _static_file(self, name: str) -> None:
        if name not in STATIC_FILES or name == "index.html":
            self._error(404, "NotFound", "no such file")
            return
        self._send(200, _static(name), STATIC_FILES[name], {"Cache-Control": "no-cache"})

    def _api(self, method: str, rest: str, query: str, raw_body: bytes) -> None:
        if not self._has_session():
            hint = f"open the URL `kubestep dashboard` printed: the page sends its token as {SESSION_HEADER}"
            self._error(401, "NoSession", hint)
            return
        if rest == "targets" and method == "GET":
            targets = [t.describe() for t in self.dashboard.targets.values()]
            self._json(200, {"targets": targets, "pollSeconds": self.dashboard.poll_seconds})
            return
        target_name, separator, api_path = rest.partition("/v1/")
        target = self.dashboard.targets.get(unquote(target_name)) if separator else None
        if target is None:
            self._error(404, "NoSuchTarget", f"no target {unquote(target_name)[:80]!r}")
            return
        try:
            key = None
            if method in ACTION_METHODS:
                if self.headers.get(ACTION_HEADER) != "1":
                    raise ProxyError(403, "Forbidden", f"an action needs the page's {ACTION_HEADER} header")
                if raw_body and self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
                    raise ProxyError(415, "UnsupportedMediaType", "an action's body is application/json")
                key = self.headers.get(IDEMPOTENCY_HEADER) or uuid.uuid4().hex
                if not _IDEMPOTENCY_KEY.fullmatch(key):
                    raise ProxyError(400, "InvalidIdempotencyKey", f"{IDEMPOTENCY_HEADER}: 8-64 of [A-Za-z0-9_-]")
            route, parsed = allowed_route(method, api_path, query)
            body = action_body(route, raw_body) if method in ACTION_METHODS else None
            answer = self._forward(target, method, api_path, parsed, body, key)
        except ProxyError as exc:
            self._error(exc.status, exc.code, exc.message)
            return
        except ApiError as exc:
            # The management API's own answer, as it gave it (0: it could not be reached).
            status = exc.status or int(HTTPStatus.BAD_GATEWAY)
            details = {"details": exc.details} if exc.details else {}
            self._error(status, exc.code, exc.message, **details)
            return
        self._json(202 if method in ACTION_METHODS else 200, answer if answer is not None else {})

    def _forward(
        self,
        target: DashboardTarget,
        method: str,
        path: str,
        query: dict[str, str],
        body: dict[str, Any] | None,
        key: str | None,
    ) -> Any:
        def send() -> Any:
            return target.client().request(method, path, query=query or None, body=body, idempotency_key=key)

        try:
            return send()
        except ApiError as exc:
            # Not connected (status 0): a local runtime that restarted on other ports is followed
            # there. Safe to resend: a read, or an action under the same Idempotency-Key.
            if exc.status == 0 and target.moved():
                return send()
            raise
