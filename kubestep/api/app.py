"""The management REST API: Powertools' `APIGatewayRestResolver` with pydantic validation and
its generated OpenAPI document.

API Gateway proxies `ANY /v1/{proxy+}` (stage `v1`) to one Lambda function, which sees
`path = /v1/...`; routes are declared with that prefix so the OpenAPI paths are the real paths
below the stage URL (`ApiUrl`). Route functions stay thin: they call `operations`, `views` and
the registry, and raise typed errors that the exception handlers below turn into
`{"error": {"code", "message", "details": [{"field", "rule"}]}}` with the right status.

Request bodies are never logged: manifests may name secrets, and callers may paste anything."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Example, Server
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from pydantic import BaseModel

from kubestep import operations, versions, views
from kubestep.api import schemas
from kubestep.aws import RETRY_CONFIG
from kubestep.errors import AlreadyExists, InvalidSpec, LockHeld, NetworkNotReady, NotFound
from kubestep.models import NAME_PATTERN, AWSNodePool, NodePoolSpec, dump
from kubestep.settings import Settings, settings
from kubestep.store import ClusterRecord, NodePoolRecord, Store
from kubestep.validation import node_pool_problems, parse, problems_from_errors

logger = Logger(child=True)
metrics = Metrics()

PREFIX = "/v1"
API_TITLE = "kubestep management API"
DOCUMENT_VERSION = "1.0.0"
# API Gateway itself accepts 10 MB; a manifest is a few KiB, so anything this big is a mistake.
MAX_BODY_BYTES = 256 * 1024
# Step Functions refuses execution inputs over 256 KiB; keep room for operationId and uid.
MAX_EXECUTION_INPUT_BYTES = 256 * 1024 - 1024
# Retries with the same Idempotency-Key within this window return the first answer.
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
IDEMPOTENCY_PK = "IDEMPOTENCY#api"  # docs/architecture.md: the `IDEMPOTENCY#…` items
IDEMPOTENCY_CONFIG = IdempotencyConfig(
    event_key_jmespath="[route, key, caller]",
    payload_validation_jmespath="body",
    raise_on_no_idempotency_key=True,
    expires_after_seconds=IDEMPOTENCY_TTL_SECONDS,
)

app = APIGatewayRestResolver(enable_validation=True)


# The routes' return type: Powertools checks the body is a JSON object; `responses=` on each
# route documents the precise models (validating against them here would rewrite the views).
JsonResponse = Response[dict[str, Any]]


class NotImplementedYet(Exception):
    """The route exists and validated its input, but its workflow does not exist yet."""


class PayloadTooLarge(Exception):
    """The request (or the execution input made from it) is larger than allowed."""


# ---------------------------------------------------------------- parameters

# Path names are documented with their pattern but not refused with 400: a name that cannot
# exist is simply not found (as `kubectl get` answers), so "does it exist?" has one answer.
OPERATION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,80}$"


def _name_param(
    description: str,
    example: str,
    *,
    pattern: str = NAME_PATTERN,
    max_length: int = 40,
    alias: str | None = None,
) -> Path:
    return Path(
        alias=alias,
        description=description,
        examples=[example],
        json_schema_extra={"pattern": pattern, "maxLength": max_length},
    )


def _could_exist(name: str, pattern: str = NAME_PATTERN, max_length: int = 40) -> bool:
    """Could an object have this name? Checked before any key reaches DynamoDB."""
    return len(name) <= max_length and re.fullmatch(pattern, name) is not None


ClusterName = Annotated[str, _name_param("The cluster's name (metadata.name)", "prod")]
PoolName = Annotated[str, _name_param("The node pool's name", "general")]
OperationIdParam = Annotated[
    str,
    _name_param(
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


def _example(summary: str, value: dict[str, Any]) -> Body:
    return Body(openapi_examples={"example": Example(summary=summary, value=value)})


# ---------------------------------------------------------------- declared responses

ERROR_DESCRIPTIONS = {
    400: "Invalid input; `details` names each offending field and the rule it breaks",
    404: "No such cluster, node pool or operation",
    409: "Conflict: the name exists (`AlreadyExists`), another operation holds the cluster's lock "
    "(`LockHeld`, with its `operationId`), the network is not ready (`NetworkNotReady`), or the "
    "Idempotency-Key was used for another request (`IdempotencyKeyReused`, `IdempotencyInProgress`)",
    413: f"The request body is larger than {MAX_BODY_BYTES // 1024} KiB",
    415: "The request body is not JSON",
    501: "The route's workflow is not available yet (the input was valid)",
}


def _responses(status: int, model: type[BaseModel], description: str, *errors: int) -> dict[int, OpenAPIResponse]:
    declared: dict[int, OpenAPIResponse] = {
        status: {"description": description, "content": {content_types.APPLICATION_JSON: {"model": model}}}
    }
    for code in errors:
        declared[code] = {
            "description": ERROR_DESCRIPTIONS[code],
            "content": {content_types.APPLICATION_JSON: {"model": schemas.ErrorResponse}},
        }
    return declared


BODY_ERRORS = (400, 413, 415)

# ---------------------------------------------------------------- responses


def _json(status: int, body: Any) -> JsonResponse:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=body)


def error_body(
    code: str, message: str, details: Iterable[tuple[str, str]] = (), operation_id: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "details": [{"field": f, "rule": r} for f, r in details],
    }
    if operation_id:
        error["operationId"] = operation_id
    return {"error": error}


def _error(status: int, code: str, message: str, details: Iterable[tuple[str, str]] = (), **kw: Any) -> JsonResponse:
    return _json(status, error_body(code, message, details, **kw))


def _request_problems(errors: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """Powertools' validation errors as (field, rule): body fields by their path inside the body,
    parameters by their name."""
    problems: list[tuple[str, str]] = []
    for item in errors:
        _where, *rest = tuple(item.get("loc") or ("body",))
        if item.get("type") == "json_invalid":
            problems.append(("body", f"is not valid JSON ({(item.get('ctx') or {}).get('error', 'parse error')})"))
            continue
        # Body fields by their path inside the body; parameters (query, path, header) by name.
        [(field, rule)] = problems_from_errors([{**item, "loc": tuple(rest)}])
        problems.append(("body" if field == "(input)" else field, rule))
    return problems


@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> JsonResponse:
    # Powertools answers 422 with bare locations; the API answers 400 naming field and rule.
    problems = _request_problems(exc.errors())
    return _error(
        400,
        "InvalidRequest",
        "the request is invalid: " + "; ".join(f"{f}: {r}" for f, r in problems),
        problems,
    )


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported_content_type(exc: RequestUnsupportedContentType) -> JsonResponse:
    return _error(415, "UnsupportedMediaType", "send the request body as application/json")


@app.exception_handler(InvalidSpec)
def _invalid_spec(exc: InvalidSpec) -> JsonResponse:
    # A rule on the whole body (e.g. unique node pool names) has no field of its own.
    problems = [("body" if field == "(input)" else field, rule) for field, rule in exc.problems]
    return _error(400, "InvalidSpec", "; ".join(f"{f}: {r}" for f, r in problems), problems)


@app.exception_handler(NotFound)
def _not_found(exc: NotFound) -> JsonResponse:
    return _error(404, "NotFound", str(exc))


@app.exception_handler(AlreadyExists)
def _already_exists(exc: AlreadyExists) -> JsonResponse:
    return _error(409, "AlreadyExists", str(exc))


@app.exception_handler(LockHeld)
def _lock_held(exc: LockHeld) -> JsonResponse:
    holder = exc.holder.get("operationId")
    return _error(
        409,
        "LockHeld",
        f"{exc}; wait for it (GET {PREFIX}/operations/{holder}) and retry",
        operation_id=holder,
    )


@app.exception_handler(NetworkNotReady)
def _network_not_ready(exc: NetworkNotReady) -> JsonResponse:
    return _error(409, "NetworkNotReady", str(exc))


@app.exception_handler(IdempotencyValidationError)
def _idempotency_key_reused(exc: IdempotencyValidationError) -> JsonResponse:
    return _error(
        409,
        "IdempotencyKeyReused",
        "this Idempotency-Key was already used with a different request body; use a new key",
    )


@app.exception_handler(IdempotencyAlreadyInProgressError)
def _idempotency_in_progress(exc: IdempotencyAlreadyInProgressError) -> JsonResponse:
    return _error(
        409,
        "IdempotencyInProgress",
        "a request with this Idempotency-Key is still being processed; retry in a few seconds",
    )


@app.exception_handler(NotImplementedYet)
def _not_implemented(exc: NotImplementedYet) -> JsonResponse:
    return _error(501, "NotImplemented", str(exc))


@app.exception_handler(PayloadTooLarge)
def _payload_too_large(exc: PayloadTooLarge) -> JsonResponse:
    return _error(413, "PayloadTooLarge", str(exc))


@app.not_found
def _no_route(exc: NotFoundError) -> JsonResponse:
    event = app.current_event
    return _error(404, "NotFound", f"no route {event.http_method} {event.path}; see GET {PREFIX}/openapi.json")


@app.exception_handler(Exception)
def _crashed(exc: Exception) -> JsonResponse:
    # An answer the caller can parse, and the traceback in the logs (never the request body).
    logger.exception("request failed", extra={"error": type(exc).__name__})
    return _error(500, "InternalError", "the request failed unexpectedly; see the API function's logs")


def _reject_unknown_query_parameters(resolver: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response:
    # Like unknown body fields: a typo such as `?keepEtcdVolume=true` must not be ignored silently.
    route = resolver.context.get("_route")
    known = {param.alias for param in route.dependant.query_params} if route else set()
    unknown = sorted(set(resolver.current_event.query_string_parameters or {}) - known)
    if unknown:
        return _error(
            400,
            "InvalidRequest",
            f"unknown query parameters: {', '.join(unknown)}",
            [(name, "is not a known query parameter") for name in unknown],
        )
    return next_middleware(resolver)


app.use([_reject_unknown_query_parameters])


# ---------------------------------------------------------------- dependencies


def _deps() -> tuple[Settings, Store]:
    """The Lambda handler puts its cached settings and store in the resolver's context."""
    current = app.context.get("settings") or settings()
    store = app.context.get("store") or Store.for_table(current.table_name)
    return current, store


