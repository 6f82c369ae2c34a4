"""The dashboard's server, without a browser: it listens on loopback only, refuses foreign
Host/Origin headers (DNS rebinding, cross-site requests) and requests without the session
token header (a cookie, which any server on another port of 127.0.0.1 would receive, is no
session), forwards only the allow-listed routes — the reads the page shows and its four actions
(upgrade, scale, delete, cancel), each with only its own body fields and an Idempotency-Key —
signs what it forwards as the CLI does — SigV4 for a named endpoint, seen here by a capture
server standing in for API Gateway — with no credential ever in what the page receives, answers
broken request framing at once, and follows a local runtime that restarted on other ports."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from kubestep.api.client import ApiClient
from kubestep.cli import contexts
from kubestep.cli.commands.dashboard import dashboard_targets
from kubestep.dashboard import ALLOWED_ROUTES, DashboardServer, DashboardTarget, ProxyError, allowed_route

SESSION_HEADER = "X-Kubestep-Session"  # the page and the server agree on it (static/app.js)

ACCESS_KEY = "AKIDDASHBOARDTEST"
SECRET_KEY = "dashboard-test-secret-key-never-in-the-page"


class Upstream:
    """A management API stand-in that records each request and answers `{"seen": path}`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                upstream.requests.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
                )
                if "missing" in self.path:
                    body = json.dumps({"error": {"code": "NotFound", "message": "cluster 'missing' does not exist"}})
                    status = 404
                else:
                    body, status = json.dumps({"seen": self.path, "items": []}), 200
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _answer  # noqa: N815

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


@pytest.fixture(scope="module")
def dashboard(upstream: Upstream) -> Iterator[DashboardServer]:
    mp = pytest.MonkeyPatch()
    mp.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    mp.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    mp.delenv("AWS_PROFILE", raising=False)
    targets = [
        DashboardTarget(
            "prod",
            endpoint=upstream.url,
            region="eu-west-1",
            make_client=lambda: ApiClient(upstream.url, region="eu-west-1", retries=0),
        ),
        DashboardTarget("broken", error="no stack kubestep-gone in region eu-west-1"),
    ]
    with DashboardServer(targets, port=0) as server:
        yield server
    mp.undo()


def call(
    server: DashboardServer,
    path: str,
    *,
    method: str = "GET",
    host: str | None = None,
    session: bool = True,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    sent = {"Host": host or f"127.0.0.1:{server.port}", **(headers or {})}
    if session:
        sent[SESSION_HEADER] = server.token
    connection.request(method, path, headers=sent)
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), body


def test_listens_on_loopback_only(dashboard: DashboardServer) -> None:
    assert dashboard._httpd.server_address[0] == "127.0.0.1"
    assert dashboard.url == f"http://127.0.0.1:{dashboard.port}/#token={dashboard.token}"


def test_the_page_is_static_and_locked_down(dashboard: DashboardServer) -> None:
    status, headers, body = call(dashboard, "/", session=False)
    assert status == 200 and b'<script type="module" src="/static/app.js">' in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    for name in ("app.js", "app.css"):
        status, _, _ = call(dashboard, f"/static/{name}", session=False)
        assert status == 200
    # The page names its icon (a browser would otherwise ask for /favicon.ico, answered 404).
    assert b'<link rel="icon" href="/static/icon.svg"' in body
    status, headers, icon = call(dashboard, "/static/icon.svg", session=False)
    assert status == 200 and headers["Content-Type"] == "image/svg+xml" and icon.startswith(b"<svg")
    for path in ("/static/../server.py", "/static/server.py", "/static/%2e%2e/server.py", "/etc/passwd"):
        status, _, body = call(dashboard, path)
        assert status == 404, path
        assert b"import" not in body


def test_the_token_travels_in_the_fragment_and_no_cookie_is_ever_set(dashboard: DashboardServer) -> None:
    """Browsers never send a fragment, and a cookie would reach every port of 127.0.0.1."""
    for path in ("/", f"/?token={dashboard.token}", "/static/app.js"):
        status, headers, _ = call(dashboard, path, session=False)
        assert status == 200, path
        assert "Set-Cookie" not in headers, path
    status, headers, _ = call(dashboard, "/api/targets")
    assert status == 200 and "Set-Cookie" not in headers


