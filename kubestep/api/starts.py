"""What every route that starts something shares: run the start once per `Idempotency-Key`
(a retry answers what the first request answered, even after the state moved on), count it,
and answer 202 with the operation and where to poll it. A route says only what differs: its
route key, the request that identifies a retry, and its start."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from aws_lambda_powertools.metrics import Metrics, MetricUnit

from kubestep import idempotency, operations
from kubestep.api.http import PREFIX, JsonResponse, accepted, caller, deps, require_cluster
from kubestep.settings import Settings
from kubestep.store import Operation, Store

metrics = Metrics()


def once(
    router: APIGatewayRouter, *, route: str, key: str | None, body: dict[str, Any], start: Callable[[], dict]
) -> dict:
    """`start`'s answer, run once per (route, key, caller) when a key is given, and counted
    (`OperationStarted`) when it runs. Checks of the current state belong in `start`: a replay
    answers the first response without them."""

    def counted() -> dict:
        answer = start()
        metrics.add_metric(name="OperationStarted", unit=MetricUnit.Count, value=1)
        return answer

    current, _ = deps(router)
    return idempotency.once(current.table_name, route=route, key=key, caller=caller(router), body=body, start=counted)


def start_operation(
    router: APIGatewayRouter,
    *,
    route: str,
    key: str | None,
    body: dict[str, Any],
    start: Callable[[], Operation],
    cluster: str | None = None,
) -> JsonResponse:
    """202 with the operation `start` began (or, for a retried key, the first request's). With
    `cluster`, that cluster must exist when the start runs (404 otherwise)."""
    current, store = deps(router)

    def view() -> dict:
        if cluster is not None:
            require_cluster(store, cluster)
        return operations.operation_view(start(), PREFIX)

    return accepted(router, current, once(router, route=route, key=key, body=body, start=view))


def start_for_request(
    router: APIGatewayRouter,
    *,
    route: str,
    key: str | None,
    request: dict[str, Any],
    start: Callable[[Settings, Store, dict[str, Any]], Operation],
    cluster: str | None = None,
) -> JsonResponse:
    """`start_operation` of `start(settings, store, request)`: the request is what it starts and
    what identifies a retry."""
    current, store = deps(router)
    return start_operation(
        router, route=route, key=key, body=request, cluster=cluster, start=lambda: start(current, store, request)
    )