def _caller() -> str | None:
    identity = app.current_event.request_context.identity
    return identity.user_arn or identity.caller or None


@cache
def _idempotent_runner(table_name: str) -> Callable[..., dict]:
    """Powertools idempotency on the service's single table: items `pk = IDEMPOTENCY#api`,
    `sk = kubestep-api#<hash of route, key, caller>`, expired through the table's `ttl`."""
    persistence = DynamoDBPersistenceLayer(
        table_name=table_name,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value=IDEMPOTENCY_PK,
        expiry_attr="ttl",
        boto_config=RETRY_CONFIG,
    )

    def run(*, request: dict[str, Any], start: Callable[[], dict]) -> dict:
        return start()

    return idempotent_function(
        run,
        data_keyword_argument="request",
        persistence_store=persistence,
        config=IDEMPOTENCY_CONFIG,
        key_prefix="kubestep-api",
    )


def _start_once(route: str, key: str | None, body: dict[str, Any], start: Callable[[], dict]) -> dict:
    """Start an operation; with an Idempotency-Key, a retry returns the first answer (one
    execution), and the key with another body is refused."""

    def counted() -> dict:
        operation = start()
        metrics.add_metric(name="OperationStarted", unit=MetricUnit.Count, value=1)
        return operation

    if key is None:
        return counted()
    request = {"route": route, "key": key, "caller": _caller() or "anonymous", "body": body}
    return _idempotent_runner(_deps()[0].table_name)(request=request, start=counted)


