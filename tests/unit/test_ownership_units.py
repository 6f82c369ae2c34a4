"""Small rules of ownership and recovery: keys that cannot collide, what an interrupted operation
leaves (phase, advice, a cause without a stack trace), strict JSON types, long values cut in
messages, node labels a kubelet may set on itself."""

from __future__ import annotations

import json

import pytest

from kubestep import recovery
from kubestep.errors import InvalidSpec, LockHeld
from kubestep.models import (
    RESERVED_CLUSTER_NAMES,
    AWSCluster,
    CreateClusterRequest,
    NodePoolChanges,
    UpdateClusterRequest,
)
from kubestep.store import ClusterRecord, NodePoolRecord, Operation, keys
from kubestep.validation import parse
from kubestep.workflows import execution_events
from kubestep.workflows.sweep_steps import parse_sweep_request

from .fleet import small_request

SPEC = {"metadata": {"name": "c"}, "spec": {"controlPlane": {"version": "1.35.4"}}}
ARN = "arn:aws:states:us-east-1:123456789012:execution:unit-{workflow}:{name}"


# ---------------------------------------------------------------- keys


def test_reserved_cluster_names_are_the_service_targets() -> None:
    assert set(RESERVED_CLUSTER_NAMES) == {target.value for target in keys.ServiceTarget}


def test_a_cluster_named_like_the_network_never_shares_its_lock_or_operations(store) -> None:
    """A cluster called `network` (possible before the name was reserved: stored records stay
    readable) keys under CLUSTER# and OPS#, the network under its own keys."""
    legacy = AWSCluster.model_validate({**SPEC, "metadata": {"name": "network"}}, context={"stored": True})
    store.clusters.create(ClusterRecord(name="network", uid="netuid01", spec=legacy, version="1.35.4"), [])
    store.locks.acquire(keys.ServiceTarget.NETWORK, "provision-network", None, lambda arn: True)
    cluster_lock = store.locks.acquire("network", "update-netuid01-1", None, lambda arn: True)
    assert cluster_lock.took_over_from is None
    with pytest.raises(LockHeld) as held:
        store.locks.acquire(keys.ServiceTarget.NETWORK, "deprovision-network", None, lambda arn: True)
    assert held.value.holder["operationId"] == "provision-network"
    for operation_id, kind, target in (
        ("provision-network", "ProvisionNetwork", "network"),
        ("update-netuid01-1", "UpdateCluster", "network"),
    ):
        store.operations.create(Operation(operation_id=operation_id, kind=kind, target=target))
    cluster_ops, _ = store.operations.for_target("network")
    network_ops, _ = store.operations.for_target(keys.ServiceTarget.NETWORK)
    assert [o.operation_id for o in cluster_ops] == ["update-netuid01-1"]
    assert [o.operation_id for o in network_ops] == ["provision-network"]
    assert keys.target_named("network") is keys.ServiceTarget.NETWORK and keys.target_named("prod") == "prod"


@pytest.mark.parametrize("name", RESERVED_CLUSTER_NAMES)
def test_reserved_names_are_refused_for_new_clusters(name: str) -> None:
    with pytest.raises(InvalidSpec) as refused:
        parse(CreateClusterRequest, small_request(name))
    assert refused.value.problems[0][0] == "cluster.metadata.name" and "reserved" in refused.value.problems[0][1]


# ---------------------------------------------------------------- interrupted operations


def _running(store, kind: str, name: str, *, phase: str = "RECONCILING", pool: str | None = None) -> Operation:
    cluster = AWSCluster.model_validate({**SPEC, "metadata": {"name": "iota"}})
    if store.clusters.get("iota") is None:
        store.clusters.create(
            ClusterRecord(name="iota", uid="iotauid1", spec=cluster, version="1.35.4"),
            [NodePoolRecord(name="general", cluster="iota", spec=_pool(), version="1.35.4")],
        )
    operation = Operation(
        operation_id=name,
        kind=kind,
        target="iota",
        execution_arn=ARN.format(workflow=kind, name=name),
        parameters={"nodePool": pool} if pool else {},
    )
    store.operations.create(operation)
    store.locks.acquire("iota", name, operation.execution_arn, lambda arn: True)
    store.clusters.update("iota", phase=phase, current_operation=name)
    return operation


