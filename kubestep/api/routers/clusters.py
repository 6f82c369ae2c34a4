"""`/v1/clusters`: create (or dry-run), list, describe, change, upgrade (now or at a time), delete, events."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from kubestep import operations, upgrades, views
from kubestep.api import schemas
from kubestep.api.errors import PayloadTooLarge
from kubestep.api.http import (
    BODY_ERRORS,
    MAX_EXECUTION_INPUT_BYTES,
    PREFIX,
    ClusterName,
    DryRun,
    IdempotencyKey,
    JsonResponse,
    caller,
    could_exist,
    deps,
    example,
    json_response,
    require_cluster,
    responses,
)
from kubestep.api.starts import once, start_for_request, start_operation
from kubestep.errors import InvalidRequest
from kubestep.models import dump
from kubestep.store import Operation

router = APIGatewayRouter()


@router.post(
    f"{PREFIX}/clusters",
    operation_id="createCluster",
    summary="Create a cluster (and its node pools)",
    description="Validates the manifests, reserves the name and starts a `CreateCluster` execution. "
    "`GET /v1/operations/{id}` reports progress at once; `GET /v1/clusters/{name}` answers 404 until the "
    "execution has registered the cluster. A cluster that names no `authentication.awsIAM.adminIdentityARNs` "
    "gets the caller as its administrator (an assumed-role session as its role). With `dryRun=true`: every "
    "check (manifests, network ready, name free, no operation holding the name), nothing started, 200 with what "
    "would be created. The body is the same JSON as the `CreateCluster` execution input; an `Idempotency-Key` "
    "makes a retry answer what the first request answered. 409 `NetworkNotReady` until `ProvisionNetwork` has "
    "succeeded.",
    responses={
        **responses(202, schemas.Operation, "The CreateCluster operation started", *BODY_ERRORS, 409),
        **responses(200, schemas.CreateClusterDryRun, "dryRun=true: what would be created"),
    },
    tags=["clusters"],
)
def create_cluster(
    body: Annotated[schemas.CreateClusterBody, example("a cluster with one node pool", schemas.EXAMPLE_CREATE)],
    idempotency_key: IdempotencyKey = None,
    dry_run: DryRun = False,
) -> JsonResponse:
    current, store = deps(router)
    request = dump(body)
    if len(json.dumps(request).encode()) > MAX_EXECUTION_INPUT_BYTES:
        # JSON escapes non-ASCII text: a body under MAX_BODY_BYTES can still grow past the limit.
        raise PayloadTooLarge(f"the manifests exceed the {MAX_EXECUTION_INPUT_BYTES} bytes of an execution input")
    if dry_run:
        return json_response(200, operations.plan_create(current, store, request, caller(router)))

    def start() -> Operation:
        store.network.ready(current.service_name)
        return operations.start_create(current, store, request, caller(router))

    return start_operation(router, route=f"POST {PREFIX}/clusters", key=idempotency_key, body=request, start=start)


def encode_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def decode_token(token: str) -> str:
    try:
        name = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        name = ""
    if not could_exist(name):
        raise InvalidRequest([("nextToken", "is not a token this API returned")])
    return name


@router.get(
    f"{PREFIX}/clusters",
    operation_id="listClusters",
    summary="List clusters",
    description="One page of clusters, by name; each with its replicas and node pools (the detail view, "
    "`GET /v1/clusters/{name}`, adds the etcd configuration). Pass `nextToken` for the next page.",
    responses=responses(200, schemas.ClusterList, "One page of clusters, by name", 400),
    tags=["clusters"],
)
def list_clusters(
    limit: Annotated[int, Query(ge=1, le=100, description="Page size")] = 50,
    next_token: Annotated[
        str | None, Query(alias="nextToken", max_length=200, description="From the previous page")
    ] = None,
) -> JsonResponse:
    _, store = deps(router)
    start = decode_token(next_token) if next_token else None
    records, last = store.clusters.list(limit=limit, start=start)
    items = [views.cluster_view(store, record, detail=False) for record in records]
    return json_response(200, {"items": items, "nextToken": encode_token(last) if last else None})


@router.get(
    f"{PREFIX}/clusters/<name>",
    operation_id="getCluster",
    summary="Describe a cluster",
    description="The cluster: its spec, phase, version, endpoint, uid, CA certificate, replicas (zone, Auto "
    "Scaling group, instance, etcd volume, bootstrap report), node pools, etcd configuration, drift and warnings.",
    responses=responses(200, schemas.Cluster, "The cluster, its replicas and node pools", 400, 404),
    tags=["clusters"],
)
def get_cluster(name: ClusterName) -> JsonResponse:
    _, store = deps(router)
    return json_response(200, views.cluster_view(store, require_cluster(store, name)))


@router.delete(
    f"{PREFIX}/clusters/<name>",
    operation_id="deleteCluster",
    summary="Delete a cluster",
    description="Starts a `DeleteCluster` execution: node pools, control plane, load balancer, security "
    "groups, what Kubernetes created, secrets, then the record. Its etcd backups outlive it (listed under its "
    "name, `clusterDeleted: true`, until S3 expires them) unless `deleteBackups=true`: then every version of "
    "this incarnation's backup objects and their records go with it.",
    responses={
        **responses(202, schemas.Operation, "The DeleteCluster operation started", 400, 404, 409),
        **responses(200, schemas.DeleteClusterDryRun, "dryRun=true: what would be deleted"),
    },
    tags=["clusters"],
)
def delete_cluster(
    name: ClusterName,
    keep_etcd_volumes: Annotated[
        bool, Query(alias="keepEtcdVolumes", description="Keep the etcd EBS volumes (for a restore)")
    ] = False,
    delete_backups: Annotated[
        bool,
        Query(
            alias="deleteBackups",
            description="Delete the cluster's etcd backups with it (every object version, and the records)",
        ),
    ] = False,
    idempotency_key: IdempotencyKey = None,
    dry_run: DryRun = False,
) -> JsonResponse:
    current, store = deps(router)
    if dry_run:
        require_cluster(store, name)
        return json_response(200, operations.plan_delete(current, store, name, keep_etcd_volumes, delete_backups))

    return start_operation(
        router,
        route=f"DELETE {PREFIX}/clusters/{{name}}",
        key=idempotency_key,
        body={"name": name, "keepEtcdVolumes": keep_etcd_volumes, "deleteBackups": delete_backups},
        cluster=name,
        start=lambda: operations.start_delete(current, store, name, keep_etcd_volumes, delete_backups),
    )


@router.get(
    f"{PREFIX}/clusters/<name>/events",
    operation_id="listEvents",
    summary="A cluster's events (kept 30 days, also after the cluster is deleted)",
    description="Kubernetes-style events (Normal or Warning, reason, message, the involved object, count, first "
    "and last time, the operation), oldest first.",
    responses=responses(200, schemas.EventList, "Events, oldest first", 400, 404),
    tags=["clusters"],
)
def list_events(name: ClusterName) -> JsonResponse:
    _, store = deps(router)
    events = store.events.list(name) if could_exist(name) else []
    if not events:
        require_cluster(store, name)
    return json_response(200, {"items": [views.event_view(e, name) for e in events]})


@router.patch(
    f"{PREFIX}/clusters/<name>",
    operation_id="updateCluster",
    summary="Change a cluster: control-plane instances (rolled one replica at a time), upgrade and backup policy",
    description="Starts an `UpdateCluster` execution. Control-plane changes that need new instances (version, "
    "instance type, root volume, security groups, instance profile, AMI) roll the replicas one at a time, "
    "unhealthy first, each through the health gate; a failed gate leaves the cluster DEGRADED and the next "
    "update resumes. `upgradePolicy` and `backup` change in place. Fields that cannot change (networking, zones, etcd, "
    "encryption) are not in the body.",
    responses={
        **responses(202, schemas.Operation, "The UpdateCluster operation started", *BODY_ERRORS, 404, 409),
        **responses(200, schemas.UpdateClusterDryRun, "dryRun=true: what would change"),
    },
    tags=["clusters"],
)
def update_cluster(
    name: ClusterName,
    body: Annotated[
        schemas.UpdateClusterBody, example("a bigger instance type", {"controlPlane": {"instanceType": "m5.xlarge"}})
    ],
    idempotency_key: IdempotencyKey = None,
    dry_run: DryRun = False,
) -> JsonResponse:
    return _update(
        name, {"clusterName": name, **dump(body)}, idempotency_key, dry_run, f"PATCH {PREFIX}/clusters/{{name}}"
    )


@router.post(
    f"{PREFIX}/clusters/<name>/upgrade",
    operation_id="upgradeCluster",
    summary="Upgrade a cluster's Kubernetes version (now, or at a time)",
    description="The control plane moves one minor version at a time and never down; node pools may follow "
    '(`nodePools`: "all" or names) and must end within two minors of it, never above. Without `at`: 202 and the '
    "`UpdateCluster` operation. With `at`: 201 and a one-off schedule (EventBridge Scheduler) that starts the "
    "upgrade then; the request is checked now and again when it fires.",
    responses={
        **responses(202, schemas.Operation, "The UpdateCluster operation started", *BODY_ERRORS, 404, 409),
        **responses(201, schemas.Schedule, "`at` given: the schedule created"),
        **responses(200, schemas.UpdateClusterDryRun, "dryRun=true: what would change"),
    },
    tags=["clusters"],
)
def upgrade_cluster(
    name: ClusterName,
    body: Annotated[
        schemas.UpgradeClusterBody, example("one minor version up", {"version": "1.36.5", "nodePools": "all"})
    ],
    idempotency_key: IdempotencyKey = None,
    dry_run: DryRun = False,
) -> JsonResponse:
    request = {"clusterName": name, "controlPlane": {"version": body.version}}
    if body.node_pools is not None:
        request["nodePools"] = body.node_pools
    if body.at is None:
        return _update(name, request, idempotency_key, dry_run, f"POST {PREFIX}/clusters/{{name}}/upgrade")
    current, store = deps(router)
    at = upgrades.parse_time(body.at)
    upgrades.check_schedule_time(at, datetime.now(UTC))
    require_cluster(store, name)
    plan = operations.plan_cluster_update(current, store, request) if dry_run else None
    if plan is not None:
        return json_response(200, {**plan, "at": at.strftime("%Y-%m-%dT%H:%M:%SZ")})
    operations.plan_cluster_update_rules(current, store, request)

    def schedule() -> dict:
        return upgrades.schedule_view(upgrades.create_schedule(current, store, request, at, current.scheduler_role_arn))

    route = f"POST {PREFIX}/clusters/{{name}}/upgrade"
    return json_response(
        201, once(router, route=route, key=idempotency_key, body={**request, "at": body.at}, start=schedule)
    )


def _update(name: str, request: dict, idempotency_key: str | None, dry_run: bool, route: str) -> JsonResponse:
    current, store = deps(router)
    require_cluster(store, name)
    if dry_run:
        return json_response(200, operations.plan_cluster_update(current, store, request))

    return start_for_request(
        router, route=route, key=idempotency_key, request=request, start=operations.start_update_cluster
    )
