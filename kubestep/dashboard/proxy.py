"""What the dashboard may ask a management API: a fixed list of read routes and the actions it
offers (upgrade a cluster, scale a node pool, delete a cluster, cancel an operation), each with
the body fields it may carry. Anything else is refused before a request is signed, so the
dashboard is never an open proxy for the user's credentials."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

# A path segment the page may name: a cluster, node pool or operation id. Letters first keeps
# out `.` and `..`; no `/`, `%`, `:` or `?` (the API's own names are narrower still).
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}"
MAX_QUERY_VALUE = 1000


class ProxyError(Exception):
    """A request the dashboard refuses to forward: `status` and a `code` for the page."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    query: frozenset[str]
    description: str
    # The JSON object fields an action's body may have (None: the route takes no body).
    body: frozenset[str] | None = None


def _route(method: str, path: str, description: str, *query: str, body: tuple[str, ...] | None = None) -> Route:
    regex = re.compile("^" + path.replace("{segment}", _SEGMENT) + "$")
    return Route(method, regex, frozenset(query), description, frozenset(body) if body is not None else None)


ALLOWED_ROUTES: tuple[Route, ...] = (
    _route("GET", "version", "the management service's version"),
    _route("GET", "serverconfig", "the Kubernetes versions it installs (the upgrade dialog's choices)"),
    _route("GET", "clusters", "the fleet", "limit", "nextToken"),
    _route("GET", "clusters/{segment}", "a cluster with its replicas, node pools and etcd configuration"),
    _route("GET", "clusters/{segment}/events", "a cluster's events"),
    _route("GET", "clusters/{segment}/nodepools", "a cluster's node pools"),
    _route("GET", "clusters/{segment}/nodepools/{segment}", "a node pool"),
    _route("GET", "operations", "operations, newest first", "cluster", "limit", "nextToken"),
    _route("GET", "operations/{segment}", "an operation"),
    _route("GET", "operations/{segment}/steps", "an operation's progress", "after"),
    _route("POST", "operations/{segment}:cancel", "cancel a running operation"),
    # The actions, each behind a confirmation on the page that names the cluster: an upgrade now
    # (no `at`: scheduling stays with the CLI), a node pool's bounds (nothing that rolls it), a
    # delete (no `keepEtcdVolumes`).
    _route("POST", "clusters/{segment}/upgrade", "upgrade a cluster", body=("version", "nodePools")),
    _route(
        "PATCH", "clusters/{segment}/nodepools/{segment}", "scale a node pool", body=("minNodeCount", "maxNodeCount")
    ),
    _route("DELETE", "clusters/{segment}", "delete a cluster"),
    _route("GET", "schedules", "a cluster's one-off upgrade schedules", "cluster"),
)


def allowed_route(method: str, path: str, query_string: str) -> tuple[Route, dict[str, str]]:
    """The route `method path` (below `v1/`) matches, and its query as a dict; ProxyError
    (403 for a path or method not on the list, 400 for a bad query) otherwise."""
    matching = [r for r in ALLOWED_ROUTES if r.pattern.match(path)]
    route = next((r for r in matching if r.method == method), None)
    if route is None:
        if matching:
            methods = ", ".join(sorted({r.method for r in matching}))
            raise ProxyError(405, "MethodNotAllowed", f"the dashboard only sends {methods} to this path")
        raise ProxyError(403, "NotProxied", "the dashboard does not forward this path (it is no open proxy)")
    try:
        parsed = parse_qs(query_string, keep_blank_values=True, strict_parsing=bool(query_string), max_num_fields=10)
    except ValueError:
        raise ProxyError(400, "InvalidQuery", "the query string is not valid") from None
    query: dict[str, str] = {}
    for key, values in parsed.items():
        if key not in route.query:
            allowed = ", ".join(sorted(route.query)) or "none"
            raise ProxyError(400, "InvalidQuery", f"query parameter {key[:40]!r} is not forwarded (allowed: {allowed})")
        if len(values) != 1 or len(values[0]) > MAX_QUERY_VALUE:
            raise ProxyError(400, "InvalidQuery", f"query parameter {key!r} must appear once, at most 1000 characters")
        query[key] = values[0]
    return route, query


def action_body(route: Route, raw: bytes) -> dict[str, Any] | None:
    """The JSON object an action sends, with only its route's fields; ProxyError otherwise."""
    if route.body is None:
        if raw.strip():
            raise ProxyError(400, "InvalidBody", "this action takes no body")
        return None
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise ProxyError(400, "InvalidBody", "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ProxyError(400, "InvalidBody", "the body must be a JSON object")
    unknown = sorted(set(body) - route.body)
    if unknown:
        allowed = ", ".join(sorted(route.body))
        raise ProxyError(400, "InvalidBody", f"field {unknown[0][:40]!r} is not forwarded (allowed: {allowed})")
    for key, value in body.items():
        names = isinstance(value, list) and all(isinstance(v, str) for v in value)
        if not (isinstance(value, str | int) and not isinstance(value, bool) or names):
            raise ProxyError(400, "InvalidBody", f"field {key!r} must be a string, a number or a list of names")
    return body