def test_api_needs_the_session_header(dashboard: DashboardServer, upstream: Upstream) -> None:
    before = len(upstream.requests)
    status, _, body = call(dashboard, "/api/prod/v1/clusters", session=False)
    assert status == 401 and json.loads(body)["error"]["code"] == "NoSession"
    assert SESSION_HEADER in json.loads(body)["error"]["message"]
    refused = [
        {SESSION_HEADER: "wrong"},
        {SESSION_HEADER: dashboard.token[:-1]},
        {SESSION_HEADER: ""},
        # What any page on 127.0.0.1 would send along if the token were a cookie.
        {"Cookie": f"kubestep_dashboard={dashboard.token}"},
        {"Authorization": f"Bearer {dashboard.token}"},
    ]
    for headers in refused:
        for path in ("/api/targets", "/api/prod/v1/clusters"):
            status, _, _ = call(dashboard, path, headers=headers, session=False)
            assert status == 401, (headers, path)
    assert len(upstream.requests) == before, "nothing was forwarded"


@pytest.mark.parametrize(
    ("host", "headers"),
    [
        ("evil.example:80", {}),  # DNS rebinding: a foreign name resolving to 127.0.0.1
        ("127.0.0.1", {}),  # no port: not this server's address
        (None, {"Origin": "http://evil.example"}),
        (None, {"Origin": "http://127.0.0.1:1"}),
        (None, {"Sec-Fetch-Site": "cross-site"}),
    ],
)
def test_foreign_hosts_origins_and_sites_are_refused(
    dashboard: DashboardServer, upstream: Upstream, host: str | None, headers: dict[str, str]
) -> None:
    before = len(upstream.requests)
    for path in ("/", "/api/targets", "/api/prod/v1/clusters"):
        status, _, body = call(dashboard, path, host=host, headers=headers)
        assert status == 403, (path, body)
    assert len(upstream.requests) == before


def test_localhost_names_and_the_page_own_origin_are_accepted(dashboard: DashboardServer) -> None:
    port = dashboard.port
    for host in (f"localhost:{port}", f"[::1]:{port}", f"127.0.0.1:{port}"):
        status, _, _ = call(dashboard, "/api/targets", host=host, headers={"Origin": f"http://{host}"})
        assert status == 200, host


def test_targets_list_names_endpoints_and_errors_never_credentials(dashboard: DashboardServer) -> None:
    status, _, body = call(dashboard, "/api/targets")
    assert status == 200
    answer = json.loads(body)
    assert [t["name"] for t in answer["targets"]] == ["prod", "broken"]
    assert answer["targets"][1]["error"].startswith("no stack")
    assert set(answer["targets"][0]) == {"name", "endpoint", "region", "kind", "error"}
    assert ACCESS_KEY.encode() not in body and SECRET_KEY.encode() not in body


def test_allowed_requests_are_forwarded_signed(dashboard: DashboardServer, upstream: Upstream) -> None:
    status, headers, body = call(dashboard, "/api/prod/v1/operations?cluster=prod&limit=5")
    assert status == 200, body
    assert json.loads(body)["seen"] == "/api/v1/operations?cluster=prod&limit=5"
    forwarded = upstream.requests[-1]
    authorization = forwarded["headers"]["Authorization"]
    # SigV4 for API Gateway's execute-api in the endpoint's region, with the user's key.
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    assert "Cookie" not in forwarded["headers"], "the session cookie stays here"
    assert ACCESS_KEY.encode() not in body and SECRET_KEY.encode() not in body
    assert headers["Cache-Control"] == "no-store"


