"""The management API's routes, called in-process with API Gateway REST proxy events."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kubestep.api import schemas
from kubestep.api.app import IDEMPOTENCY_PK
from kubestep.store import Store
from tests.api.conftest import body_named, example_body, execution_input, executions, register, register_running
from tests.api.helpers import call, invoke, proxy_event

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")


def test_create_answers_202_with_the_operation_and_starts_one_execution(api: Store) -> None:
    answer = call("POST", "/v1/clusters", body=example_body())

    assert answer.status == 202, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    operation = schemas.Operation.model_validate(answer.json)
    assert operation.kind == "CreateCluster" and operation.status == "RUNNING" and operation.target == "prod"
    assert operation.statusUrl == f"/v1/operations/{operation.id}"
    [execution] = executions("CreateCluster")
    assert execution["executionArn"] == operation.executionArn and execution["name"] == operation.id
    started = execution_input(execution["executionArn"])
    # The input carries no identity: the execution finds its operation record by its own name.
    assert "operationId" not in started and "uid" not in started
    assert started["cluster"]["metadata"]["name"] == "prod"
    recorded = api.operations.get(operation.id)
    assert recorded.execution_arn == operation.executionArn and recorded.uid and recorded.kind == "CreateCluster"

    # The operation is readable at once; the cluster only once its execution registers it.
    status = call("GET", operation.statusUrl)
    assert status.status == 200 and status.json["id"] == operation.id
    pending = call("GET", "/v1/clusters/prod")
    assert pending.status == 404 and operation.id in pending.error["message"]

    register(api, example_body(), operation.id)
    cluster = call("GET", "/v1/clusters/prod")
    assert cluster.status == 200, cluster.text
    view = schemas.Cluster.model_validate(cluster.json)
    assert view.metadata.name == "prod" and view.status.phase == "PROVISIONING"
    assert sorted(p.metadata.name for p in view.status.nodePools or []) == ["batch", "general"]
    listed = call("GET", "/v1/clusters")
    assert [c["metadata"]["name"] for c in listed.json["items"]] == ["prod"]
    assert listed.json["nextToken"] is None


def _without(path: str) -> dict[str, Any]:
    body = example_body()
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    del node[last]
    return body


def _with(path: str, value: Any) -> dict[str, Any]:
    body = example_body()
    *parents, last = path.split(".")
    node = body
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[last] = value
    return body


BAD_BODIES = {
    "missing cluster": (_without("cluster"), {"cluster"}),
    "missing version": (_without("cluster.spec.controlPlane.version"), {"cluster.spec.controlPlane.version"}),
    "two problems": (
        _with("cluster.spec.controlPlane.version", "1.99.0") | {"colour": "blue"},
        {"cluster.spec.controlPlane.version", "colour"},
    ),
    "bad CIDR": (
        _with("cluster.spec.networking.podAddressCIDRBlocks", ["10.0.0.1/16"]),
        {"cluster.spec.networking.podAddressCIDRBlocks"},
    ),
    "bad node count": (_with("nodePools.0.spec.minNodeCount", -1), {"nodePools[0].spec.minNodeCount"}),
    "bad name": (_with("cluster.metadata.name", "Prod_1"), {"cluster.metadata.name"}),
    "uid is the API's to choose": (example_body() | {"uid": "abcd1234"}, {"uid"}),
    "zone outside the service": (
        _with("cluster.spec.controlPlane.availabilityZones", ["us-east-1a", "us-east-1b", "us-east-1f"]),
        {"cluster.spec.controlPlane.availabilityZones"},
    ),
    "node pool newer than the control plane": (
        _with("nodePools.1.spec.version", "1.36.0"),
        {"nodePools[1].spec.version"},
    ),
    "not an object": ([1, 2], {"body"}),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_invalid_bodies_answer_400_naming_each_field(api: Store, case: str) -> None:
    body, fields = BAD_BODIES[case]
    answer = call("POST", "/v1/clusters", body=body)

    assert answer.status == 400, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.error["code"] in ("InvalidRequest", "InvalidSpec")
    assert fields <= answer.fields, answer.error
    assert all(d["rule"] for d in answer.error["details"])
    assert executions("CreateCluster") == []


def test_unparsable_json_and_other_media_types(api: Store) -> None:
    broken = call("POST", "/v1/clusters", raw_body='{"cluster": ', headers={"Content-Type": "application/json"})
    assert broken.status == 400 and broken.fields == {"body"} and "JSON" in broken.error["details"][0]["rule"]
    text = call("POST", "/v1/clusters", raw_body="cluster: prod", headers={"Content-Type": "text/yaml"})
    assert text.status == 415 and text.error["code"] == "UnsupportedMediaType"


def test_bad_parameters_answer_400(api: Store) -> None:
    assert call("GET", "/v1/clusters", query={"limit": "0"}).fields == {"limit"}
    assert call("GET", "/v1/clusters", query={"nextToken": "%%%"}).fields == {"nextToken"}
    assert call("GET", "/v1/clusters", query={"limits": "2"}).fields == {"limits"}  # a typo is no default
    assert call("DELETE", "/v1/clusters/prod", query={"keepEtcdVolumes": "maybe"}).fields == {"keepEtcdVolumes"}


def test_duplicate_name_answers_409_already_exists(api: Store) -> None:
    register(api, example_body())
    answer = call("POST", "/v1/clusters", body=example_body())
    assert answer.status == 409 and answer.error["code"] == "AlreadyExists"
    assert executions("CreateCluster") == []


def test_held_lock_answers_409_with_the_holder(api: Store) -> None:
    first = call("POST", "/v1/clusters", body=example_body()).json
    # Another create of the same name before the first execution registered the cluster.
    other = example_body()
    other["cluster"]["spec"]["controlPlane"]["instanceType"] = "m5.xlarge"
    answer = call("POST", "/v1/clusters", body=other)
    assert answer.status == 409 and answer.error["code"] == "LockHeld"
    assert answer.error["operationId"] == first["id"]
    assert len(executions("CreateCluster")) == 1

    # And a delete while the create runs.
    register(api, example_body(), first["id"])
    deleting = call("DELETE", "/v1/clusters/prod")
    assert deleting.status == 409 and deleting.error["operationId"] == first["id"]


def test_network_not_ready_answers_409(api: Store) -> None:
    api.network.update(status="PROVISIONING")
    answer = call("POST", "/v1/clusters", body=example_body())
    assert answer.status == 409 and answer.error["code"] == "NetworkNotReady"
    assert "ProvisionNetwork" in answer.error["message"]


def test_oversized_body_answers_413_before_parsing(api: Store) -> None:
    body = example_body()
    body["cluster"]["metadata"]["labels"] = {f"k{i}": "x" * 100 for i in range(3000)}
    answer = call("POST", "/v1/clusters", body=body)
    assert answer.status == 413 and answer.error["code"] == "PayloadTooLarge"
    assert answer.headers["Content-Type"] == "application/json"
    garbage = call("POST", "/v1/clusters", raw_body="x" * (300 * 1024), headers={"Content-Type": "application/json"})
    assert garbage.status == 413


def test_unknown_things_answer_404_json(api: Store) -> None:
    for method, path in [
        ("GET", "/v1/clusters/nope"),
        ("DELETE", "/v1/clusters/nope"),
        ("GET", "/v1/clusters/nope/nodepools"),
        ("GET", "/v1/clusters/nope/nodepools/general"),
        ("GET", "/v1/clusters/nope/events"),
        ("GET", "/v1/operations/create-nope-1"),
        ("GET", "/v1/nothing/here"),
        ("GET", "/v1"),
        # A name that cannot exist is not found either (like `kubectl get`), not a 400.
        ("GET", "/v1/clusters/Not_A_Name"),
        ("DELETE", "/v1/clusters/" + "x" * 3000),
        ("GET", "/v1/clusters/prod/nodepools/Bad_Pool"),
        ("GET", "/v1/clusters/%F0%9F%92%A5/events"),
        ("GET", "/v1/operations/" + "o" * 81),
    ]:
        answer = call(method, path)
        assert answer.status == 404, (method, path, answer.text)
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.error["code"] == "NotFound"


def test_delete_answers_202_and_passes_its_options(api: Store) -> None:
    register(api, example_body())
    answer = call("DELETE", "/v1/clusters/prod", query={"keepEtcdVolumes": "true", "deleteBackups": "true"})
    assert answer.status == 202, answer.text
    operation = answer.json
    assert operation["kind"] == "DeleteCluster" and operation["target"] == "prod"
    [execution] = executions("DeleteCluster")
    assert execution_input(execution["executionArn"]) == {
        "clusterName": "prod",
        "keepEtcdVolumes": True,
        "deleteBackups": True,
    }
    assert api.operations.get(operation["id"]).execution_arn == execution["executionArn"]


def test_idempotency_key_returns_the_first_answer_and_starts_one_execution(api: Store) -> None:
    headers = {"Idempotency-Key": "retry-me-1"}
    first = call("POST", "/v1/clusters", body=example_body(), headers=headers)
    again = call("POST", "/v1/clusters", body=example_body(), headers={"idempotency-key": "retry-me-1"})
    assert first.status == again.status == 202
    assert first.json == again.json
    assert len(executions("CreateCluster")) == 1

    changed = body_named("other")
    reused = call("POST", "/v1/clusters", body=changed, headers=headers)
    assert reused.status == 409 and reused.error["code"] == "IdempotencyKeyReused"

    fresh = call("POST", "/v1/clusters", body=changed, headers={"Idempotency-Key": "retry-me-2"})
    assert fresh.status == 202 and fresh.json["id"] != first.json["id"]
    assert len(executions("CreateCluster")) == 2
    # The record lives in the service's table, expiring through its TTL attribute.
    items = api.table.table.query(KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": IDEMPOTENCY_PK})
    assert len(items["Items"]) == 2 and all(int(i["ttl"]) > 0 for i in items["Items"])


def test_failed_requests_are_not_remembered_by_the_idempotency_key(api: Store) -> None:
    headers = {"Idempotency-Key": "after-network"}
    api.network.update(status="PROVISIONING")
    assert call("POST", "/v1/clusters", body=example_body(), headers=headers).status == 409
    api.network.update(status="READY")
    assert call("POST", "/v1/clusters", body=example_body(), headers=headers).status == 202


def test_a_retry_while_the_first_request_runs_answers_409_in_progress(
    api: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubestep import operations

    headers = {"Idempotency-Key": "impatient"}
    start_create = operations.start_create
    seen: list[Any] = []

    def slow_start(*args: Any) -> dict:
        # The client gives up and retries while the first request is still starting its execution.
        seen.append(call("POST", "/v1/clusters", body=example_body(), headers=headers))
        return start_create(*args)

    monkeypatch.setattr(operations, "start_create", slow_start)
    first = call("POST", "/v1/clusters", body=example_body(), headers=headers)
    assert first.status == 202, first.text
    assert seen[0].status == 409 and seen[0].error["code"] == "IdempotencyInProgress"
    assert len(executions("CreateCluster")) == 1


def test_idempotent_delete(api: Store) -> None:
    register(api, example_body())
    headers = {"Idempotency-Key": "delete-once"}
    first = call("DELETE", "/v1/clusters/prod", headers=headers)
    again = call("DELETE", "/v1/clusters/prod", headers=headers)
    assert first.status == again.status == 202 and first.json["id"] == again.json["id"]
    assert len(executions("DeleteCluster")) == 1
    # Still the first answer once the cluster is gone.
    api.clusters.delete_everything("prod", "abcd1234")
    assert call("DELETE", "/v1/clusters/prod", headers=headers).json == first.json
    assert call("DELETE", "/v1/clusters/prod").status == 404


def test_list_pages_with_next_token(api: Store) -> None:
    for name in ("alpha", "bravo", "charlie"):
        register(api, body_named(name))
    first = call("GET", "/v1/clusters", query={"limit": "2"}).json
    assert [c["metadata"]["name"] for c in first["items"]] == ["alpha", "bravo"]
    # The list carries replicas and node pools (the CLI's REPLICAS column), not the etcd configuration.
    status = first["items"][0]["status"]
    assert "etcd" not in status["controlPlane"] and "replicas" in status["controlPlane"]
    assert sorted(p["metadata"]["name"] for p in status["nodePools"]) == ["batch", "general"]
    second = call("GET", "/v1/clusters", query={"limit": "2", "nextToken": first["nextToken"]}).json
    assert [c["metadata"]["name"] for c in second["items"]] == ["charlie"]
    assert second["nextToken"] is None
    schemas.ClusterList.model_validate(first)


def test_node_pools_and_events(api: Store) -> None:
    register(api, example_body())
    pools = call("GET", "/v1/clusters/prod/nodepools")
    assert pools.status == 200
    assert [p["metadata"]["name"] for p in schemas.NodePoolList.model_validate(pools.json).model_dump()["items"]] == [
        "batch",
        "general",
    ]
    pool = call("GET", "/v1/clusters/prod/nodepools/general")
    assert pool.status == 200 and pool.json["spec"]["minNodeCount"] == 2
    assert call("GET", "/v1/clusters/prod/nodepools/missing").status == 404

    assert call("GET", "/v1/clusters/prod/events").json == {"items": []}
    api.events.record("prod", "Normal", "Provisioning", "creating", "AWSCluster/prod", "create-x-1")
    events = call("GET", "/v1/clusters/prod/events").json["items"]
    assert [e["reason"] for e in events] == ["Provisioning"] and events[0]["count"] == 1
    # Events outlive their cluster.
    api.clusters.delete_everything("prod", "abcd1234")
    assert call("GET", "/v1/clusters/prod/events").status == 200


LIFECYCLE = [
    ("POST", "/v1/clusters/prod/upgrade", {"version": "1.36.1"}, "UpdateCluster"),
    ("PATCH", "/v1/clusters/prod", {"controlPlane": {"instanceType": "m5.xlarge"}}, "UpdateCluster"),
    ("POST", "/v1/clusters/prod/nodepools", None, "CreateNodePool"),
    ("PATCH", "/v1/clusters/prod/nodepools/general", {"maxNodeCount": 8}, "UpdateNodePool"),
    ("DELETE", "/v1/clusters/prod/nodepools/general", None, "DeleteNodePool"),
]


def _new_pool() -> dict[str, Any]:
    pool = copy.deepcopy(example_body()["nodePools"][0])
    pool["metadata"]["name"] = "extra"
    return pool


@pytest.mark.parametrize(("method", "path", "body", "workflow"), LIFECYCLE)
def test_lifecycle_routes_start_their_workflow_after_validating(
    api: Store, method: str, path: str, body: dict | None, workflow: str
) -> None:
    if path.endswith("/nodepools") and body is None:
        body = _new_pool()
    # Unknown cluster first: 404, nothing started.
    missing = call(method, path.replace("/prod", "/nope"), body=body)
    assert missing.status == 404, missing.text
    # A cluster still being created (its record PROVISIONING): 409, nothing started.
    register(api, example_body())
    busy = call(method, path, body=body)
    assert busy.status == 409 and busy.error["code"] == "ClusterNotReady", busy.text
    assert executions(workflow) == []
    # Dry run: every check, nothing started.
    api.clusters.update("prod", phase="RUNNING", current_operation=None)
    dry = call(method, path, body=body, query={"dryRun": "true"})
    assert dry.status == 200 and dry.json["dryRun"] is True and dry.json["kind"] == workflow, dry.text
    assert executions(workflow) == []
    answer = call(method, path, body=body)
    assert answer.status == 202, answer.text
    assert answer.json["kind"] == workflow and answer.json["target"] == "prod"
    assert answer.headers["Location"].endswith(f"operations/{answer.json['id']}")
    [execution] = executions(workflow)
    assert execution["name"] == answer.json["id"]
    started = execution_input(execution["executionArn"])
    assert started["clusterName"] == "prod" and "operationId" not in started and "uid" not in started
    # The lock is reserved for it: a second mutation waits.
    again = call(method, path, body=body)
    assert again.status == 409 and again.error["operationId"] == answer.json["id"]


def test_lifecycle_routes_refuse_what_breaks_a_rule_and_start_nothing(api: Store) -> None:
    register_running(api)
    upgrade = "/v1/clusters/prod/upgrade"
    # Two minors at once.
    assert call("POST", upgrade, body={"version": "1.37.0"}).fields == {"controlPlane.version"}
    assert "controlPlane.version" in call("POST", upgrade, body={"version": "1.34.2"}).fields  # down
    assert call("POST", upgrade, body={"version": "2"}).fields == {"version"}
    assert call("POST", upgrade, body={}).fields == {"version"}
    assert call("POST", upgrade, body={"version": "1.35.4"}).fields == {"controlPlane"}  # nothing to change
    # batch runs 1.35.2: with the control plane on 1.36 it stays within two minors, so that is fine…
    assert call("POST", upgrade, body={"version": "1.36.1"}, query={"dryRun": "true"}).status == 200
    # …and naming a pool that does not exist is not.
    assert call("POST", upgrade, body={"version": "1.36.1", "nodePools": ["nope"]}).fields == {"nodePools"}
    assert call("POST", upgrade, body={"version": "1.36.1", "at": "tomorrow"}).fields == {"at"}
    assert call("POST", upgrade, body={"version": "1.36.1", "at": "2026-01-01T03:00:00"}).fields == {"at"}
    assert call("POST", upgrade, body={"version": "1.36.1", "at": "2020-01-01T03:00:00Z"}).fields == {"at"}
    pool = _new_pool()
    pool["spec"]["clusterName"] = "other"
    assert call("POST", "/v1/clusters/prod/nodepools", body=pool).fields == {"spec.clusterName"}
    newer = _new_pool()
    newer["spec"]["version"] = "1.36.1"
    assert call("POST", "/v1/clusters/prod/nodepools", body=newer).status == 400
    existing = example_body()["nodePools"][0]
    assert call("POST", "/v1/clusters/prod/nodepools", body=existing).error["code"] == "AlreadyExists"
    patch = "/v1/clusters/prod/nodepools/general"
    assert call("PATCH", patch, body={}).fields == {"changes"}
    assert call("PATCH", patch, body={"minNodeCount": 9}).status == 400  # above maxNodeCount 6
    assert call("PATCH", patch, body={"version": "1.36.0"}).fields == {"changes.version"}  # newer than the CP
    assert call("PATCH", patch, body={"replicas": 3}).fields == {"replicas"}
    assert call("PATCH", "/v1/clusters/prod", body={"controlPlane": {"replicas": 5}}).status == 400
    for workflow in ("UpdateCluster", "CreateNodePool", "UpdateNodePool", "DeleteNodePool"):
        assert executions(workflow) == []


def test_an_upgrade_at_a_time_is_a_schedule_listed_and_cancellable(api: Store) -> None:
    import boto3

    register_running(api)
    created = call("POST", "/v1/clusters/prod/upgrade", body={"version": "1.36.1", "at": "2099-01-01T03:00:00Z"})
    assert created.status == 400 and created.fields == {"at"}  # more than 90 days ahead
    at = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    body = {"version": "1.36.1", "nodePools": "all", "at": at.isoformat()}
    created = call("POST", "/v1/clusters/prod/upgrade", body=body)
    assert created.status == 201, created.text
    schedule = created.json
    assert schedule["state"] == "SCHEDULED" and schedule["version"] == "1.36.1" and schedule["cluster"] == "prod"
    assert schedule["at"] == at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert executions("UpdateCluster") == []  # nothing runs before its time
    scheduler = boto3.client("scheduler", "us-east-1")
    found = scheduler.get_schedule(Name=schedule["id"])
    assert found["ScheduleExpression"] == f"at({at:%Y-%m-%dT%H:%M:%S})" and found["ActionAfterCompletion"] == "DELETE"
    target = json.loads(found["Target"]["Input"])
    assert target["name"] == f"sched-{schedule['id']}" and target["stateMachineArn"].endswith("unit-UpdateCluster")
    assert json.loads(target["input"])["scheduleId"] == schedule["id"]
    assert found["Target"]["RoleArn"].endswith("role/unit-upgrade-scheduler")
    # The same request again is the same schedule (a retry); another at that time is refused.
    assert call("POST", "/v1/clusters/prod/upgrade", body=body).json["id"] == schedule["id"]
    other = call("POST", "/v1/clusters/prod/upgrade", body={**body, "nodePools": []})
    assert other.status == 409 and other.error["code"] == "AlreadyExists" and schedule["id"] in other.error["message"]
    assert len(scheduler.list_schedules()["Schedules"]) == 1

    listed = call("GET", "/v1/schedules", query={"cluster": "prod"}).json["items"]
    assert [s["id"] for s in listed] == [schedule["id"]]
    assert call("GET", "/v1/schedules", query={"cluster": "other"}).json["items"] == []
    assert call("GET", f"/v1/schedules/{schedule['id']}").json["state"] == "SCHEDULED"
    assert call("GET", "/v1/schedules/nope").status == 404
    cancelled = call("DELETE", f"/v1/schedules/{schedule['id']}")
    assert cancelled.status == 200 and cancelled.json["state"] == "CANCELLED"
    assert not scheduler.list_schedules()["Schedules"]
    again = call("DELETE", f"/v1/schedules/{schedule['id']}")
    assert again.status == 409 and again.error["code"] == "ScheduleNotPending"


def test_server_config_lists_channels_and_versions(api: Store) -> None:
    answer = call("GET", "/v1/serverconfig")
    assert answer.status == 200
    config = schemas.ServerConfig.model_validate(answer.json)
    channels = {c.channel: c.defaultVersion for c in config.channels}
    assert set(channels) == {"rapid", "regular", "stable"}
    assert all(version in config.validVersions for version in channels.values())


def test_every_response_is_json_and_the_document_declares_its_statuses(api: Store) -> None:
    answer = call("GET", "/v1/openapi.json")
    assert answer.status == 200 and answer.headers["Content-Type"] == "application/json"
    document = answer.json
    assert document["openapi"].startswith("3.")
    declared = {
        (method.upper(), path): set(operation["responses"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    expected = {
        ("POST", "/v1/clusters"): {"200", "202", "400", "409", "413", "415"},
        ("GET", "/v1/clusters"): {"200", "400"},
        ("GET", "/v1/clusters/{name}"): {"200", "400", "404"},
        ("DELETE", "/v1/clusters/{name}"): {"200", "202", "400", "404", "409"},
        ("PATCH", "/v1/clusters/{name}"): {"200", "202", "400", "404", "409", "413", "415"},
        ("POST", "/v1/clusters/{name}/upgrade"): {"200", "201", "202", "400", "404", "409", "413", "415"},
        ("GET", "/v1/clusters/{name}/nodepools"): {"200", "400", "404"},
        ("POST", "/v1/clusters/{name}/nodepools"): {"200", "202", "400", "404", "409", "413", "415"},
        ("GET", "/v1/clusters/{name}/nodepools/{pool}"): {"200", "400", "404"},
        ("PATCH", "/v1/clusters/{name}/nodepools/{pool}"): {"200", "202", "400", "404", "409", "413", "415"},
        ("DELETE", "/v1/clusters/{name}/nodepools/{pool}"): {"200", "202", "400", "404", "409"},
        ("GET", "/v1/schedules"): {"200", "400"},
        ("GET", "/v1/schedules/{id}"): {"200", "400", "404"},
        ("DELETE", "/v1/schedules/{id}"): {"200", "400", "404", "409"},
        ("GET", "/v1/serverconfig"): {"200"},
        ("GET", "/v1/clusters/{name}/events"): {"200", "400", "404"},
        ("GET", "/v1/clusters/{name}/backups"): {"200", "400", "404"},
        ("POST", "/v1/clusters/{name}/backups"): {"202", "400", "404", "409"},
        ("POST", "/v1/clusters/{name}/restore"): {"200", "202", "400", "404", "409", "413", "415"},
        ("DELETE", "/v1/clusters/{name}/backups/{uid}"): {"202", "400", "404"},
        ("DELETE", "/v1/clusters/{name}/backups/{uid}/{backup_id}"): {"202", "400", "404"},
        ("GET", "/v1/operations/{id}"): {"200", "400", "404"},
        ("GET", "/v1/operations"): {"200", "400"},
        ("POST", "/v1/operations/{id}:cancel"): {"202", "400", "404", "409"},
        ("GET", "/v1/operations/{id}/steps"): {"200", "400", "404"},
        ("GET", "/v1/version"): {"200"},
        # Issue 11: repair and the orphan sweeper.
        ("POST", "/v1/clusters/{name}:repair"): {"202", "400", "404", "409"},
        ("POST", "/v1/orphans:sweep"): {"202", "400", "409", "413", "415"},
    }
    openapi_spec_validator = pytest.importorskip("openapi_spec_validator")
    openapi_spec_validator.validate(document)
    assert sorted(op["operationId"] for item in document["paths"].values() for op in item.values()) == sorted(
        [
            "createCluster",
            "listClusters",
            "getCluster",
            "deleteCluster",
            "upgradeCluster",
            "updateCluster",
            "listSchedules",
            "getSchedule",
            "cancelSchedule",
            "getServerConfig",
            "listNodePools",
            "createNodePool",
            "getNodePool",
            "updateNodePool",
            "deleteNodePool",
            "listEvents",
            "listBackups",
            "backupCluster",
            "restoreCluster",
            "deleteIncarnationBackups",
            "deleteBackup",
            "getOperation",
            "listOperations",
            "cancelOperation",
            "listOperationSteps",
            "getVersion",
            "repairCluster",
            "sweepOrphans",
        ]
    )
    # Every operation also declares API Gateway's own 403 (unsigned or IAM-denied requests).
    assert declared == {key: statuses | {"403"} for key, statuses in expected.items()}
    text = json.dumps(document)
    assert "HTTPValidationError" not in text and '"422"' not in text
    for (method, path), statuses in expected.items():
        for status in statuses - {"200", "201", "202"}:
            content = document["paths"][path][method.lower()]["responses"][status]["content"]
            assert content["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorResponse"}


def test_base64_bodies_are_accepted(api: Store) -> None:
    event = proxy_event(
        "POST",
        "/v1/clusters",
        raw_body=json.dumps(example_body()).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert invoke(event).status == 202


def test_repair_starts_its_workflow_and_a_busy_cluster_is_refused(api: Store) -> None:
    """Issue 11: `POST /v1/clusters/{name}:repair` starts RepairCluster under the cluster's lock."""

    assert call("POST", "/v1/clusters/ghost:repair").status == 404
    record = register(api, example_body(), "create-test-1")
    api.locks.release(record.name, "create-test-1")
    api.clusters.update(record.name, phase="RUNNING", current_operation=None)
    answer = call("POST", f"/v1/clusters/{record.name}:repair")
    assert answer.status == 202, answer.json
    assert answer.json["kind"] == "RepairCluster" and answer.json["id"].startswith(f"repair-{record.uid}-")
    (started,) = executions("RepairCluster")
    assert started["name"] == answer.json["id"]
    # Its execution holds the lock (it stays RUNNING here): a second repair is refused.
    again = call("POST", f"/v1/clusters/{record.name}:repair")
    assert again.status == 409 and again.json["error"]["code"] == "LockHeld"
    assert len(executions("RepairCluster")) == 1


