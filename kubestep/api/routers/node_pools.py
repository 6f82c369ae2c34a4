"""`/v1/clusters/{name}/nodepools`: add, list, describe, change (scale in place or roll), delete."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from kubestep import operations, views
from kubestep.api import schemas
from kubestep.api.http import (
    BODY_ERRORS,
    PREFIX,
    ClusterName,
    DryRun,
    IdempotencyKey,
    JsonResponse,
    PoolName,
    deps,
    example,
    json_response,
    require_cluster,
    require_node_pool,
    responses,
)
from kubestep.api.starts import start_for_request
from kubestep.errors import InvalidRequest
from kubestep.models import AWSNodePool, NodePoolChanges, dump

router = APIGatewayRouter()


@router.get(
    f"{PREFIX}/clusters/<name>/nodepools",
    operation_id="listNodePools",
    summary="List a cluster's node pools",
    responses=responses(200, schemas.NodePoolList, "The cluster's node pools", 400, 404),
    tags=["node pools"],
)
def list_node_pools(name: ClusterName) -> JsonResponse:
    _, store = deps(router)
    require_cluster(store, name)
    return json_response(200, {"items": [views.node_pool_view(p) for p in store.node_pools.list(name)]})


@router.post(
    f"{PREFIX}/clusters/<name>/nodepools",
    operation_id="createNodePool",
    summary="Add a node pool",
    description="Validates the pool against the running cluster (version skew, address ranges, capacity, tags) "
    "and starts a `CreateNodePool` execution. `spec.clusterName` must be the path's cluster.",
    responses={
        **responses(202, schemas.Operation, "The CreateNodePool operation started", *BODY_ERRORS, 404, 409),
        **responses(200, schemas.NodePoolDryRun, "dryRun=true: the pool as it would be created"),
    },
    tags=["node pools"],
)
def create_node_pool(
    name: ClusterName,
    body: Annotated[AWSNodePool, example("a node pool", schemas.EXAMPLE_NODE_POOL)],
    idempotency_key: IdempotencyKey = None,
    dry_run: DryRun = False,
) -> JsonResponse:
    current, store = deps(router)
    require_cluster(store, name)
    pool = dump(body)
    if pool["spec"].get("clusterName") not in (None, name):
        raise InvalidRequest([("spec.clusterName", f"must be {name!r}, the cluster in the path")])
    pool["spec"]["clusterName"] = name
    request = {"clusterName": name, "nodePool": pool}
    if dry_run:
        return json_response(200, operations.plan_node_pool_create(current, store, request))

    route = f"POST {PREFIX}/clusters/{{name}}/nodepools"
    return start_for_request(
        router, route=route, key=idempotency_key, request=request, cluster=name, start=operations.start_create_node_pool
    )


@router.get(
    f"{PREFIX}/clusters/<name>/nodepools/<pool>",
    operation_id="getNodePool",
    summary="Describe a node pool",
    responses=responses(200, schemas.NodePool, "The node pool", 400, 404),
    tags=["node pools"],
)
def get_node_pool(name: ClusterName, pool: PoolName) -> JsonResponse:
    _, store = deps(router)
    require_cluster(store, name)
    return json_response(200, views.node_pool_view(require_node_pool(store, name, pool)))


@router.patch(
    f"{PREFIX}/clusters/<name>/nodepools/<pool>",
    operation_id="updateNodePool",
    summary="Change a node pool: scale in place, or roll it (version, instance type, labels, taints, …)",
    description="Bounds (`minNodeCount`, `maxNodeCount`), `updateSettings` and `tags` change the Auto Scaling "
    "group in place. Anything an instance is launched with rolls the pool within `updateSettings.maxSurge` / "
    "`maxUnavailable`: new instances, healthy, then the old ones drained (termination lifecycle hook) and "
    "terminated, batch by batch. The version must stay within two minors of the control plane and never above it.",
    responses={
        **responses(202, schemas.Operation, "The UpdateNodePool operation started", *BODY_ERRORS, 404, 409),
        **responses(200, schemas.NodePoolDryRun, "dryRun=true: what would change and whether it rolls"),
    },
    tags=["node pools"],
)
def update_node_pool(
    name: ClusterName,
    pool: PoolName,
    body: Annotated[NodePoolChanges, example("scale out", {"minNodeCount": 2, "maxNodeCount": 5})],
    idempotency_key: IdempotencyKey = None,
    dry_run: DryRun = False,
) -> JsonResponse:
    current, store = deps(router)
    request = {
        "clusterName": name,
        "nodePool": pool,
        "changes": body.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    require_cluster(store, name)
    require_node_pool(store, name, pool)
    if dry_run:
        return json_response(200, operations.plan_node_pool_update(current, store, request))

    route = f"PATCH {PREFIX}/clusters/{{name}}/nodepools/{{pool}}"
    return start_for_request(
        router, route=route, key=idempotency_key, request=request, start=operations.start_update_node_pool
    )


@router.delete(
    f"{PREFIX}/clusters/<name>/nodepools/<pool>",
    operation_id="deleteNodePool",
    summary="Delete a node pool",
    description="Starts a `DeleteNodePool` execution: the pool's nodes are drained through the termination "
    "lifecycle hook, then its Auto Scaling group and launch template are deleted.",
    responses={
        **responses(202, schemas.Operation, "The DeleteNodePool operation started", 400, 404, 409),
        **responses(200, schemas.NodePoolDryRun, "dryRun=true: what would be deleted"),
    },
    tags=["node pools"],
)
def delete_node_pool(
    name: ClusterName, pool: PoolName, idempotency_key: IdempotencyKey = None, dry_run: DryRun = False
) -> JsonResponse:
    current, store = deps(router)
    require_cluster(store, name)
    require_node_pool(store, name, pool)
    request = {"clusterName": name, "nodePool": pool}
    if dry_run:
        return json_response(200, operations.plan_node_pool_delete(current, store, request))

    route = f"DELETE {PREFIX}/clusters/{{name}}/nodepools/{{pool}}"
    return start_for_request(
        router, route=route, key=idempotency_key, request=request, start=operations.start_delete_node_pool
    )