def test_api_errors_come_back_as_the_api_said_them(dashboard: DashboardServer) -> None:
    status, _, body = call(dashboard, "/api/prod/v1/clusters/missing")
    assert status == 404
    assert json.loads(body)["error"] == {"code": "NotFound", "message": "cluster 'missing' does not exist"}
    status, _, body = call(dashboard, "/api/broken/v1/clusters")
    assert status == 502 and json.loads(body)["error"]["code"] == "TargetUnavailable"
    status, _, body = call(dashboard, "/api/nowhere/v1/clusters")
    assert status == 404 and json.loads(body)["error"]["code"] == "NoSuchTarget"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/prod/v1/clusters/prod/upgrade", 405),  # an action, POSTed
        ("POST", "/api/prod/v1/clusters", 405),  # a create is not something the page does
        ("PATCH", "/api/prod/v1/clusters/prod", 405),  # changing a cluster's spec neither
        ("DELETE", "/api/prod/v1/clusters/prod/nodepools/general", 405),  # nor deleting a pool
        ("PUT", "/api/prod/v1/clusters/prod", 405),
        ("GET", "/api/prod/v1/clusters/..", 403),
        ("GET", "/api/prod/v1/clusters/a/../../../secrets", 403),
        ("GET", "/api/prod/v1/clusters/prod%2F..%2Fx", 403),
        ("GET", "/api/prod/v1/https://evil.example/", 403),
        ("GET", "/api/prod/v1/operations?cluster=a&cluster=b", 400),
        ("GET", "/api/prod/v1/clusters?dryRun=true", 400),
        ("GET", "/api/prod/v2/clusters", 404),
        ("DELETE", "/api/prod/v1/schedules/prod-1", 403),  # it shows schedules, cancels none
        ("DELETE", "/api/prod/v1/clusters/prod?keepEtcdVolumes=true", 400),  # a delete keeps nothing
        ("GET", "/api/prod/v1/schedules?cluster=prod&limit=5", 400),
        ("GET", "/api/prod/v1/openapi.json", 403),  # only the routes the page reads
    ],
)
def test_everything_else_is_refused_before_signing(
    dashboard: DashboardServer, upstream: Upstream, method: str, path: str, status: int
) -> None:
    before = len(upstream.requests)
    got, _, body = call(dashboard, path, method=method, headers={"X-Kubestep-Dashboard": "1"})
    assert got == status, body
    assert len(upstream.requests) == before


def test_cancel_needs_the_page_header(dashboard: DashboardServer, upstream: Upstream) -> None:
    path = "/api/prod/v1/operations/create-abc-1:cancel"
    status, _, _ = call(dashboard, path, method="POST")
    assert status == 403  # a cross-site form cannot set the header
    status, _, body = call(dashboard, path, method="POST", headers={"X-Kubestep-Dashboard": "1"})
    assert status == 202, body
    assert upstream.requests[-1]["method"] == "POST"
    assert upstream.requests[-1]["path"] == "/api/v1/operations/create-abc-1:cancel"


ACTION = {"X-Kubestep-Dashboard": "1"}


