"""Operations as long-running operations (issue 7): list, cancel, progress, `Location` and
`Retry-After` on every 202; dry runs; the version route; 405 with `Allow`; `InvalidRequest`
for tokens; names in messages quoted and capped."""

from __future__ import annotations

import base64
import json
import posixpath

import boto3
import pytest

from kubestep.api import schemas
from kubestep.store import Operation, Store
from kubestep.versions import supported_minors
from kubestep.workflows import execution_events
from tests.api.conftest import body_named, example_body, executions, register
from tests.api.helpers import call

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")


def _resolve(request_path: str, location: str) -> str:
    return posixpath.normpath(posixpath.join(posixpath.dirname(request_path), location))


def test_every_202_says_where_and_when_to_poll(api: Store) -> None:
    created = call("POST", "/v1/clusters", body=example_body())
    assert created.status == 202
    operation = created.json
    # Relative to the request URL, so the stage prefix (…/api/v1/clusters) is kept on AWS.
    assert created.headers["Location"] == f"operations/{operation['id']}"
    assert _resolve("/v1/clusters", created.headers["Location"]) == operation["statusUrl"]
    assert int(created.headers["Retry-After"]) >= 1

    api.locks.release("prod", operation["id"])
    register(api, example_body(), operation["id"])
    deleted = call("DELETE", "/v1/clusters/prod")
    assert deleted.status == 202
    assert _resolve("/v1/clusters/prod", deleted.headers["Location"]) == deleted.json["statusUrl"]

    cancelled = call("POST", f"/v1/operations/{deleted.json['id']}:cancel")
    assert cancelled.status == 202, cancelled.text
    assert (
        _resolve(f"/v1/operations/{deleted.json['id']}:cancel", cancelled.headers["Location"])
        == (deleted.json["statusUrl"])
    )


def test_cancelling_a_create_asks_it_to_stop_and_compensate(api: Store) -> None:
    """A create is not stopped (StopExecution would skip its compensation): it is asked to stop,
    and its next step raises OperationCancelled (tests/workflows/test_failures.py follows it to
    ABORTED with nothing left)."""
    from kubestep.errors import OperationCancelled
    from kubestep.flow.context import StepContext
    from kubestep.flow.dispatch import _stop_if_cancelled
    from kubestep.settings import settings

    def step_starting() -> StepContext:  # what a step reads as it starts
        return StepContext(settings(), api, operation["id"])

    operation = call("POST", "/v1/clusters", body=example_body()).json
    answer = call("POST", f"/v1/operations/{operation['id']}:cancel")
    assert answer.status == 202 and answer.json["status"] == "CANCELLING"
    sfn = boto3.client("stepfunctions", "us-east-1")
    assert sfn.describe_execution(executionArn=operation["executionArn"])["status"] == "RUNNING"
    assert api.operations.get(operation["id"]).cancel_requested is True
    with pytest.raises(OperationCancelled, match="cancelled through the API by"):
        _stop_if_cancelled(step_starting())
    # Once compensation runs, the steps that undo the create go on.
    api.operations.set(operation["id"], compensating=True)
    _stop_if_cancelled(step_starting())
    again = call("POST", f"/v1/operations/{operation['id']}:cancel")
    assert again.status == 409 and again.error["code"] == "OperationNotRunning"


def test_cancel_stops_other_executions_and_the_janitor_ends_the_operation(api: Store) -> None:
    register(api, example_body())
    api.clusters.update("prod", phase="RUNNING", current_operation=None)
    operation = call("DELETE", "/v1/clusters/prod").json
    answer = call("POST", f"/v1/operations/{operation['id']}:cancel")
    assert answer.status == 202 and answer.json["id"] == operation["id"]
    sfn = boto3.client("stepfunctions", "us-east-1")
    description = sfn.describe_execution(executionArn=operation["executionArn"])
    assert description["status"] == "ABORTED"

    # EventBridge's "Execution Status Change" reaches the execution-events handler:
    execution_events.handle({**description, "name": operation["id"], "status": "ABORTED"}, api)
    assert api.locks.get("prod") is None
    assert call("GET", operation["statusUrl"]).json["status"] == "ABORTED"

    again = call("POST", f"/v1/operations/{operation['id']}:cancel")
    assert again.status == 409 and again.error["code"] == "OperationNotRunning"
    assert call("POST", "/v1/operations/create-nope-1:cancel").status == 404


def test_list_operations_pages_and_filters(api: Store) -> None:
    for name in ("alpha", "bravo", "charlie"):
        assert call("POST", "/v1/clusters", body=body_named(name)).status == 202
        register(api, body_named(name), f"create-{name}")
    api.operations.create(Operation(operation_id="provision-network", kind="ProvisionNetwork", target="network"))

    everything = []
    token = None
    while True:
        query = {"limit": "2", **({"nextToken": token} if token else {})}
        page = call("GET", "/v1/operations", query=query)
        assert page.status == 200, page.text
        schemas.OperationList.model_validate(page.json)
        everything += page.json["items"]
        token = page.json["nextToken"]
        if not token:
            break
    # Newest first, whatever their target.
    assert [o["target"] for o in everything] == ["network", "charlie", "bravo", "alpha"]
    assert len({o["id"] for o in everything}) == 4

    only = call("GET", "/v1/operations", query={"cluster": "bravo"}).json
    assert [o["target"] for o in only["items"]] == ["bravo"] and only["nextToken"] is None