def _require_cluster(registry: Store, name: str) -> ClusterRecord:
    if not _could_exist(name):
        raise NotFound(f"cluster {name!r} does not exist (not a valid cluster name)")
    record = registry.clusters.get(name)
    if record is not None:
        return record
    # A create reserves the name (its lock) before its execution writes the record.
    lock = registry.locks.get(name)
    if lock:
        raise NotFound(
            f"cluster {name!r} does not exist yet: operation {lock.operation_id} is creating it "
            f"(GET {PREFIX}/operations/{lock.operation_id})"
        )
    raise NotFound(f"cluster {name!r} does not exist")


def _require_node_pool(registry: Store, cluster: str, pool: str) -> NodePoolRecord:
    record = registry.node_pools.get(cluster, pool) if _could_exist(pool) else None
    if record is None:
        raise NotFound(f"node pool {pool!r} of cluster {cluster!r} does not exist")
    return record


def _require_network(registry: Store, current: Settings) -> None:
    """CreateCluster's first state would fail on it; saying so now saves the caller a failed operation."""
    registry.network.ready(current.service_name)


# ---------------------------------------------------------------- clusters


@app.post(
    f"{PREFIX}/clusters",
    operation_id="createCluster",
    summary="Create a cluster (and its node pools)",
    description="Validates the manifests, reserves the name and starts a `CreateCluster` execution. "
    "`GET /v1/operations/{id}` reports progress at once; `GET /v1/clusters/{name}` answers 404 until the "
    "execution has registered the cluster.",
    responses=_responses(202, schemas.Operation, "The CreateCluster operation started", *BODY_ERRORS, 409),
    tags=["clusters"],
)
def create_cluster(
    body: Annotated[schemas.CreateClusterBody, _example("a cluster with one node pool", schemas.EXAMPLE_CREATE)],
    idempotency_key: IdempotencyKey = None,
) -> JsonResponse:
    current, registry = _deps()
    request = dump(body)
    if len(json.dumps(request).encode()) > MAX_EXECUTION_INPUT_BYTES:
        # JSON escapes non-ASCII text: a body under MAX_BODY_BYTES can still grow past the limit.
        raise PayloadTooLarge(f"the manifests exceed the {MAX_EXECUTION_INPUT_BYTES} bytes of an execution input")

    # Checks of the current state run inside `start`: a retry with the same Idempotency-Key
    # replays the first answer even after the state moved on.
    def start() -> dict:
        _require_network(registry, current)
        return operations.operation_view(operations.start_create(current, registry, request), PREFIX)

    return _json(202, _start_once(f"POST {PREFIX}/clusters", idempotency_key, request, start))


