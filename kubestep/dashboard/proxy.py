"""What the dashboard may ask a management API: a fixed list of read routes and the one action
it offers (cancel an operation). Anything else is refused before a request is signed, so the
dashboard is never an open proxy for the user's credentials."""

from __future__ import annotations

import re
from dataclasses import dataclass
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


def _route(method: str, path: str, description: str, *query: str) -> Route:
    regex = re.compile("^" + path.replace("{segment}", _SEGMENT) + "$")
    return Route(method, regex, frozenset(query), description)


ALLOWED_ROUTES: tuple[Route, ...] = (
    _route("GET", "version", "the management service's version"),
    _route("GET", "openapi.json", "the API's routes (the page asks for scheduled upgrades only where they exist)"),
    _route("GET", "clusters", "the fleet", "limit", "nextToken"),
    _route("GET", "clusters/{segment}", "a cluster with its replicas, node pools and etcd configuration"),
    _route("GET", "clusters/{segment}/events", "a cluster's events"),
    _route("GET", "clusters/{segment}/nodepools", "a cluster's node pools"),
    _route("GET", "clusters/{segment}/nodepools/{segment}", "a node pool"),
    _route("GET", "operations", "operations, newest first", "cluster", "limit", "nextToken"),
    _route("GET", "operations/{segment}", "an operation"),
    _route("GET", "operations/{segment}/steps", "an operation's progress", "after"),
    _route("POST", "operations/{segment}:cancel", "cancel a running operation"),
    # Scheduled upgrades (issue 10): the page shows "none" while a service does not have the route.
    _route("GET", "schedules", "scheduled upgrades", "cluster", "limit", "nextToken"),
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
