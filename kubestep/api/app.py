"""The management REST API: Powertools' `APIGatewayRestResolver` with pydantic validation and
its generated OpenAPI document, one router per resource (`kubestep.api.routers`).

API Gateway proxies `ANY /v1/{proxy+}` (stage `api`) to one Lambda function, which sees
`path = /v1/...`; routes are declared with that prefix so the OpenAPI paths are the real paths
below the stage URL (`ApiUrl`). Route functions stay thin: they call `operations`, `views` and
the store, and raise typed errors that `kubestep.api.errors` turns into
`{"error": {"code", "message", "details": [{"field", "rule"}]}}` with the right status.

Request bodies are never logged: manifests may name secrets, and callers may paste anything."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from kubestep import idempotency
from kubestep.api import errors, guards, openapi
from kubestep.api.http import MAX_BODY_BYTES, PREFIX, JsonResponse, error_response, json_response
from kubestep.api.routers import backups, clusters, node_pools, operations, reliability, schedules, service

__all__ = ["IDEMPOTENCY_PK", "MAX_BODY_BYTES", "app", "handle", "openapi_document"]

IDEMPOTENCY_PK = idempotency.IDEMPOTENCY_PK
openapi_document = openapi.openapi_document

app = APIGatewayRestResolver(enable_validation=True)
for module in (clusters, backups, node_pools, operations, schedules, service, reliability):
    app.include_router(module.router)
errors.register(app)
openapi.bind(app)


def _reject_unknown_query_parameters(resolver: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response:
    # Like unknown body fields: a typo such as `?keepEtcdVolume=true` must not be ignored silently.
    route = resolver.context.get("_route")
    known = {param.alias for param in route.dependant.query_params} if route else set()
    unknown = sorted(set(resolver.current_event.query_string_parameters or {}) - known)
    if unknown:
        return error_response(
            400,
            "InvalidRequest",
            f"unknown query parameters: {', '.join(unknown)}",
            [(name, "is not a known query parameter") for name in unknown],
        )
    return next_middleware(resolver)


app.use([_reject_unknown_query_parameters])


@app.get(f"{PREFIX}/openapi.json", include_in_schema=False)
def get_openapi() -> JsonResponse:
    return json_response(200, openapi.openapi_document())


def handle(event: dict[str, Any], context: Any, **state: Any) -> dict[str, Any]:
    """Resolve one API Gateway REST proxy event. `state` (settings, store) goes to the routes."""
    event, answer = guards.check(event)
    if answer is not None:
        return answer
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        # An in-progress idempotency record then expires with this invocation.
        idempotency.CONFIG.register_lambda_context(context)
    app.append_context(**state)
    return app.resolve(event, context)