def test_restore_checks_the_backup_answers_a_dry_run_and_starts_under_the_lock(api: Store) -> None:
    """`POST /v1/clusters/{name}/restore`: one of the cluster's current incarnation's backups,
    else 400 naming `backupId`; a dry run starts nothing; a restore holds the cluster's lock."""
    from kubestep import backups as backup_rules
    from kubestep.store.backups import BackupPolicy, BackupRecord

    record = register_running(api)
    backup_id = "20261205T101500Z"
    api.backups.publish_policy(
        record.uid,
        BackupPolicy(
            bucket="bk", prefix=backup_rules.cluster_prefix(record.uid), interval_minutes=30, retention_days=7
        ),
    )
    api.backups.put(
        record.uid,
        BackupRecord(
            backup_id=backup_id,
            taken_at="2026-12-05T10:15:00Z",
            revision=7,
            size=10,
            sha256="0" * 64,
            object_key=backup_rules.object_key(record.uid, backup_id),
        ),
    )
    path = "/v1/clusters/prod/restore"
    assert call("POST", "/v1/clusters/ghost/restore", body={"backupId": backup_id}).status == 404
    for wrong, says in (("20200101T000000Z", "has no backup"), (f"zother/{backup_id}", "another cluster incarnation")):
        refused = call("POST", path, body={"backupId": wrong})
        assert refused.status == 400 and refused.error["details"][0]["field"] == "backupId", refused.json
        assert says in refused.error["details"][0]["rule"]
    assert call("POST", path, body={"backupId": "latest"}).status == 400
    dry = call("POST", path, body={"backupId": backup_id}, query={"dryRun": "true"})
    assert dry.status == 200 and dry.json["backup"]["location"] == f"s3://bk/backups/{record.uid}/{backup_id}.db"
    assert executions("RestoreCluster") == [] and api.locks.get("prod") is None
    started = call("POST", path, body={"backupId": f"{record.uid}/{backup_id}"})
    assert started.status == 202 and started.json["kind"] == "RestoreCluster", started.json
    (execution,) = executions("RestoreCluster")
    assert execution_input(execution["executionArn"]) == {
        "clusterName": "prod",
        "backupId": f"{record.uid}/{backup_id}",
    }
    again = call("POST", path, body={"backupId": backup_id})
    assert again.status == 409 and again.error["code"] == "LockHeld"


