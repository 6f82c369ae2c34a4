"""Starting a workflow's execution the way the API does (lock reserved under the operation id,
operation record, execution named by it), for the API (`kubestep.operations`) and for a
workflow that starts another (the upgrade planner starts UpdateCluster)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from kubestep import naming
from kubestep.aws import client
from kubestep.aws.errors import Kind, is_already_exists
from kubestep.errors import AlreadyExists, NotFound
from kubestep.models import dump
from kubestep.settings import Settings
from kubestep.store import Operation, Store
from kubestep.workflows import lifecycle_steps
from kubestep.workflows.identity import execution_running


def execution_arn(settings: Settings, workflow: str, name: str) -> str:
    machine = settings.state_machine_arn(workflow)
    return machine.replace(":stateMachine:", ":execution:", 1) + f":{name}"


def start_execution(
    settings: Settings,
    store: Store,
    *,
    workflow: str,
    cluster: str,
    operation_id: str,
    execution_input: dict,
    uid: str,
    parameters: dict[str, Any] | None = None,
) -> Operation:
    """Reserve the cluster's lock under `operation_id`, write the operation record (the
    execution's identity), start the execution under that name; a name started before is that
    operation (a deterministic id, e.g. the upgrade planner's, firing twice)."""
    arn = execution_arn(settings, workflow, operation_id)
    existing = store.operations.get(operation_id)
    if existing is not None:
        if existing.execution_arn != arn or existing.target != cluster:
            raise AlreadyExists(f"operation id {operation_id} is taken; retry")
        # A deterministic name started before (the upgrade planner firing twice): nothing more.
        return existing
    store.locks.acquire(cluster, operation_id, arn, execution_running(settings))
    operation, created = store.operations.create(
        Operation(
            operation_id=operation_id,
            kind=workflow,
            target=cluster,
            execution_arn=arn,
            uid=uid,
            parameters=parameters or {},
        )
    )
    if not created and operation.execution_arn != arn:
        store.locks.release(cluster, operation_id)
        raise AlreadyExists(f"operation id {operation_id} is taken; retry")
    return run_execution(settings, store, operation, execution_input, locked=True)


def run_execution(
    settings: Settings, store: Store, operation: Operation, execution_input: dict, *, locked: bool
) -> Operation:
    """StartExecution of the operation's workflow, named by its id: a name started before is this
    operation's execution (a retried start). Refused, the operation ends FAILED, the lock reserved
    for it (when `locked`) is released, and the error is raised."""
    sfn = client("stepfunctions", settings.region)
    try:
        sfn.start_execution(
            stateMachineArn=settings.state_machine_arn(operation.kind),
            name=operation.operation_id,
            input=json.dumps(execution_input),
        )
    except Exception as exc:
        if not is_already_exists(exc, Kind.EXECUTION):
            if locked:
                store.locks.release(operation.target, operation.operation_id)
            store.operations.finish(operation.operation_id, "FAILED", type(exc).__name__, str(exc))
            raise
    return operation


@dataclass(frozen=True)
class Checks:
    """What the workflows' validation steps read (`settings`, `store`), for the API to run the
    same checks before it starts anything: one set of rules, answered 400 at once."""

    settings: Settings
    store: Store


def start_on_cluster(
    settings: Settings,
    store: Store,
    *,
    workflow: str,
    prefix: str,
    cluster: str,
    execution_input: dict,
    parameters: dict[str, Any] | None = None,
    operation_id: str | None = None,
) -> Operation:
    """`workflow` on the existing cluster `cluster`, for its current incarnation (its uid): each
    attempt its own execution (`<prefix>-<uid>-<generation>-<random>`) unless a deterministic
    `operation_id` is given."""
    record = store.clusters.get(cluster)
    if record is None:
        raise NotFound(f"cluster {cluster!r} does not exist")
    generated = naming.execution_name(prefix, record.uid, record.generation, secrets.token_hex(3))
    return start_execution(
        settings,
        store,
        workflow=workflow,
        cluster=cluster,
        operation_id=operation_id or generated,
        execution_input=execution_input,
        uid=record.uid,
        parameters=parameters,
    )


def start_update_cluster(settings: Settings, store: Store, body: Any, *, operation_id: str | None = None) -> Operation:
    """UpdateCluster for the API, the upgrade planner (with its deterministic `operation_id`)
    and nothing else: a one-off schedule starts the execution itself (EventBridge Scheduler)."""
    request, plan = lifecycle_steps.plan_cluster_update(Checks(settings, store), body)
    return start_on_cluster(
        settings,
        store,
        workflow="UpdateCluster",
        prefix="update",
        cluster=request.cluster_name,
        execution_input=dump(request),
        parameters={"version": plan.target.spec.control_plane.version, "nodePools": plan.node_pools},
        operation_id=operation_id,
    )
