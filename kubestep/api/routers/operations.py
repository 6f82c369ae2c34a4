"""`/v1/operations`: long-running operations — read, list, follow step by step, cancel."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from kubestep import operations
from kubestep.api import schemas
from kubestep.api.http import (
    PREFIX,
    JsonResponse,
    OperationIdParam,
    accepted,
    caller,
    deps,
    json_response,
    require_operation,
    responses,
)
from kubestep.models import NAME_PATTERN

router = APIGatewayRouter()


@router.get(
    f"{PREFIX}/operations/<id>",
    operation_id="getOperation",
    summary="An operation's status",
    responses=responses(200, schemas.Operation, "The operation", 400, 404),
    tags=["operations"],
)
def get_operation(operation_id: OperationIdParam) -> JsonResponse:
    _, store = deps(router)
    return json_response(200, operations.operation_view(require_operation(store, operation_id), PREFIX))


@router.get(
    f"{PREFIX}/operations",
    operation_id="listOperations",
    summary="List operations, newest first",
    description="Every target's operations (clusters' and the network's), newest first; with `cluster`, that "
    "cluster's, also after it was deleted (operations are kept 90 days).",
    responses=responses(200, schemas.OperationList, "One page of operations", 400),
    tags=["operations"],
)
def list_operations(
    cluster: Annotated[
        str | None, Query(description="Only this cluster's operations", max_length=40, pattern=NAME_PATTERN)
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size")] = 50,
    next_token: Annotated[
        str | None, Query(alias="nextToken", max_length=1000, description="From the previous page")
    ] = None,
) -> JsonResponse:
    _, store = deps(router)
    records, token = operations.list_operations(store, cluster=cluster, limit=limit, token=next_token)
    return json_response(200, {"items": [operations.operation_view(r, PREFIX) for r in records], "nextToken": token})


@router.post(
    f"{PREFIX}/operations/<id>:cancel",
    operation_id="cancelOperation",
    summary="Cancel a running operation",
    description="Stops the operation's execution (StopExecution). The operation then ends ABORTED; its lock "
    "is released and its records cleaned as for any execution that ended without finishing. 409 "
    "`OperationNotRunning` if it has already ended.",
    responses=responses(202, schemas.Operation, "Cancellation requested; poll the operation", 400, 404, 409),
    tags=["operations"],
)
def cancel_operation(operation_id: OperationIdParam) -> JsonResponse:
    current, store = deps(router)
    require_operation(store, operation_id)
    operation = operations.cancel(current, store, operation_id, caller(router))
    return accepted(router, current, operations.operation_view(operation, PREFIX))


@router.get(
    f"{PREFIX}/operations/<id>/steps",
    operation_id="listOperationSteps",
    summary="An operation's progress, step by step",
    description="From the execution's history: each finished step with its duration, what polling steps "
    "wait for (once each), errors. Pass `after` = the previous answer's `next` to get only new items.",
    responses=responses(200, schemas.OperationSteps, "Steps after `after`", 400, 404),
    tags=["operations"],
)
def list_operation_steps(
    operation_id: OperationIdParam,
    after: Annotated[int, Query(ge=0, le=1_000_000, description="Items already seen")] = 0,
) -> JsonResponse:
    current, store = deps(router)
    return json_response(200, operations.steps(current, require_operation(store, operation_id), after))
