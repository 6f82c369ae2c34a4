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
from kubestep.api.http import PREFIX, JsonResponse, accepted, caller, deps
from kubestep.store import Operation

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
    router: APIGatewayRouter, *, route: str, key: str | None, body: dict[str, Any], start: Callable[[], Operation]
) -> JsonResponse:
    """202 with the operation `start` began (or, for a retried key, the first request's)."""
    current, _ = deps(router)
    answer = once(router, route=route, key=key, body=body, start=lambda: operations.operation_view(start(), PREFIX))
    return accepted(router, current, answer)
