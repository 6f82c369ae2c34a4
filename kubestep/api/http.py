"""What every route shares: the path prefix, parameter types, declared responses, JSON and 202
answers, the caller's identity, and the look-ups that answer 404 the same way everywhere."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.models import Example
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import BaseModel

from kubestep.api import schemas
from kubestep.errors import NotFound, shown
from kubestep.models import NAME_PATTERN
from kubestep.settings import Settings, settings
from kubestep.store import ClusterRecord, NodePoolRecord, Operation, Store

PREFIX = "/v1"
# API Gateway itself accepts 10 MB; a manifest is a few KiB, so anything this big is a mistake.
MAX_BODY_BYTES = 256 * 1024
# Step Functions refuses execution inputs over 256 KiB.
MAX_EXECUTION_INPUT_BYTES = 256 * 1024 - 1024
# How long a client should wait before polling an operation (scaled in the local runtime).
RETRY_AFTER_SECONDS = 5
OPERATION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,80}$"

# The routes' return type: Powertools checks the body is a JSON object; `responses=` on each
# route documents the precise models (validating against them here would rewrite the views).
JsonResponse = Response[dict[str, Any]]


# ---------------------------------------------------------------- parameters

# Path names are documented with their pattern but not refused with 400: a name that cannot
# exist is simply not found (as `kubectl get` answers), so "does it exist?" has one answer.


def name_param(
    description: str, example: str, *, pattern: str = NAME_PATTERN, max_length: int = 40, alias: str | None = None
) -> Path:
    return Path(
        alias=alias,
        description=description,
        examples=[example],
        json_schema_extra={"pattern": pattern, "maxLength": max_length},
    )


def could_exist(name: str, pattern: str = NAME_PATTERN, max_length: int = 40) -> bool:
    """Could an object have this name? Checked before any key reaches DynamoDB."""
    return len(name) <= max_length and re.fullmatch(pattern, name) is not None


ClusterName = Annotated[str, name_param("The cluster's name (metadata.name)", "prod")]
PoolName = Annotated[str, name_param("The node pool's name", "general")]
OperationIdParam = Annotated[
    str,
    name_param(
        "The operation id (execution name)",
        "create-k3x9q2m1-1",
        pattern=OPERATION_ID_PATTERN,
        max_length=80,
        alias="id",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Retrying with the same key (and the same body) within 24 hours returns the first "
        "answer instead of starting another operation.",
    ),
]
DryRun = Annotated[
    bool,
    Query(
        alias="dryRun",
        description="Validate and check everything the operation would (names, locks, the network), "
        "start nothing, and answer 200 with what would happen",
    ),
]


def example(summary: str, value: dict[str, Any]) -> Body:
    return Body(openapi_examples={"example": Example(summary=summary, value=value)})


# ---------------------------------------------------------------- declared responses

ERROR_DESCRIPTIONS = {
    400: "Invalid input; `details` names each offending field and the rule it breaks",
    404: "No such cluster, node pool, operation or schedule",
    409: "Conflict: the name exists (`AlreadyExists`), another operation holds the cluster's lock "
    "(`LockHeld`, with its `operationId`), the network is not ready (`NetworkNotReady`), the cluster is "
    "not RUNNING (`ClusterNotReady`), the operation has ended (`OperationNotRunning`), the schedule "
    "already fired (`ScheduleNotPending`), or the Idempotency-Key was used for another request "
    "(`IdempotencyKeyReused`, `IdempotencyInProgress`)",
    413: f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB",
    415: "The request body is not JSON",
}
BODY_ERRORS = (400, 413, 415)


def responses(status: int, model: type[BaseModel], description: str, *errors: int) -> dict[int, OpenAPIResponse]:
    declared: dict[int, OpenAPIResponse] = {
        status: {"description": description, "content": {content_types.APPLICATION_JSON: {"model": model}}}
    }
    for code in errors:
        declared[code] = {
            "description": ERROR_DESCRIPTIONS[code],
            "content": {content_types.APPLICATION_JSON: {"model": schemas.ErrorResponse}},
        }
    return declared


# ---------------------------------------------------------------- answers


def json_response(status: int, body: Any) -> JsonResponse:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def error_body(
    code: str, message: str, details: Iterable[tuple[str, str]] = (), operation_id: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "details": [{"field": f, "rule": r} for f, r in details]}
    if operation_id:
        error["operationId"] = operation_id
    return {"error": error}


def error_response(
    status: int, code: str, message: str, details: Iterable[tuple[str, str]] = (), **kw: Any
) -> JsonResponse:
    return json_response(status, error_body(code, message, details, **kw))


def accepted(router: APIGatewayRouter, current: Settings, operation: dict[str, Any]) -> JsonResponse:
    """202 for a started operation, with where to poll it (`Location`, relative to the request
    URL so it keeps the stage prefix: `https://…/api/v1/clusters` + `operations/<id>`) and when."""
    request_dir = posixpath.dirname(router.current_event.path.rstrip("/"))
    location = posixpath.relpath(operation["statusUrl"], request_dir)
    retry_after = max(1, round(RETRY_AFTER_SECONDS * (current.time_scale or 1)))
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=operation,
        headers={"Location": location, "Retry-After": str(retry_after)},
    )


# ---------------------------------------------------------------- dependencies


def deps(router: APIGatewayRouter) -> tuple[Settings, Store]:
    """The Lambda handler puts its cached settings and store in the resolver's context."""
    current = router.context.get("settings") or settings()
    store = router.context.get("store") or Store.for_table(current.table_name)
    return current, store


def caller(router: APIGatewayRouter) -> str | None:
    identity = router.current_event.request_context.identity
    return identity.user_arn or identity.caller or None


def require_cluster(store: Store, name: str) -> ClusterRecord:
    if not could_exist(name):
        raise NotFound(f"cluster {shown(name)} does not exist (not a valid cluster name)")
    record = store.clusters.get(name)
    if record is not None:
        return record
    # A create reserves the name (its lock) before its execution writes the record.
    lock = store.locks.get(name)
    if lock:
        raise NotFound(
            f"cluster {name!r} does not exist yet: operation {lock.operation_id} is creating it "
            f"(GET {PREFIX}/operations/{lock.operation_id})"
        )
    raise NotFound(f"cluster {name!r} does not exist")


def require_node_pool(store: Store, cluster: str, pool: str) -> NodePoolRecord:
    record = store.node_pools.get(cluster, pool) if could_exist(pool) else None
    if record is None:
        raise NotFound(f"node pool {shown(pool)} of cluster {shown(cluster)} does not exist")
    return record


def require_operation(store: Store, operation_id: str) -> Operation:
    valid = could_exist(operation_id, OPERATION_ID_PATTERN, 80)
    operation = store.operations.get(operation_id) if valid else None
    if operation is None:
        raise NotFound(f"operation {shown(operation_id)} does not exist")
    return operation
