"""One table from exception class to HTTP status and error code; every error answer is
`{"error": {"code", "message", "details": [{"field", "rule"}], "operationId"?}}`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)

from kubestep.api.http import PREFIX, JsonResponse, error_response, shown
from kubestep.api.openapi import allowed_methods
from kubestep.errors import (
    AlreadyExists,
    ClusterNotReady,
    InvalidRequest,
    InvalidSpec,
    LockHeld,
    NetworkNotReady,
    NotFound,
    OperationNotRunning,
    ScheduleNotPending,
)
from kubestep.validation import problems_from_errors

logger = Logger(child=True)


class PayloadTooLarge(Exception):
    """The request (or the execution input made from it) is larger than allowed."""


def _field_problems(exc: InvalidSpec) -> list[tuple[str, str]]:
    # A rule on the whole body (e.g. unique node pool names) has no field of its own.
    return [("body" if field == "(input)" else field, rule) for field, rule in exc.problems]


def _request_problems(errors: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Powertools' validation errors as (field, rule): body fields by their path inside the body,
    parameters (query, path, header) by their name."""
    problems: list[tuple[str, str]] = []
    for item in errors:
        _where, *rest = tuple(item.get("loc") or ("body",))
        if item.get("type") == "json_invalid":
            problems.append(("body", f"is not valid JSON ({(item.get('ctx') or {}).get('error', 'parse error')})"))
            continue
        [(field, rule)] = problems_from_errors([{**item, "loc": tuple(rest)}])
        problems.append(("body" if field == "(input)" else field, rule))
    return problems


def _lock_held(exc: LockHeld) -> JsonResponse:
    holder = exc.holder.get("operationId")
    message = f"{exc}; wait for it (GET {PREFIX}/operations/{holder}) and retry"
    return error_response(409, "LockHeld", message, operation_id=holder)


def _invalid_request(exc: RequestValidationError) -> JsonResponse:
    # Powertools answers 422 with bare locations; the API answers 400 naming field and rule.
    problems = _request_problems(exc.errors())
    message = "the request is invalid: " + "; ".join(f"{f}: {r}" for f, r in problems)
    return error_response(400, "InvalidRequest", message, problems)


def _invalid(code: str) -> Callable[[InvalidSpec], JsonResponse]:
    def answer(exc: InvalidSpec) -> JsonResponse:
        problems = _field_problems(exc)
        return error_response(400, code, "; ".join(f"{f}: {r}" for f, r in problems), problems)

    return answer


# Exception class -> (status, code, message); InvalidSpec before InvalidRequest (a subclass).
SIMPLE: dict[type[Exception], tuple[int, str, Callable[[Exception], str]]] = {
    RequestUnsupportedContentType: (415, "UnsupportedMediaType", lambda e: "send the request body as application/json"),
    NotFound: (404, "NotFound", str),
    AlreadyExists: (409, "AlreadyExists", str),
    NetworkNotReady: (409, "NetworkNotReady", str),
    OperationNotRunning: (409, "OperationNotRunning", str),
    ScheduleNotPending: (409, "ScheduleNotPending", str),
    ClusterNotReady: (409, "ClusterNotReady", str),
    IdempotencyValidationError: (
        409,
        "IdempotencyKeyReused",
        lambda e: "this Idempotency-Key was already used with a different request body; use a new key",
    ),
    IdempotencyAlreadyInProgressError: (
        409,
        "IdempotencyInProgress",
        lambda e: "a request with this Idempotency-Key is still being processed; retry in a few seconds",
    ),
    PayloadTooLarge: (413, "PayloadTooLarge", str),
    # json.loads (or validation) of a body like [[[[…]]]] 2,000 levels deep: the caller's input.
    RecursionError: (400, "InvalidRequest", lambda e: "the request body is nested too deeply"),
}
SPECIAL: dict[type[Exception], Callable[[Any], JsonResponse]] = {
    RequestValidationError: _invalid_request,
    InvalidRequest: _invalid("InvalidRequest"),
    InvalidSpec: _invalid("InvalidSpec"),
    LockHeld: _lock_held,
}


def register(app: APIGatewayRestResolver) -> None:
    for exception, answer in SPECIAL.items():
        app.exception_handler(exception)(answer)
    for exception, (status, code, message) in SIMPLE.items():
        details = [("body", "is nested too deeply")] if exception is RecursionError else []

        def answer(
            exc: Exception, status: int = status, code: str = code, message: Any = message, details: Any = details
        ) -> JsonResponse:
            return error_response(status, code, message(exc), details)

        app.exception_handler(exception)(answer)

    @app.not_found
    def no_route(exc: NotFoundError) -> JsonResponse:
        event = app.current_event
        allowed = allowed_methods(event.path)
        # A path the route table knows but not the method: RFC 9110 §15.5.6, 405 with `Allow`.
        # (A known method that still did not match is a path parameter that can name nothing.)
        if allowed and event.http_method not in allowed:
            answer = error_response(
                405,
                "MethodNotAllowed",
                f"{shown(event.http_method, 20)} is not allowed on {shown(event.path)}; allowed: {', '.join(allowed)}",
            )
            answer.headers["Allow"] = ", ".join(allowed)
            return answer
        return error_response(
            404,
            "NotFound",
            f"no route {shown(event.http_method, 20)} {shown(event.path)}; see GET {PREFIX}/openapi.json",
        )

    @app.exception_handler(Exception)
    def crashed(exc: Exception) -> JsonResponse:
        # An answer the caller can parse, and the traceback in the logs (never the request body).
        logger.exception("request failed", extra={"error": type(exc).__name__})
        return error_response(500, "InternalError", "the request failed unexpectedly; see the API function's logs")
