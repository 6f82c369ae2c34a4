"""The steps of `CreateCluster` and `DeleteCluster`. Each function is one Task state: it
takes the state's small JSON input and returns a small JSON result; anything larger lives in
DynamoDB. Every step is idempotent: re-running it converges and creates nothing twice."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from kubestep import naming
from kubestep.aws import client, is_error, pending_until_visible
from kubestep.errors import AlreadyExists, InvalidSpec, NotFound
from kubestep.models import DeleteClusterRequest, dump
from kubestep.registry import Registry, cluster_pk
from kubestep.resources import (
    control_plane,
    instances,
    kubernetes_leftovers,
    load_balancer,
    node_pools,
    secrets,
    security_groups,
    subnet_tags,
)
from kubestep.resources.context import ClusterContext
from kubestep.settings import Settings
from kubestep.validation import parse, parse_create_request

Task = Callable[[dict, Settings, Registry], dict]
TASKS: dict[str, Task] = {}


# Steps that create resources and use them at once wait out EC2's eventual consistency.
CREATE_SIDE = ("Ensure", "Check", "Tag", "Plan")


def task(fn: Task) -> Task:
    name = "".join(part.title() for part in fn.__name__.split("_"))
    TASKS[name] = pending_until_visible(fn) if name.startswith(CREATE_SIDE) else fn
    return fn


def _ctx(event: dict, settings: Settings, registry: Registry) -> ClusterContext:
    return ClusterContext(settings, registry, event["clusterName"], event["operationId"])


def execution_running(settings: Settings) -> Callable[[str], bool | None]:
    sfn = client("stepfunctions", settings.region)

    def running(arn: str) -> bool | None:
        try:
            return sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        except Exception as exc:
            if is_error(exc, "ExecutionDoesNotExist"):
                return None
            raise

    return running


# ---------------------------------------------------------------- create


@task
def validate_create_request(event: dict, settings: Settings, registry: Registry) -> dict:
    """First state: nothing is created on bad input."""
    request = parse_create_request(settings.service, event["request"])
    registry.ready_network(settings.service_name)
    return {
        "clusterName": request.cluster.name,
        "operationId": request.operation_id or event["executionName"],
        "rollbackOnFailure": request.rollback_on_failure,
    }


@task
def acquire_create_lock(event: dict, settings: Settings, registry: Registry) -> dict:
    request = parse_create_request(settings.service, event["request"])
    name, operation_id = request.cluster.name, event["operationId"]
    lock = registry.acquire_lock(cluster_pk(name), operation_id, event["executionArn"], execution_running(settings))
    try:
        record = _register(registry, request, operation_id)
    except Exception:
        registry.release_lock(cluster_pk(name), operation_id)
        raise
    registry.put_operation(operation_id, "CreateCluster", name, event["executionArn"], uid=record["uid"])
    if lock.get("tookOverFrom"):
        registry.record_event(
            name,
            "Normal",
            "LockTakenOver",
            f"operation {operation_id} took over the lock of {lock['tookOverFrom']}, "
            "whose execution is no longer running",
            f"AWSCluster/{name}",
            operation_id,
        )
    registry.record_event(
        name,
        "Normal",
        "Provisioning",
        f"operation {operation_id} is creating cluster {name} (uid {record['uid']})",
        f"AWSCluster/{name}",
        operation_id,
    )
    return {"uid": record["uid"], "tookOverFrom": lock.get("tookOverFrom")}


def _register(registry: Registry, request: Any, operation_id: str) -> dict:
    name = request.cluster.name
    spec = dump(request.cluster)
    pools = [dump(p) for p in request.node_pools]
    existing = registry.get_cluster(name)
    if existing is None:
        try:
            return registry.create_cluster(name, request.uid or naming.new_uid(), spec, operation_id, pools)
        except AlreadyExists:
            existing = registry.require_cluster(name)
    if existing["spec"] != spec:
        raise AlreadyExists(
            f"cluster {name!r} already exists (phase {existing['phase']}) with a different spec; "
            "delete it first, or re-run with the same manifest to resume"
        )
    # Same spec: resume or re-run. New node pools are added; existing ones are kept.
    for pool in pools:
        registry.add_node_pool(name, pool, operation_id)
    phase = "RECONCILING" if existing["phase"] == "RUNNING" else "PROVISIONING"
    return registry.update_cluster(name, phase=phase, currentOperation=operation_id, lastError=None)


@task
def ensure_security_groups(event: dict, settings: Settings, registry: Registry) -> dict:
    return security_groups.ensure(_ctx(event, settings, registry))


@task
def tag_subnets(event: dict, settings: Settings, registry: Registry) -> dict:
    return subnet_tags.tag(_ctx(event, settings, registry))


@task
def ensure_load_balancer(event: dict, settings: Settings, registry: Registry) -> dict:
    return load_balancer.ensure(_ctx(event, settings, registry))


@task
def check_load_balancer_active(event: dict, settings: Settings, registry: Registry) -> dict:
    return load_balancer.check_active(_ctx(event, settings, registry))


@task
def ensure_bootstrap_secret(event: dict, settings: Settings, registry: Registry) -> dict:
    return secrets.ensure(_ctx(event, settings, registry))


@task
def plan_replicas(event: dict, settings: Settings, registry: Registry) -> dict:
    return control_plane.plan(_ctx(event, settings, registry))


@task
def ensure_etcd_volume(event: dict, settings: Settings, registry: Registry) -> dict:
    return control_plane.ensure_etcd_volume(_ctx(event, settings, registry), int(event["replica"]))


@task
def ensure_replica_launch_template(event: dict, settings: Settings, registry: Registry) -> dict:
    return control_plane.ensure_launch_template(_ctx(event, settings, registry), int(event["replica"]))


@task
def ensure_replica_group(event: dict, settings: Settings, registry: Registry) -> dict:
    return control_plane.ensure_group(_ctx(event, settings, registry), int(event["replica"]))


@task
def check_replica_health(event: dict, settings: Settings, registry: Registry) -> dict:
    return control_plane.check_health(_ctx(event, settings, registry), int(event["replica"]))


@task
def list_node_pools(event: dict, settings: Settings, registry: Registry) -> dict:
    return {"nodePools": sorted(p["name"] for p in registry.list_node_pools(event["clusterName"]))}


@task
def ensure_node_pool_launch_template(event: dict, settings: Settings, registry: Registry) -> dict:
    return node_pools.ensure_launch_template(_ctx(event, settings, registry), event["nodePool"])


@task
def ensure_node_pool_group(event: dict, settings: Settings, registry: Registry) -> dict:
    return node_pools.ensure_group(_ctx(event, settings, registry), event["nodePool"])


@task
def check_node_pool_health(event: dict, settings: Settings, registry: Registry) -> dict:
    return node_pools.check_health(_ctx(event, settings, registry), event["nodePool"])


@task
def mark_cluster_running(event: dict, settings: Settings, registry: Registry) -> dict:
    ctx = _ctx(event, settings, registry)
    record = registry.update_cluster(ctx.name, phase="RUNNING", currentOperation=None, lastError=None)
    registry.finish_operation(ctx.operation_id, "SUCCEEDED")
    ctx.event(
        "Normal", "ClusterRunning", f"cluster {ctx.name} is RUNNING; API endpoint https://{record['endpoint']}:443"
    )
    return {"phase": "RUNNING", "endpoint": record["endpoint"]}


@task
def release_cluster_lock(event: dict, settings: Settings, registry: Registry) -> dict:
    return {"released": registry.release_lock(cluster_pk(event["clusterName"]), event["operationId"])}


def error_message(error: dict | None) -> tuple[str, str]:
    """(error name, message) from a Catch's `{Error, Cause}`; a Lambda's Cause is JSON."""
    error = error or {}
    name = error.get("Error", "Unknown")
    cause = error.get("Cause") or ""
    try:
        parsed = json.loads(cause)
        cause = parsed.get("errorMessage", cause) if isinstance(parsed, dict) else cause
    except (ValueError, TypeError):
        pass
    return name, str(cause)


@task
def record_failure(event: dict, settings: Settings, registry: Registry) -> dict:
    name, operation_id = event["clusterName"], event["operationId"]
    error, message = error_message(event.get("error"))
    registry.record_event(name, "Warning", error, message, f"AWSCluster/{name}", operation_id)
    with contextlib.suppress(NotFound):
        registry.update_cluster(
            name, phase="ERROR", lastError={"error": error, "message": message, "operationId": operation_id}
        )
    registry.finish_operation(operation_id, "FAILED", error, message)
    return {"error": error}


@task
def record_rollback(event: dict, settings: Settings, registry: Registry) -> dict:
    ctx = _ctx(event, settings, registry)
    ctx.event("Normal", "RolledBack", f"operation {ctx.operation_id} deleted the resources it had created")
    return {"rolledBack": True}


# ---------------------------------------------------------------- delete (and compensation)


@task
def validate_delete_request(event: dict, settings: Settings, registry: Registry) -> dict:
    request = parse(DeleteClusterRequest, event["request"])
    registry.require_cluster(request.cluster_name)
    return {
        "clusterName": request.cluster_name,
        "operationId": request.operation_id or event["executionName"],
        "keepEtcdVolumes": request.keep_etcd_volumes,
    }


@task
def acquire_delete_lock(event: dict, settings: Settings, registry: Registry) -> dict:
    name, operation_id = event["clusterName"], event["operationId"]
    registry.acquire_lock(cluster_pk(name), operation_id, event["executionArn"], execution_running(settings))
    try:
        record = registry.update_cluster(name, phase="STOPPING", currentOperation=operation_id)
    except NotFound:
        registry.release_lock(cluster_pk(name), operation_id)
        raise
    registry.put_operation(operation_id, "DeleteCluster", name, event["executionArn"], uid=record["uid"])
    registry.record_event(
        name,
        "Normal",
        "Deleting",
        f"operation {operation_id} is deleting cluster {name}",
        f"AWSCluster/{name}",
        operation_id,
    )
    return {"uid": record["uid"]}


def _scope(event: dict) -> str:
    scope = event.get("scope", "cluster")
    if scope not in ("cluster", "operation"):
        raise InvalidSpec([("scope", "must be cluster or operation")])
    return scope


@task
def delete_node_pool_groups(event: dict, settings: Settings, registry: Registry) -> dict:
    return instances.delete_groups(_ctx(event, settings, registry), _scope(event), naming.ROLE_NODE)


@task
def delete_control_plane_groups(event: dict, settings: Settings, registry: Registry) -> dict:
    return instances.delete_groups(_ctx(event, settings, registry), _scope(event), naming.ROLE_CONTROL_PLANE)


@task
def check_instances_gone(event: dict, settings: Settings, registry: Registry) -> dict:
    return control_plane.check_instances_gone(_ctx(event, settings, registry), _scope(event))


@task
def delete_etcd_volumes(event: dict, settings: Settings, registry: Registry) -> dict:
    keep = bool(event.get("keepEtcdVolumes", False))
    return control_plane.delete_etcd_volumes(_ctx(event, settings, registry), _scope(event), keep)


@task
def delete_load_balancer(event: dict, settings: Settings, registry: Registry) -> dict:
    return load_balancer.delete_load_balancer(_ctx(event, settings, registry), _scope(event))


@task
def delete_target_group(event: dict, settings: Settings, registry: Registry) -> dict:
    return load_balancer.delete_target_group(_ctx(event, settings, registry), _scope(event))


@task
def delete_launch_templates(event: dict, settings: Settings, registry: Registry) -> dict:
    return instances.delete_launch_templates(_ctx(event, settings, registry), _scope(event))


@task
def delete_security_groups(event: dict, settings: Settings, registry: Registry) -> dict:
    return security_groups.delete(_ctx(event, settings, registry), _scope(event))


@task
def delete_kubernetes_resources(event: dict, settings: Settings, registry: Registry) -> dict:
    return kubernetes_leftovers.delete(_ctx(event, settings, registry))


@task
def untag_subnets(event: dict, settings: Settings, registry: Registry) -> dict:
    return subnet_tags.untag(_ctx(event, settings, registry))


@task
def delete_bootstrap_secret(event: dict, settings: Settings, registry: Registry) -> dict:
    return secrets.delete(_ctx(event, settings, registry), _scope(event))


@task
def delete_cluster_record(event: dict, settings: Settings, registry: Registry) -> dict:
    """Last step: the record, node pools, etcd items and the lock go; events stay."""
    name, operation_id = event["clusterName"], event["operationId"]
    record = registry.require_cluster(name)
    registry.delete_bootstrap_reports(record["uid"])
    registry.delete_cluster_records(name)
    registry.finish_operation(operation_id, "SUCCEEDED")
    registry.record_event(
        name,
        "Normal",
        "Deleted",
        f"cluster {name} (uid {record['uid']}) and its AWS resources are deleted",
        f"AWSCluster/{name}",
        operation_id,
    )
    return {"deleted": name}