def test_sweep_starts_a_dry_run_unless_told_otherwise(api: Store) -> None:

    answer = call("POST", "/v1/orphans:sweep", body={})
    assert answer.status == 202 and answer.json["kind"] == "SweepOrphans"
    assert execution_input(executions("SweepOrphans")[0]["executionArn"]) == {
        "dryRun": True,
        "gracePeriodSeconds": 3600,
    }
    bad = call("POST", "/v1/orphans:sweep", body={"gracePeriodSeconds": -1})
    assert bad.status == 400 and bad.json["error"]["details"][0]["field"] == "gracePeriodSeconds"


def test_backups_are_listed_newest_first_asked_for_once_the_policy_exists_and_late_ones_warned(api: Store) -> None:
    from kubestep import backups as backup_rules
    from kubestep.store.backups import BackupPolicy, BackupRecord

    record = register_running(api)
    created = datetime.now(UTC) - timedelta(hours=2)
    record = api.clusters.update("prod", created_at=created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    # No policy yet (the create's step writes it): nothing to ask, and nothing taken is late.
    refused = call("POST", "/v1/clusters/prod/backups")
    assert refused.status == 409 and refused.error["code"] == "ClusterNotReady"
    listed = call("GET", "/v1/clusters/prod/backups").json
    assert (
        listed["items"] == [] and listed["late"] is True and (listed["interval"], listed["retention"]) == ("30m", "7d")
    )
    assert [e.reason for e in api.events.list("prod") if e.type == "Warning"] == ["BackupsLate"]

    policy = BackupPolicy(
        bucket="bk", prefix=backup_rules.cluster_prefix(record.uid), interval_minutes=30, retention_days=7
    )
    api.backups.publish_policy(record.uid, policy)
    asked = call("POST", "/v1/clusters/prod/backups")
    assert asked.status == 202 and asked.json["uid"] == record.uid and "s3://bk/backups/" in asked.json["message"]
    assert api.backups.policy(record.uid).requested_at == asked.json["requestedAt"]
    taken = datetime.now(UTC) - timedelta(minutes=10)
    for moment in (taken - timedelta(minutes=30), taken):
        backup_id = backup_rules.backup_id(moment)
        api.backups.put(
            record.uid,
            BackupRecord(
                backup_id=backup_id,
                taken_at=moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                revision=7,
                size=20,
                sha256="a" * 64,
                kubernetes_version="1.35.1",
                object_key=backup_rules.object_key(record.uid, backup_id),
            ),
        )
    listed = call("GET", "/v1/clusters/prod/backups").json
    assert listed["late"] is False
    assert [b["backupId"] for b in listed["items"]] == [
        backup_rules.backup_id(taken),
        backup_rules.backup_id(taken - timedelta(minutes=30)),
    ]
    assert listed["items"][0]["location"] == f"s3://bk/backups/{record.uid}/{backup_rules.backup_id(taken)}.db"
    assert call("GET", "/v1/clusters/absent/backups").status == 404
    assert call("POST", "/v1/clusters/absent/backups").status == 404


def _deleted_incarnation(api: Store, name: str, uid: str, backup_id: str) -> None:
    from kubestep import backups
    from kubestep.store.backups import BackupRecord, DeletedIncarnation

    record = BackupRecord(
        backup_id=backup_id,
        taken_at="2026-12-05T10:15:00+00:00",
        revision=7,
        size=10,
        sha256="ab" * 32,
        object_key=backups.object_key(uid, backup_id),
    )
    api.backups.put(uid, record)
    api.backups.record_deleted_incarnation(
        DeletedIncarnation(cluster_name=name, uid=uid, deleted_at="2026-12-05T11:00:00+00:00")
    )


def test_a_deleted_incarnations_backups_are_deleted_by_a_delete_backups_execution(api: Store) -> None:
    _deleted_incarnation(api, "gone", "k3x9a2b1", "20261205T101500Z")
    listed = call("GET", "/v1/clusters/gone/backups")
    assert listed.status == 200 and [(i["uid"], i["clusterDeleted"]) for i in listed.json["items"]] == [
        ("k3x9a2b1", True)
    ]
    one = call("DELETE", "/v1/clusters/gone/backups/k3x9a2b1/20261205T101500Z")
    assert one.status == 202 and one.json["kind"] == "DeleteBackups" and one.json["target"] == "gone", one.text
    every = call("DELETE", "/v1/clusters/gone/backups/k3x9a2b1")
    assert every.status == 202, every.text
    inputs = [execution_input(e["executionArn"]) for e in executions("DeleteBackups")]
    assert sorted(inputs, key=len) == [
        {"clusterName": "gone", "incarnation": "k3x9a2b1"},
        {"clusterName": "gone", "incarnation": "k3x9a2b1", "backupId": "20261205T101500Z"},
    ]
    assert api.operations.get(one.json["id"]).uid == "k3x9a2b1"


def test_deleting_backups_is_refused_naming_the_field_and_starts_nothing(api: Store) -> None:
    _deleted_incarnation(api, "gone", "k3x9a2b1", "20261205T101500Z")
    register(api, example_body())
    live = api.clusters.get("prod").uid
    existing = call("DELETE", f"/v1/clusters/prod/backups/{live}")
    assert existing.status == 400 and "incarnation" in existing.text and "--delete-backups" in existing.text
    unknown = call("DELETE", "/v1/clusters/gone/backups/zz9")
    assert unknown.status == 404 and "incarnation: no deleted cluster 'gone' with uid zz9" in unknown.text
    missing = call("DELETE", "/v1/clusters/gone/backups/k3x9a2b1/20200101T000000Z")
    assert missing.status == 404 and "backupId:" in missing.text
    malformed = call("DELETE", "/v1/clusters/gone/backups/k3x9a2b1/latest")
    assert malformed.status == 400 and "backupId" in malformed.text
    assert executions("DeleteBackups") == []