def encode_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def decode_token(token: str) -> str:
    try:
        name = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        name = ""
    if not _could_exist(name):
        raise InvalidSpec([("nextToken", "is not a token this API returned")])
    return name


@app.get(
    f"{PREFIX}/clusters",
    operation_id="listClusters",
    summary="List clusters",
    responses=_responses(200, schemas.ClusterList, "One page of clusters, by name", 400),
    tags=["clusters"],
)
def list_clusters(
    limit: Annotated[int, Query(ge=1, le=100, description="Page size")] = 50,
    next_token: Annotated[
        str | None, Query(alias="nextToken", max_length=200, description="From the previous page")
    ] = None,
) -> JsonResponse:
    _, registry = _deps()
    start = decode_token(next_token) if next_token else None
    records, last = registry.clusters.list(limit=limit, start=start)
    items = [views.cluster_view(registry, record, detail=False) for record in records]
    return _json(200, {"items": items, "nextToken": encode_token(last) if last else None})


@app.get(
    f"{PREFIX}/clusters/<name>",
    operation_id="getCluster",
    summary="Describe a cluster",
    responses=_responses(200, schemas.Cluster, "The cluster, its replicas and node pools", 400, 404),
    tags=["clusters"],
)
def get_cluster(name: ClusterName) -> JsonResponse:
    _, registry = _deps()
    return _json(200, views.cluster_view(registry, _require_cluster(registry, name)))


@app.delete(
    f"{PREFIX}/clusters/<name>",
    operation_id="deleteCluster",
    summary="Delete a cluster",
    description="Starts a `DeleteCluster` execution: node pools, control plane, load balancer, security "
    "groups, what Kubernetes created, secrets, then the record.",
    responses=_responses(202, schemas.Operation, "The DeleteCluster operation started", 400, 404, 409),
    tags=["clusters"],
)
def delete_cluster(
    name: ClusterName,
    keep_etcd_volumes: Annotated[
        bool, Query(alias="keepEtcdVolumes", description="Keep the etcd EBS volumes (for a restore)")
    ] = False,
    idempotency_key: IdempotencyKey = None,
) -> JsonResponse:
    current, registry = _deps()

    def start() -> dict:
        _require_cluster(registry, name)
        operation = operations.start_delete(current, registry, name, keep_etcd_volumes)
        return operations.operation_view(operation, PREFIX)

    body = {"name": name, "keepEtcdVolumes": keep_etcd_volumes}
    return _json(202, _start_once(f"DELETE {PREFIX}/clusters/{{name}}", idempotency_key, body, start))