def _pool():
    from kubestep.models import AWSNodePool

    return AWSNodePool.model_validate(
        {
            "metadata": {"name": "general"},
            "spec": {"clusterName": "iota", "version": "1.35.4", "minNodeCount": 1, "maxNodeCount": 2},
        }
    )


def _detail(operation: Operation, status: str, error: str | None = None, cause: str | None = None) -> dict:
    return {
        "status": status,
        "name": operation.operation_id,
        "executionArn": operation.execution_arn,
        "error": error,
        "cause": cause,
    }


@pytest.mark.parametrize(
    ("kind", "phase", "advice"),
    [
        ("UpdateCluster", "DEGRADED", "kubestep repair cluster iota"),
        ("UpdateNodePool", "DEGRADED", "kubestep repair cluster iota"),
        ("RepairCluster", "DEGRADED", "kubestep repair cluster iota"),
        ("CreateCluster", "ERROR", "apply the same manifest again"),
        ("DeleteCluster", "ERROR", "kubestep delete cluster iota` again"),
    ],
)
def test_an_interrupted_operation_leaves_the_phase_and_the_command_that_resumes_it(store, kind, phase, advice) -> None:
    operation = _running(store, kind, f"{kind.lower()}-1", pool="general" if kind == "UpdateNodePool" else None)
    execution_events.handle(_detail(operation, "ABORTED", "OperationCancelled", "cancelled through the API"), store)
    record = store.clusters.require("iota")
    assert record.phase == phase and record.current_operation is None
    assert advice in record.last_error.hint and "delete it" not in record.last_error.hint
    assert store.locks.get("iota") is None
    if kind == "UpdateNodePool":
        assert store.node_pools.require("iota", "general").phase == "DEGRADED"
    warning = [e for e in store.events.list("iota") if e.type == "Warning"][-1]
    assert advice in warning.message


def test_a_run_stopped_before_it_took_the_cluster_changes_nothing(store) -> None:
    operation = _running(store, "UpdateCluster", "update-early", phase="RUNNING")
    store.clusters.update("iota", current_operation=None)  # the lock step had not recorded it yet
    execution_events.handle(_detail(operation, "ABORTED"), store)
    assert store.clusters.require("iota").phase == "RUNNING"


def test_a_failure_before_the_catch_is_recorded_as_its_type_and_message(store) -> None:
    operation = _running(store, "DeleteCluster", "delete-held")
    message = "cluster iota is locked by operation other-1 (execution not started yet, since 2026-12-05T03:00:00Z)"
    cause = json.dumps(
        {
            "errorMessage": message,
            "errorType": "LockHeld",
            "stackTrace": ['  File "/var/task/lambdas/_tasks.py", line 52, in handler\n', "    raise\n"],
        }
    )
    execution_events.handle(_detail(operation, "FAILED", "LockHeld", cause), store)
    recorded = store.operations.get("delete-held")
    assert (recorded.status, recorded.error, recorded.cause) == ("FAILED", "LockHeld", message)
    event = [e for e in store.events.list("iota") if e.type == "Warning"][-1]
    assert "stackTrace" not in event.message and "File " not in event.message and event.message.count("LockHeld") == 1


def test_the_advice_never_says_delete_where_repair_would_do() -> None:
    for kind in ("UpdateCluster", "UpdateNodePool", "CreateNodePool", "DeleteNodePool", "RepairCluster", None):
        assert "kubestep repair cluster x" in recovery.advice("x", "DEGRADED", kind)
        assert "delete" not in recovery.advice("x", "DEGRADED", kind)
    assert recovery.phase_after_interruption("UpdateCluster") == "DEGRADED"
    assert recovery.phase_after_interruption("CreateCluster") == "ERROR"


# ---------------------------------------------------------------- strict types, long values, labels


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"maxNodeCount": True}, "changes.maxNodeCount"), ({"maxNodeCount": "3"}, "changes.maxNodeCount"),
     ({"maxNodeCount": 3.0}, "changes.maxNodeCount"), ({"minNodeCount": False}, "changes.minNodeCount")],
)  # fmt: skip
def test_numbers_are_numbers(changes: dict, field: str) -> None:
    with pytest.raises(InvalidSpec) as refused:
        parse(NodePoolChanges, changes, "changes.")
    assert [f for f, _ in refused.value.problems] == [field]