@pytest.mark.parametrize(
    "token",
    [
        "not-base64!",
        base64.urlsafe_b64encode(b'{"t": "alpha", "k": {"pk": "CLUSTER#x"}}').decode(),
        base64.urlsafe_b64encode(b"[]").decode(),
    ],
)
def test_bad_tokens_are_invalid_requests(api: Store, token: str) -> None:
    for path in ("/v1/operations", "/v1/clusters"):
        answer = call("GET", path, query={"nextToken": token})
        assert answer.status == 400 and answer.error["code"] == "InvalidRequest", (path, answer.text)
        assert answer.fields == {"nextToken"}


def test_steps_report_progress_after_a_position(api: Store) -> None:
    operation = call("POST", "/v1/clusters", body=example_body()).json
    first = call("GET", f"/v1/operations/{operation['id']}/steps")
    assert first.status == 200, first.text
    steps = schemas.OperationSteps.model_validate(first.json)
    assert steps.timeScale == 1 and steps.next == len(steps.items)
    later = call("GET", f"/v1/operations/{operation['id']}/steps", query={"after": str(steps.next)}).json
    assert later["items"] == [] and later["next"] == steps.next
    assert call("GET", "/v1/operations/create-nope-1/steps").status == 404


def test_dry_run_create_checks_everything_and_starts_nothing(api: Store) -> None:
    answer = call("POST", "/v1/clusters", body=example_body(), query={"dryRun": "true"})
    assert answer.status == 200, answer.text
    plan = schemas.CreateClusterDryRun.model_validate(answer.json)
    assert plan.target == "prod" and [p.metadata.name for p in plan.nodePools] == ["general", "batch"]
    assert plan.cluster.spec.control_plane.root_volume.size_gib == 32  # defaults filled in
    assert executions("CreateCluster") == [] and api.locks.get("prod") is None

    invalid = example_body()
    invalid["cluster"]["spec"]["controlPlane"]["availabilityZones"] = ["us-east-1d"]
    assert call("POST", "/v1/clusters", body=invalid, query={"dryRun": "true"}).status == 400

    started = call("POST", "/v1/clusters", body=example_body())
    busy = call("POST", "/v1/clusters", body=example_body(), query={"dryRun": "true"})
    assert busy.status == 409 and busy.error["code"] == "LockHeld"
    assert busy.error["operationId"] == started.json["id"]
    register(api, example_body(), started.json["id"])
    exists = call("POST", "/v1/clusters", body=example_body(), query={"dryRun": "true"})
    assert exists.status == 409 and exists.error["code"] == "AlreadyExists"
    api.network.update(status="DELETING")
    other = call("POST", "/v1/clusters", body=body_named("other"), query={"dryRun": "true"})
    assert other.status == 409 and other.error["code"] == "NetworkNotReady"


def test_dry_run_delete_says_what_would_go(api: Store) -> None:
    register(api, example_body())
    api.locks.release("prod", "create-test-1")
    answer = call("DELETE", "/v1/clusters/prod", query={"dryRun": "true", "keepEtcdVolumes": "true"})
    assert answer.status == 200, answer.text
    plan = schemas.DeleteClusterDryRun.model_validate(answer.json)
    assert plan.keepEtcdVolumes and sorted(plan.nodePools) == ["batch", "general"]
    assert executions("DeleteCluster") == []
    assert call("DELETE", "/v1/clusters/nope", query={"dryRun": "true"}).status == 404


def test_version(api: Store) -> None:
    answer = call("GET", "/v1/version")
    assert answer.status == 200
    version = schemas.VersionInfo.model_validate(answer.json)
    assert version.managementService == "demo" and version.region == "us-east-1"
    assert (
        version.kubernetesVersions == [f"1.{m}" for m in supported_minors()] and version.apiVersion == "kubestep.io/v1"
    )


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("PUT", "/v1/clusters", "GET, POST"),
        ("PUT", "/v1/clusters/prod", "DELETE, GET, PATCH"),
        ("POST", "/v1/operations/x", "GET"),
        ("GET", "/v1/operations/x:cancel", None),  # the GET route's id would be `x:cancel`: not found
        ("DELETE", "/v1/version", "GET"),
        ("POST", "/v1/openapi.json", "GET"),
    ],
)
def test_unsupported_methods_answer_405_with_allow(api: Store, method: str, path: str, allowed: str | None) -> None:
    answer = call(method, path)
    if allowed is None:
        assert answer.status == 404
        return
    assert answer.status == 405, answer.text
    assert answer.headers["Allow"] == allowed
    assert answer.error["code"] == "MethodNotAllowed" and allowed in answer.error["message"]


def test_names_in_messages_are_quoted_and_capped(api: Store) -> None:
    hostile = "\x1b[31mred\u202e" + "x" * 500
    answer = call("GET", "/v1/clusters/" + hostile)
    assert answer.status == 404
    message = answer.error["message"]
    assert "\x1b" not in message and "\u202e" not in message
    assert "\\x1b[31mred\\u202e" in message and len(message) < 200
    route = call("GET", "/v1/nothing/" + "y" * 500).error["message"]
    assert len(route) < 200 and route.startswith("no route 'GET' '/v1/nothing/yyy")
    assert json.dumps(answer.json)  # still JSON


@pytest.mark.parametrize("body", ["[" * 2000 + "]" * 2000, '{"cluster": ' + '{"a": ' * 2000 + "1" + "}" * 2001])
def test_a_body_nested_2000_levels_deep_is_a_400(api: Store, body: str) -> None:
    answer = call("POST", "/v1/clusters", raw_body=body, headers={"Content-Type": "application/json"})
    assert answer.status == 400, answer.text
    assert answer.error["code"] == "InvalidRequest" and answer.fields == {"body"}