@app.post(
    f"{PREFIX}/clusters/<name>:repair",
    operation_id="repairCluster",
    summary="Repair a cluster after hand changes",
    description="Starts a `RepairCluster` execution: it finds what was deleted or changed by hand (recorded as "
    "`status.drift`), makes it again, replaces instances whose launch template changed, and reports what it "
    "changed in the operation's `result`. 409 while another operation works on the cluster.",
    responses=_responses(202, schemas.Operation, "The RepairCluster operation started", 400, 404, 409),
    tags=["clusters"],
)
def repair_cluster(
    name: ClusterName,
    dry_run: Annotated[
        bool, Query(alias="dryRun", description="Only find and record the drift (`status.drift`); change nothing")
    ] = False,
    idempotency_key: IdempotencyKey = None,
) -> JsonResponse:
    current, registry = _deps()

    def start() -> dict:
        _require_cluster(registry, name)
        return operations.operation_view(operations.start_repair(current, registry, name, dry_run), PREFIX)

    body = {"name": name, "dryRun": dry_run}
    return _json(202, _start_once(f"POST {PREFIX}/clusters/{{name}}:repair", idempotency_key, body, start))


@app.post(
    f"{PREFIX}/orphans:sweep",
    operation_id="sweepOrphans",
    summary="Find (and delete) resources of clusters whose record is gone",
    description="Starts a `SweepOrphans` execution. A dry run (the default) lists them in the operation's "
    "`result`; otherwise those older than the grace period are deleted with DeleteCluster's steps.",
    responses=_responses(202, schemas.Operation, "The SweepOrphans operation started", *BODY_ERRORS),
    tags=["operations"],
)
def sweep_orphans(
    body: Annotated[schemas.SweepOrphansBody, _example("a dry run", {"dryRun": True})],
    idempotency_key: IdempotencyKey = None,
) -> JsonResponse:
    current, registry = _deps()
    request = dump(body)

    def start() -> dict:
        return operations.operation_view(operations.start_sweep(current, registry, request), PREFIX)

    return _json(202, _start_once(f"POST {PREFIX}/orphans:sweep", idempotency_key, request, start))


@app.post(
    f"{PREFIX}/clusters/<name>/upgrade",
    operation_id="upgradeCluster",
    summary="Upgrade a cluster's control plane (not available yet)",
    responses=_responses(202, schemas.Operation, "The UpgradeCluster operation started", *BODY_ERRORS, 404, 501),
    tags=["clusters"],
)
def upgrade_cluster(
    name: ClusterName,
    body: Annotated[schemas.UpgradeClusterBody, _example("one minor version up", {"version": "1.33.0"})],
) -> JsonResponse:
    _, registry = _deps()
    record = _require_cluster(registry, name)
    current_version = record.version
    problem = versions.upgrade_problem(current_version, body.version)
    if problem is None and body.version == current_version:
        problem = f"the control plane already runs {current_version}"
    if problem:
        raise InvalidSpec([("version", problem)])
    raise NotImplementedYet("the UpgradeCluster workflow is not available yet; nothing was started")


# ---------------------------------------------------------------- node pools


@app.get(
    f"{PREFIX}/clusters/<name>/nodepools",
    operation_id="listNodePools",
    summary="List a cluster's node pools",
    responses=_responses(200, schemas.NodePoolList, "The cluster's node pools", 400, 404),
    tags=["node pools"],
)
def list_node_pools(name: ClusterName) -> JsonResponse:
    _, registry = _deps()
    _require_cluster(registry, name)
    return _json(200, {"items": [views.node_pool_view(p) for p in registry.node_pools.list(name)]})