@pytest.mark.parametrize("value", ["false", "true", 0, 1, "no"])
def test_booleans_are_booleans(value) -> None:
    with pytest.raises(InvalidSpec) as refused:
        parse_sweep_request({"dryRun": value})
    assert refused.value.problems[0][0] == "dryRun"
    with pytest.raises(InvalidSpec):
        parse(CreateClusterRequest, {**small_request("c"), "rollbackOnFailure": value})


def test_a_manifest_switch_takes_yaml_words_and_nothing_else() -> None:
    """`autoUpgrade: off` is how YAML users write it (a YAML 1.2 reader keeps the word)."""
    spec = {**SPEC["spec"], "upgradePolicy": {"autoUpgrade": "off"}}
    assert AWSCluster.model_validate({**SPEC, "spec": spec}).spec.upgrade_policy.auto_upgrade is False
    for value in (0, "0", "disabled"):
        with pytest.raises(InvalidSpec):
            parse(AWSCluster, {**SPEC, "spec": {**SPEC["spec"], "upgradePolicy": {"autoUpgrade": value}}})


def test_a_long_value_is_cut_in_the_message() -> None:
    with pytest.raises(InvalidSpec) as refused:
        parse(UpdateClusterRequest, {"clusterName": "c", "controlPlane": {"version": "1." + "9" * 6000}})
    message = str(refused.value)
    assert len(message) < 300 and "9" * 78 in message and "9" * 200 not in message and "…" in message


@pytest.mark.parametrize("key", ["kubernetes.io/role", "node-role.kubernetes.io/worker", "app.kubernetes.io/name",
                                 "x.k8s.io/y", "node-restriction.kubernetes.io/z"])  # fmt: skip
def test_labels_a_kubelet_may_not_set_on_itself_are_refused(key: str) -> None:
    with pytest.raises(InvalidSpec) as refused:
        parse(NodePoolChanges, {"labels": {key: "x"}}, "changes.")
    [(field, rule)] = refused.value.problems
    assert field == "changes.labels" and key in rule and "kubelet" in rule


def test_labels_a_kubelet_may_set_pass() -> None:
    labels = {"node.kubernetes.io/pool": "a", "kubelet.kubernetes.io/x": "b", "example.com/team": "c", "tier": "d"}
    assert parse(NodePoolChanges, {"labels": labels}, "changes.").labels == labels


def test_a_failure_without_a_catch_is_listed_once_with_its_step() -> None:
    """The execution's own failure repeats the step's (no Catch before the lock): one line."""
    from datetime import UTC, datetime, timedelta

    from kubestep.execution_history import summarize

    t0 = datetime(2026, 12, 5, tzinfo=UTC)
    cause = json.dumps({"errorMessage": "cluster iota is locked by operation other-1", "errorType": "LockHeld",
                        "stackTrace": ['  File "/var/task/lambdas/_tasks.py", line 52\n']})  # fmt: skip
    failed = {"error": "LockHeld", "cause": cause}
    events = [
        {"id": 1, "previousEventId": 0, "type": "ExecutionStarted", "timestamp": t0},
        {"id": 2, "previousEventId": 1, "type": "TaskStateEntered", "timestamp": t0 + timedelta(seconds=1),
         "stateEnteredEventDetails": {"name": "AcquireLock", "input": "{}"}},
        {"id": 3, "previousEventId": 2, "type": "TaskFailed", "timestamp": t0 + timedelta(seconds=2),
         "taskFailedEventDetails": failed},
        {"id": 4, "previousEventId": 3, "type": "ExecutionFailed", "timestamp": t0 + timedelta(seconds=2),
         "executionFailedEventDetails": failed},
    ]  # fmt: skip
    [item] = summarize(events)
    assert (item["type"], item["step"]) == ("error", "AcquireLock")
    assert item["message"] == "LockHeld: cluster iota is locked by operation other-1"
