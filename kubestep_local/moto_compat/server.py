"""moto's HTTP server on loopback, behind the state gate; its configuration switch for ASL
execution; its id generator and reset; and the per-request work it does again and again."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

from kubestep_local.moto_compat.core import GATE, REQUEST_LOCK, PatchSet, StateGate, gated_path

# Loggers of moto's that are noisy at their default levels: werkzeug logs one INFO line per
# request; the interpreter logs expected task failures (ResourcePending retries) at ERROR with
# the whole state's repr, which the execution history holds anyway.
NOISY_LOGGERS = {
    "werkzeug": logging.WARNING,
    "moto.stepfunctions.parser.asl.component.eval_component": logging.CRITICAL,
}


class ServerHandle:
    """moto's WSGI application on a werkzeug server, serving in a daemon thread."""

    def __init__(self, server: Any, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()


def start_server(host: str, port: int, gate: StateGate = GATE) -> ServerHandle:
    """Bind ``host:port`` in the calling thread (so a port in use raises OSError at once) and serve
    moto there. moto's ``ThreadedMotoServer`` binds inside its thread and waits forever when the
    port is taken (moto/moto_server/threaded_moto_server.py:24-41), so it is not used."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    moto_app = DomainDispatcherApplication(create_backend_app)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if not gated_path(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")):
            return moto_app(environ, start_response)
        with gate.shared(), REQUEST_LOCK:
            # Materialize the body inside the gate: the backend call happens in here.
            return list(moto_app(environ, start_response))

    server = make_server(host, port, app, threaded=True, request_handler=MotoRequestHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="kubestep-local-moto", daemon=True)
    thread.start()
    return ServerHandle(server, thread)


def enable_asl_execution(endpoint_url: str) -> None:
    """Turn on moto's ASL interpreter, through its documented config endpoint
    (moto/moto_api/_internal/responses.py:391-406)."""
    request = urllib.request.Request(
        f"{endpoint_url}/moto-api/config",
        data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        response.read()


@contextlib.contextmanager
def deterministic_ids(seed: int) -> Iterator[None]:
    """Ids moto generates inside the block depend on ``seed`` only (moto's own seedable
    random, moto/moto_api/_internal/__init__.py); afterwards they are random again."""
    from moto.moto_api._internal import mock_random

    mock_random.seed(seed)
    try:
        yield
    finally:
        mock_random.seed(int.from_bytes(os.urandom(8), "big"))


def reset_backends() -> None:
    """Forget every resource of every service (moto's own reset)."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


def cache_request_routing(patches: PatchSet) -> None:
    """Per request, moto lists its own package directory (an isdir per service) to route the
    request (moto/moto_server/werkzeug_app.py ``get_backend_for_host``), and inspects the
    response class's members to find the action's method (moto/core/responses.py
    ``call_action``). Neither changes while the process runs: both are computed once. (A speed
    fix only: AWS has no counterpart.)"""
    from moto import backends
    from moto.core import responses

    modules = tuple(backends.list_of_moto_modules())
    patches.set(backends, "list_of_moto_modules", lambda: modules)
    patches.set(
        responses, "method_names_from_class", functools.lru_cache(maxsize=None)(responses.method_names_from_class)
    )


def skip_debug_form_wrapping(patches: PatchSet) -> None:
    """moto runs its Flask app in debug mode (moto/moto_server/werkzeug_app.py
    ``create_backend_app``), and in debug mode Flask wraps every form request's (empty) files
    dict in a class it creates for that request, only to word a KeyError about file uploads
    better (flask/wrappers.py ``Request._load_form_data``). AWS's query protocol sends forms and
    no files: the wrapping is skipped (a speed fix only: the answer is the same)."""
    from flask import debughelpers

    patches.set(debughelpers, "attach_enctype_error_multidict", lambda request: None)