@app.post(
    f"{PREFIX}/clusters/<name>/nodepools",
    operation_id="createNodePool",
    summary="Add a node pool (not available yet)",
    responses=_responses(202, schemas.Operation, "The CreateNodePool operation started", *BODY_ERRORS, 404, 409, 501),
    tags=["node pools"],
)
def create_node_pool(
    name: ClusterName, body: Annotated[AWSNodePool, _example("a node pool", schemas.EXAMPLE_NODE_POOL)]
) -> JsonResponse:
    current, registry = _deps()
    record = _require_cluster(registry, name)
    problems = node_pool_problems(current.service, record.spec, body, "")
    if problems:
        raise InvalidSpec([(field.lstrip("."), rule) for field, rule in problems])
    if registry.node_pools.get(name, body.name) is not None:
        raise AlreadyExists(f"node pool {body.name!r} of cluster {name!r} already exists")
    raise NotImplementedYet("the CreateNodePool workflow is not available yet; nothing was started")


@app.get(
    f"{PREFIX}/clusters/<name>/nodepools/<pool>",
    operation_id="getNodePool",
    summary="Describe a node pool",
    responses=_responses(200, schemas.NodePool, "The node pool", 400, 404),
    tags=["node pools"],
)
def get_node_pool(name: ClusterName, pool: PoolName) -> JsonResponse:
    _, registry = _deps()
    _require_cluster(registry, name)
    return _json(200, views.node_pool_view(_require_node_pool(registry, name, pool)))


@app.patch(
    f"{PREFIX}/clusters/<name>/nodepools/<pool>",
    operation_id="updateNodePool",
    summary="Change a node pool: size, version, labels, taints (not available yet)",
    responses=_responses(202, schemas.Operation, "The UpdateNodePool operation started", *BODY_ERRORS, 404, 501),
    tags=["node pools"],
)
def update_node_pool(
    name: ClusterName,
    pool: PoolName,
    body: Annotated[schemas.UpdateNodePoolBody, _example("scale out", {"maxNodeCount": 5})],
) -> JsonResponse:
    current, registry = _deps()
    record = _require_cluster(registry, name)
    existing = _require_node_pool(registry, name, pool)
    changes = dump(body)
    if not changes:
        raise InvalidSpec([("body", "set at least one field to change")])
    spec = parse(NodePoolSpec, {**dump(existing.spec.spec), **changes})
    control_plane = record.version
    skew = versions.node_pool_skew_problem(control_plane, spec.version)
    if skew:
        raise InvalidSpec([("version", skew)])
    raise NotImplementedYet("the UpdateNodePool workflow is not available yet; nothing was started")


@app.delete(
    f"{PREFIX}/clusters/<name>/nodepools/<pool>",
    operation_id="deleteNodePool",
    summary="Delete a node pool (not available yet)",
    responses=_responses(202, schemas.Operation, "The DeleteNodePool operation started", 400, 404, 501),
    tags=["node pools"],
)
def delete_node_pool(name: ClusterName, pool: PoolName) -> JsonResponse:
    _, registry = _deps()
    _require_cluster(registry, name)
    _require_node_pool(registry, name, pool)
    raise NotImplementedYet("the DeleteNodePool workflow is not available yet; nothing was started")


# ---------------------------------------------------------------- events and operations


@app.get(
    f"{PREFIX}/clusters/<name>/events",
    operation_id="listEvents",
    summary="A cluster's events (kept 30 days, also after the cluster is deleted)",
    responses=_responses(200, schemas.EventList, "Events, oldest first", 400, 404),
    tags=["clusters"],
)
def list_events(name: ClusterName) -> JsonResponse:
    _, registry = _deps()
    events = registry.events.list(name) if _could_exist(name) else []
    if not events:
        _require_cluster(registry, name)
    return _json(200, {"items": [views.event_view(e) for e in events]})


@app.get(
    f"{PREFIX}/operations/<id>",
    operation_id="getOperation",
    summary="An operation's status",
    responses=_responses(200, schemas.Operation, "The operation", 400, 404),
    tags=["operations"],
)
def get_operation(operation_id: OperationIdParam) -> JsonResponse:
    _, registry = _deps()
    valid = _could_exist(operation_id, OPERATION_ID_PATTERN, 80)
    operation = registry.operations.get(operation_id) if valid else None
    if operation is None:
        raise NotFound(f"operation {operation_id!r} does not exist")
    return _json(200, operations.operation_view(operation, PREFIX))


