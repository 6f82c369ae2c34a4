"""`kubestep.api.client.ApiClient` over real HTTP against the handler (loopback gateway), and the
handler behind the local runtime's own API Gateway stand-in."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from kubestep.api.client import ApiClient, ApiError
from kubestep.store import Store
from tests.api.conftest import body_named, example_body, execution_input, executions, register
from tests.api.helpers import ACCOUNT, CALLER_ARN, Answer, LocalGateway, invoke

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics")


@pytest.fixture
def gateway(api: Store) -> Iterator[LocalGateway]:
    with LocalGateway() as server:
        yield server


def test_create_follow_and_read(api: Store, gateway: LocalGateway) -> None:
    client = ApiClient(gateway.url + "/", sign=False)
    operation = client.create_cluster(example_body())
    assert operation["kind"] == "CreateCluster" and operation["status"] == "RUNNING"
    # A key is always sent, so the client's own retries never start a second execution.
    assert gateway.requests[-1]["headers"]["Idempotency-Key"].startswith("kubestep-")
    assert client.operation(operation["id"])["id"] == operation["id"]

    with pytest.raises(TimeoutError):
        client.wait_operation(operation["id"], timeout=0.2, poll=0.1)
    api.operations.finish(operation["id"], "SUCCEEDED")
    assert client.wait_operation(operation["id"], timeout=5, poll=0.1)["status"] == "SUCCEEDED"

    with pytest.raises(ApiError) as missing:
        client.get_cluster("prod")
    assert missing.value.status == 404 and missing.value.code == "NotFound"
    register(api, example_body(), operation["id"])
    assert client.get_cluster("prod")["metadata"]["name"] == "prod"
    assert [p["metadata"]["name"] for p in client.list_node_pools("prod")] == ["batch", "general"]
    assert client.get_node_pool("prod", "general")["spec"]["maxNodeCount"] == 6
    assert client.events("prod") == []


def test_list_follows_next_token(api: Store, gateway: LocalGateway) -> None:
    for name in ("a1", "b2", "c3", "d4", "e5"):
        register(api, body_named(name))
    client = ApiClient(gateway.url, sign=False)
    assert [c["metadata"]["name"] for c in client.list_clusters(page_size=2)] == [
        "a1",
        "b2",
        "c3",
        "d4",
        "e5",
    ]
    assert sum(r["path"] == "/v1/clusters" for r in gateway.requests) == 3


def test_errors_carry_code_details_and_holder(api: Store, gateway: LocalGateway) -> None:
    client = ApiClient(gateway.url, sign=False)
    body = example_body()
    body["cluster"]["spec"]["controlPlane"]["version"] = "1.99.0"
    with pytest.raises(ApiError) as invalid:
        client.create_cluster(body)
    assert invalid.value.status == 400
    assert invalid.value.details[0]["field"] == "cluster.spec.controlPlane.version"
    assert "cluster.spec.controlPlane.version" in invalid.value.one_line()

    first = client.create_cluster(example_body())
    other = example_body()
    other["rollbackOnFailure"] = False
    with pytest.raises(ApiError) as locked:
        client.create_cluster(other)
    assert locked.value.status == 409 and locked.value.code == "LockHeld"
    assert locked.value.operation_id == first["id"]

    register(api, example_body(), first["id"])
    with pytest.raises(ApiError) as not_yet:
        client.create_node_pool("prod", {**example_body()["nodePools"][0], "metadata": {"name": "extra"}})
    assert not_yet.value.status == 409 and not_yet.value.code == "LockHeld"


def test_delete_passes_keep_etcd_volumes(api: Store, gateway: LocalGateway) -> None:
    register(api, example_body())
    operation = ApiClient(gateway.url, sign=False).delete_cluster("prod", keep_etcd_volumes=True)
    [execution] = executions("DeleteCluster")
    assert execution_input(execution["executionArn"])["keepEtcdVolumes"] is True
    assert operation["kind"] == "DeleteCluster"


def test_signed_requests_carry_a_sigv4_signature_for_execute_api(api: Store, gateway: LocalGateway) -> None:
    client = ApiClient(gateway.url, region="eu-west-1", sign=True)
    assert client.list_clusters() == []
    headers = gateway.requests[-1]["headers"]
    assert re.match(
        r"^AWS4-HMAC-SHA256 Credential=\w+/\d{8}/eu-west-1/execute-api/aws4_request, "
        r"SignedHeaders=[a-z;-]*host;x-amz-date, Signature=[0-9a-f]{64}$",
        headers["Authorization"],
    )
    assert "X-Amz-Date" in headers


def test_region_comes_from_the_api_url() -> None:
    client = ApiClient("https://a1b2c3d4e5.execute-api.ap-southeast-2.amazonaws.com/v1/", sign=True)
    assert client.region == "ap-southeast-2"
    assert client.url("clusters/prod", {"keepEtcdVolumes": True}) == (
        "https://a1b2c3d4e5.execute-api.ap-southeast-2.amazonaws.com/v1/v1/clusters/prod?keepEtcdVolumes=true"
    )


def test_gateway_refusals_and_unreachable_endpoints_are_api_errors(api: Store) -> None:
    with LocalGateway(require_auth=True) as strict, pytest.raises(ApiError) as refused:
        ApiClient(strict.url, sign=False, retries=0).list_clusters()
    assert refused.value.status == 403 and refused.value.message == "Missing Authentication Token"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ApiError) as unreachable:
        ApiClient(f"http://127.0.0.1:{port}", sign=False, retries=0).list_clusters()
    assert unreachable.value.status == 0 and unreachable.value.code == "Unreachable"


def test_behind_the_local_runtimes_gateway(api: Store) -> None:
    """The same handler behind `kubestep_local.apigw` (the runtime's API Gateway stand-in), with
    its Lambda invoke replaced by an in-process call: the events it builds route correctly."""
    apigw = pytest.importorskip("kubestep_local.apigw")

    class InProcess(apigw.ApiGatewayServer):  # type: ignore[name-defined,misc]
        def invoke(self, event: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
            answer: Answer = invoke(event)
            return answer.status, list(answer.headers.items()), answer.text.encode()

        def caller_identity(self, access_key: str | None) -> dict[str, str]:
            # No emulator behind this one to ask who signed (tests/local covers that): a fixed user.
            return {"userArn": CALLER_ARN, "caller": "AIDATESTER", "accountId": ACCOUNT, "accessKey": "testing"}

    server = InProcess("http://127.0.0.1:1", port=0, function_name="unit-api")
    server.start()
    try:
        client = ApiClient(server.url, sign=False)
        operation = client.create_cluster(example_body())
        assert client.operation(operation["id"])["status"] == "RUNNING"
        with pytest.raises(ApiError) as missing:
            client.events("nope")
        assert missing.value.status == 404
        assert client.list_clusters() == []
        assert "/v1/clusters" in client.openapi()["paths"]
    finally:
        server.stop()