def send(server: DashboardServer, method: str, path: str, body: Any = None, headers: dict | None = None) -> tuple:
    """An action as the page sends it: session, page header, JSON body."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    data = json.dumps(body).encode() if body is not None else None
    sent = {"Host": f"127.0.0.1:{server.port}", SESSION_HEADER: server.token, **ACTION}
    if data is not None:
        sent["Content-Type"] = "application/json"
    connection.request(method, path, body=data, headers={**sent, **(headers or {})})
    response = connection.getresponse()
    answer = response.read()
    connection.close()
    return response.status, answer


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "clusters/prod/upgrade", {"version": "1.36.5", "nodePools": "all"}),
        ("PATCH", "clusters/prod/nodepools/general", {"minNodeCount": 3, "maxNodeCount": 6}),
        ("DELETE", "clusters/prod", None),
        ("POST", "operations/create-abc-1:cancel", None),
    ],
)
def test_the_page_actions_are_forwarded_signed_with_their_body_and_an_idempotency_key(
    dashboard: DashboardServer, upstream: Upstream, method: str, path: str, body: Any
) -> None:
    status, answer = send(dashboard, method, f"/api/prod/v1/{path}", body)
    assert status == 202, answer
    forwarded = upstream.requests[-1]
    assert (forwarded["method"], forwarded["path"]) == (method, f"/api/v1/{path}")
    assert json.loads(forwarded["body"] or b"null") == body
    assert forwarded["headers"]["Authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
    assert len(forwarded["headers"]["Idempotency-Key"]) >= 8
    # The page's own key goes through, so a retried click starts nothing twice.
    status, _ = send(dashboard, method, f"/api/prod/v1/{path}", body, {"Idempotency-Key": "page-key-123456"})
    assert status == 202 and upstream.requests[-1]["headers"]["Idempotency-Key"] == "page-key-123456"


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        # Only the fields of each action: no schedule (`at`), nothing that rolls a node pool.
        ("POST", "clusters/prod/upgrade", {"version": "1.36.5", "at": "2030-01-01T00:00:00Z"}, {}, 400),
        ("PATCH", "clusters/prod/nodepools/general", {"instanceType": "m5.24xlarge"}, {}, 400),
        ("PATCH", "clusters/prod/nodepools/general", {"minNodeCount": {"$gt": 1}}, {}, 400),
        ("PATCH", "clusters/prod/nodepools/general", [1, 2], {}, 400),
        ("DELETE", "clusters/prod", {"keepEtcdVolumes": True}, {}, 400),
        ("POST", "operations/create-abc-1:cancel", {"reason": "x"}, {}, 400),
        # A form can post text/plain cross-site without a preflight; the page sends JSON.
        ("POST", "clusters/prod/upgrade", {"version": "1.36.5"}, {"Content-Type": "text/plain"}, 415),
        ("POST", "clusters/prod/upgrade", {"version": "1.36.5"}, {"Idempotency-Key": "a b"}, 400),
        ("PATCH", "clusters/prod/nodepools/general", {"minNodeCount": 1}, {"X-Kubestep-Dashboard": "0"}, 403),
        ("DELETE", "clusters/prod", None, {"Origin": "http://evil.example"}, 403),
        ("DELETE", "clusters/prod", None, {SESSION_HEADER: "forged"}, 401),
    ],
)
def test_actions_carry_only_their_own_fields_as_json_from_the_page(
    dashboard: DashboardServer, upstream: Upstream, method: str, path: str, body: Any, headers: dict, status: int
) -> None:
    before = len(upstream.requests)
    got, answer = send(dashboard, method, f"/api/prod/v1/{path}", body, headers)
    assert got == status, answer
    assert len(upstream.requests) == before, "nothing was forwarded"


def test_a_local_runtime_that_restarted_elsewhere_is_followed(tmp_path, monkeypatch) -> None:
    """`kubestep local down && kubestep local up` gives the runtime other ports: a call that
    cannot connect makes the dashboard read the runtime's state file again and go there."""
    monkeypatch.setenv("KUBESTEP_HOME", str(tmp_path))
    for name in ("KUBESTEP_API_URL", "KUBESTEP_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    first, second = Upstream(), Upstream()
    state = tmp_path / "local.json"
    try:
        state.write_text(json.dumps({"api_url": first.url, "pid": os.getpid()}))
        [target] = dashboard_targets({}, ())
        assert (target.name, target.local, target.endpoint) == ("local", True, first.url)
        with DashboardServer([target], port=0) as server:
            assert call(server, "/api/local/v1/clusters")[0] == 200
            assert first.requests[-1]["path"] == "/api/v1/clusters"
            first.close()  # the runtime went down...
            state.write_text(json.dumps({"api_url": second.url, "pid": os.getpid()}))  # ...and came back
            status, _, body = call(server, "/api/local/v1/clusters?limit=5")
            assert status == 200, body
            assert second.requests[-1]["path"] == "/api/v1/clusters?limit=5"
            targets = json.loads(call(server, "/api/targets")[2])["targets"]
            assert targets[0]["endpoint"] == second.url
            # Down with no state file: the page hears why, and nothing else is tried.
            second.close()
            state.unlink()
            status, _, body = call(server, "/api/local/v1/clusters")
            assert status == 502 and json.loads(body)["error"]["code"] == "Unreachable"
    finally:
        for upstream in (first, second):
            with contextlib.suppress(Exception):
                upstream.close()


def test_a_named_endpoint_is_never_relocated(dashboard: DashboardServer) -> None:
    assert all(t.locate is None for t in dashboard.targets.values())


def test_route_table_lists_reads_and_the_page_actions() -> None:
    assert allowed_route("GET", "operations/op-1/steps", "after=3")[1] == {"after": "3"}
    assert allowed_route("GET", "schedules", "cluster=prod")[1] == {"cluster": "prod"}
    with pytest.raises(ProxyError) as refused:
        allowed_route("GET", "operations/op-1/steps", "after=1&x=2")
    assert "'x' is not forwarded (allowed: after)" in refused.value.message
    # Reads, and exactly the four actions the page offers.
    actions = sorted((r.method, r.description) for r in ALLOWED_ROUTES if r.method != "GET")
    assert actions == [
        ("DELETE", "delete a cluster"),
        ("PATCH", "scale a node pool"),
        ("POST", "cancel a running operation"),
        ("POST", "upgrade a cluster"),
    ]


def test_targets_from_contexts_and_the_default_endpoint(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KUBESTEP_HOME", str(tmp_path))
    for name in ("KUBESTEP_API_URL", "KUBESTEP_CONTEXT", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    config = contexts.Config(current="prod")
    config.contexts["prod"] = contexts.Context("prod", endpoint="https://abc.execute-api.eu-west-1.amazonaws.com/api/")
    config.contexts["staging"] = contexts.Context(
        "staging", endpoint="https://def.execute-api.us-east-2.amazonaws.com/api/"
    )
    contexts.save(config)
    # No flags: every context; the current context is the default endpoint, so it is not listed twice.
    targets = dashboard_targets({}, ())
    assert [(t.name, t.endpoint) for t in targets] == [
        ("prod", "https://abc.execute-api.eu-west-1.amazonaws.com/api/"),
        ("staging", "https://def.execute-api.us-east-2.amazonaws.com/api/"),
    ]
    # An explicit endpoint is listed too, first, as `default`.
    targets = dashboard_targets({"endpoint": "https://xyz.execute-api.eu-west-1.amazonaws.com/api/"}, ())
    assert [t.name for t in targets] == ["default", "prod", "staging"]
    # Chosen contexts only (the repeatable option and the global flag).
    assert [t.name for t in dashboard_targets({"context": "staging"}, ("prod",))] == ["prod", "staging"]
    with pytest.raises(Exception, match="no context named 'nope'"):
        dashboard_targets({}, ("nope",))


def raw_request(server: DashboardServer, head: str, body: bytes = b"", wait: float = 5.0) -> tuple[bytes, float]:
    """Send `head` (and `body`) on a raw socket; the answer's bytes and how long it took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=wait) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        answer = b""
        try:
            while b"\r\n\r\n" not in answer:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except TimeoutError:
            pass
    return answer, time.monotonic() - started


@pytest.mark.parametrize(
    ("length", "status"),
    [
        ("abc", b"400"),  # once a traceback on the CLI's terminal
        ("-1", b"400"),  # once read to EOF: the request's thread held until the client left
        ("1.5", b"400"),
        ("99999999999999999999", b"400"),
        ("2048", b"413"),
    ],
)
def test_bad_content_length_is_answered_at_once_without_a_traceback(
    dashboard: DashboardServer, upstream: Upstream, capfd: pytest.CaptureFixture[str], length: str, status: bytes
) -> None:
    before = len(upstream.requests)
    for method in ("POST", "GET"):
        head = (
            f"{method} /api/prod/v1/operations/create-abc-1:cancel HTTP/1.1\nHost: 127.0.0.1:{dashboard.port}\n"
            f"{SESSION_HEADER}: {dashboard.token}\nX-Kubestep-Dashboard: 1\nContent-Length: {length}\n"
        )
        answer, took = raw_request(dashboard, head)
        assert answer.startswith(b"HTTP/1.1 " + status), (method, answer[:200])
        assert took < 2, f"{method} with Content-Length {length} took {took:.1f}s"
    assert len(upstream.requests) == before
    assert "Traceback" not in capfd.readouterr().err
    # The server goes on serving.
    assert call(dashboard, "/api/targets")[0] == 200


def test_a_body_is_read_and_the_connection_stays_in_step(dashboard: DashboardServer) -> None:
    """A small body is read and dropped, so the next request on the connection is parsed right;
    a chunked one is refused and the connection closed."""
    head = (
        f"GET /api/targets HTTP/1.1\nHost: 127.0.0.1:{dashboard.port}\n{SESSION_HEADER}: {dashboard.token}\n"
        "Content-Length: 5\n"
    )
    answer, _ = raw_request(dashboard, head, b"hello")
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    chunked = (
        f"POST /api/targets HTTP/1.1\nHost: 127.0.0.1:{dashboard.port}\n{SESSION_HEADER}: {dashboard.token}\n"
        "Transfer-Encoding: chunked\n"
    )
    answer, took = raw_request(dashboard, chunked, b"5\r\nhello\r\n0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 411") and took < 2, answer[:200]
