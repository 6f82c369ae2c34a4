"""`POST /v1/clusters/{name}:repair` (RepairCluster) and `POST /v1/orphans:sweep`
(SweepOrphans): put a cluster back after hand changes; find (and delete) what clusters whose
record is gone left behind."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from kubestep import operations
from kubestep.api import schemas
from kubestep.api.http import (
    BODY_ERRORS,
    PREFIX,
    ClusterName,
    IdempotencyKey,
    JsonResponse,
    deps,
    example,
    responses,
)
from kubestep.api.starts import start_for_request, start_operation
from kubestep.models import dump

router = APIGatewayRouter()


@router.post(
    f"{PREFIX}/clusters/<name>:repair",
    operation_id="repairCluster",
    summary="Repair a cluster after hand changes",
    description="Starts a `RepairCluster` execution: it finds what was deleted or changed by hand (recorded as "
    "`status.drift`), makes it again, replaces instances whose launch template changed, and reports what it "
    "changed in the operation's `result`. With `detectOnly=true` it only records the drift. 409 while another "
    "operation works on the cluster.",
    responses=responses(202, schemas.Operation, "The RepairCluster operation started", 400, 404, 409),
    tags=["clusters"],
)
def repair_cluster(
    name: ClusterName,
    detect_only: Annotated[
        bool,
        Query(alias="detectOnly", description="Only find and record the drift (`status.drift`); change nothing"),
    ] = False,
    idempotency_key: IdempotencyKey = None,
) -> JsonResponse:
    current, store = deps(router)

    return start_operation(
        router,
        route=f"POST {PREFIX}/clusters/{{name}}:repair",
        key=idempotency_key,
        body={"name": name, "detectOnly": detect_only},
        cluster=name,
        start=lambda: operations.start_repair(current, store, name, detect_only),
    )


@router.post(
    f"{PREFIX}/orphans:sweep",
    operation_id="sweepOrphans",
    summary="Find (and delete) resources of clusters whose record is gone",
    description="Starts a `SweepOrphans` execution. A dry run (the default) lists them in the operation's "
    "`result` by cluster uid (`resources` a sweep may delete, `retained` ones it never deletes, `ageSeconds`, "
    "`old`); otherwise those older than the grace period are deleted with DeleteCluster's steps and the result "
    "says what was deleted (`deletedResources`) and what was left and why (`left`). Etcd volumes kept by a "
    "delete with `keepEtcdVolumes` are never deleted; what AWS gives no creation time is aged from when a "
    "sweep first saw it.",
    responses=responses(202, schemas.Operation, "The SweepOrphans operation started", *BODY_ERRORS, 409),
    tags=["operations"],
)
def sweep_orphans(
    body: Annotated[schemas.SweepOrphansBody, example("a dry run", {"dryRun": True})],
    idempotency_key: IdempotencyKey = None,
) -> JsonResponse:
    route = f"POST {PREFIX}/orphans:sweep"
    return start_for_request(router, route=route, key=idempotency_key, request=dump(body), start=operations.start_sweep)
