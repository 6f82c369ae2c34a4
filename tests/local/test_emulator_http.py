"""The emulator's HTTP server keeps connections alive (HTTP/1.1, RFC 9112 section 9.3: a
connection persists unless either side says "Connection: close"), so botocore's pooled
connections are reused; a request body the application does not read never becomes the next
request; a chunked body falls back to closing; stopping the server closes what it kept open."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import boto3
import pytest

from kubestep_local import moto_compat

CONFIG_PATH = "/moto-api/config"
CONFIG_STATUS = 201  # moto answers its config endpoint with 201 (moto/moto_api/_internal/responses.py)


@pytest.fixture
def server() -> Iterator[moto_compat.ServerHandle]:
    handle = moto_compat.start_server("127.0.0.1", 0, gate=moto_compat.StateGate())
    yield handle
    handle.stop()


def _config(connection: http.client.HTTPConnection, body: bytes = b"") -> http.client.HTTPResponse:
    connection.request("GET", CONFIG_PATH, body=body or None)
    response = connection.getresponse()
    assert response.status == CONFIG_STATUS
    assert "lambda" in json.loads(response.read())
    return response


def test_one_connection_serves_request_after_request(server: moto_compat.ServerHandle) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    first = _config(connection)
    sock = connection.sock
    second = _config(connection)
    assert first.getheader("Connection") is None and second.getheader("Connection") is None
    assert first.getheader("Content-Length") is not None
    assert connection.sock is sock  # http.client reconnects (a new socket) after a close
    assert server.connections.accepted == 1
    connection.close()


def test_botocore_reuses_its_pooled_connection(server: moto_compat.ServerHandle) -> None:
    sts = boto3.client(
        "sts",
        endpoint_url=f"http://127.0.0.1:{server.port}",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for _ in range(5):
        assert sts.get_caller_identity()["Account"] == moto_compat.ACCOUNT_ID
    assert server.connections.accepted == 1
    sts.close()


def test_a_body_the_application_does_not_read_is_not_taken_for_the_next_request(
    server: moto_compat.ServerHandle,
) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    _config(connection, body=b"GET /not-a-request HTTP/1.1\r\n\r\n" * 2000)
    _config(connection)
    assert server.connections.accepted == 1
    connection.close()


def test_a_chunked_request_is_answered_and_the_connection_closed(server: moto_compat.ServerHandle) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", CONFIG_PATH, body=iter([b"ignored"]), encode_chunked=True)
    response = connection.getresponse()
    assert response.status == CONFIG_STATUS
    assert "lambda" in json.loads(response.read())
    assert response.getheader("Connection") == "close"
    connection.close()


def test_stopping_the_server_closes_the_connections_it_kept_open() -> None:
    handle = moto_compat.start_server("127.0.0.1", 0, gate=moto_compat.StateGate())
    connection = http.client.HTTPConnection("127.0.0.1", handle.port, timeout=10)
    _config(connection)
    assert len(handle.connections) == 1
    handle.stop()
    assert len(handle.connections) == 0
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        connection.request("GET", CONFIG_PATH)
        connection.getresponse()
    connection.close()


def test_an_answer_without_a_body_is_sent_and_the_connection_kept(server: moto_compat.ServerHandle) -> None:
    """A HEAD answer is its headers only (RFC 9110 section 9.3.2): they must still be sent whole,
    with the GET's Content-Length, and the connection serve the next request."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("HEAD", CONFIG_PATH)
    head = connection.getresponse()
    assert head.status == CONFIG_STATUS
    assert head.read() == b""
    assert int(head.getheader("Content-Length")) > 0
    _config(connection)
    assert server.connections.accepted == 1
    connection.close()