@app.get(f"{PREFIX}/openapi.json", include_in_schema=False)
def openapi() -> JsonResponse:
    return _json(200, openapi_document())


# ---------------------------------------------------------------- the document


@cache
def openapi_document() -> dict[str, Any]:
    """The generated OpenAPI document, minus Powertools' 422 (this API answers 400 instead)."""
    schema = app.get_openapi_schema(
        title=API_TITLE,
        version=DOCUMENT_VERSION,
        description="Kubernetes clusters on AWS, run by a serverless management service on Step Functions. "
        "Every request is signed with AWS SigV4 (service `execute-api`).",
        # Relative to this document (`<ApiUrl>/v1/openapi.json`): the stage URL, on AWS and locally.
        servers=[Server(url="..", description="The stack's ApiUrl (the API Gateway stage)")],
        security_schemes={
            "sigv4": APIKey(
                name="Authorization",
                in_=APIKeyIn.header,
                description="AWS Signature Version 4 (IAM authorization on API Gateway)",
            )
        },
        security=[{"sigv4": []}],
    )
    document = json.loads(schema.model_dump_json(by_alias=True, exclude_none=True))
    for path in document.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict):
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                # API Gateway answers these itself, before the function runs.
                responses["403"] = {
                    "description": "Refused by API Gateway: no or invalid SigV4 signature, or IAM denies "
                    "`execute-api:Invoke`",
                    "content": {
                        content_types.APPLICATION_JSON: {"schema": {"$ref": "#/components/schemas/GatewayError"}}
                    },
                }
    document.setdefault("components", {}).setdefault("schemas", {})["GatewayError"] = (
        schemas.GatewayError.model_json_schema()
    )
    components = document.get("components", {}).get("schemas", {})
    # Powertools' own error schemas, now unused (the first two refer to the third).
    for unused in ("HTTPValidationError", "ResponseValidationError", "ValidationError"):
        if f"#/components/schemas/{unused}" not in json.dumps({**document, "components": {}}):
            rest = {k: v for k, v in components.items() if k != unused}
            if f"#/components/schemas/{unused}" not in json.dumps(rest):
                components.pop(unused, None)
    return document


# ---------------------------------------------------------------- entry point


def _body_size(event: Mapping[str, Any]) -> int:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return len(body) * 3 // 4
    return len(body.encode())


def _is_json(event: Mapping[str, Any]) -> bool:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    media_type = str(headers.get("content-type") or "").split(";")[0].strip().lower()
    # No Content-Type is read as JSON (curl -d without -H); so is any `+json` type.
    return not media_type or media_type == "application/json" or media_type.endswith("+json")


def proxy_response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": int(status),
        "multiValueHeaders": {"Content-Type": [content_types.APPLICATION_JSON]},
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def handle(event: dict[str, Any], context: Any, **state: Any) -> dict[str, Any]:
    """Resolve one API Gateway REST proxy event. `state` (settings, store) goes to the routes."""
    if _body_size(event) > MAX_BODY_BYTES:
        # Before any parsing: a huge body costs nothing but this check.
        return proxy_response(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            error_body("PayloadTooLarge", f"the request body is larger than {MAX_BODY_BYTES // 1024} KiB"),
        )
    if event.get("body") and event.get("isBase64Encoded"):
        # JSON is text: decode here, so a body that is not UTF-8 is a 400, not a parser crash.
        try:
            event = {**event, "body": base64.b64decode(event["body"]).decode(), "isBase64Encoded": False}
        except (binascii.Error, UnicodeDecodeError):
            return proxy_response(
                HTTPStatus.BAD_REQUEST,
                error_body("InvalidRequest", "the request body is not UTF-8 text", [("body", "must be UTF-8 JSON")]),
            )
    if event.get("body") and event.get("httpMethod") in ("POST", "PATCH") and not _is_json(event):
        # Every body this API takes is JSON; Powertools would try form and multipart parsers.
        return proxy_response(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
            error_body("UnsupportedMediaType", "send the body as application/json"),
        )
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        # An in-progress idempotency record then expires with this invocation.
        IDEMPOTENCY_CONFIG.register_lambda_context(context)
    app.append_context(**state)
    return app.resolve(event, context)
