"""moto's HTTP server on loopback, behind the state gate; its configuration switch for ASL
execution; its id generator and reset; and the per-request work it does again and again."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
import re
import socket
import sys
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any
from wsgiref.handlers import SimpleHandler

from kubestep_local.moto_compat.core import GATE, REQUEST_LOCK, PatchSet, StateGate, gated_path
from kubestep_local.moto_compat.direct_dispatch import DirectDispatch

# Loggers of moto's that are noisy at their default levels: werkzeug logs one INFO line per
# request; the interpreter logs expected task failures (ResourcePending retries) at ERROR with
# the whole state's repr, which the execution history holds anyway.
NOISY_LOGGERS = {
    "werkzeug": logging.WARNING,
    "moto.stepfunctions.parser.asl.component.eval_component": logging.CRITICAL,
}

REQUEST_LOG = logging.getLogger("werkzeug")


class ServerHandle:
    """moto's WSGI application on a werkzeug server, serving in a daemon thread."""

    def __init__(self, server: Any, thread: threading.Thread, connections: OpenConnections) -> None:
        self._server = server
        self._thread = thread
        self._connections = connections

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def connections(self) -> OpenConnections:
        return self._connections

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self._server.server_close()
        # Kept-alive connections are served by their own threads, which the listener's shutdown
        # does not reach: a client holding one would otherwise still be answered.
        self._connections.close_all()


class OpenConnections:
    """The server's accepted connections that are still open (each has a thread of its own)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.accepted = 0

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)
            self.accepted += 1

    def discard(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def close_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sockets)


class _ResponseWriter(SimpleHandler):
    """The standard library's WSGI response writer, as an HTTP/1.1 origin server: the status
    line, Date and Server, the body, a Content-Length when the application's answer is one
    block. An answer without a length ends by closing the connection."""

    http_version = "1.1"
    origin_server = True
    os_environ: dict[str, str] = {}  # the process's environment is no part of a request's
    keep_alive = True
    status_code = "-"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unsent: list[bytes] = []

    def _write(self, data: bytes) -> None:
        # The status line, the headers and the body leave in one send (``_flush``), not one each.
        self._unsent.append(data)

    def _flush(self) -> None:
        if self._unsent:
            data, self._unsent = b"".join(self._unsent), []
            self.stdout.write(data)

    def send_preamble(self) -> None:
        self.status_code = self.status.split(" ", 1)[0]
        super().send_preamble()

    def cleanup_headers(self) -> None:
        super().cleanup_headers()
        if "Content-Length" not in self.headers:
            self.headers["Connection"] = "close"
            self.keep_alive = False

    def handle_error(self) -> None:
        self.keep_alive = False
        super().handle_error()


@functools.cache
def keep_alive_request_handler() -> type:
    """moto's request handler (werkzeug's, with moto's header handling) answering HTTP/1.1 with
    keep-alive. werkzeug's development server closes the connection after every answer
    (werkzeug/serving.py ``run_wsgi``: "Always close the connection"), so every AWS call paid for
    a new TCP connection and a new thread; botocore pools its connections and would reuse them.
    werkzeug closes because, after the application, it drains whatever the socket still holds,
    which on a kept-alive connection would be the next request. Here the request body is read
    whole (to its Content-Length) before the application runs and the answer is written by the
    standard library's WSGI handler, so nothing needs draining. A chunked request body is left to
    werkzeug, connection close and all. (A speed fix only: each answer is the same.)"""
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class KeepAliveRequestHandler(MotoRequestHandler):
        protocol_version = "HTTP/1.1"
        # A response's headers and body go out in two writes: without TCP_NODELAY the second
        # waits for the client's delayed ACK (40 ms) on a kept-alive connection.
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            self.server.open_connections.add(self.connection)

        def finish(self) -> None:
            self.server.open_connections.discard(self.connection)
            super().finish()

        def run_wsgi(self) -> None:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                super().run_wsgi()
                return
            environ = self.make_environ()
            length = int(self.headers.get("Content-Length") or 0)
            body = io.BytesIO(self.rfile.read(length) if length > 0 else b"")
            writer = _ResponseWriter(body, self.wfile, sys.stderr, environ, multithread=True)
            try:
                writer.run(self.server.app)
                writer._flush()  # an answer without a body is not flushed by wsgiref
            except (ConnectionError, TimeoutError):
                self.close_connection = True
                return
            if not writer.keep_alive:
                self.close_connection = True
            if REQUEST_LOG.isEnabledFor(logging.INFO):  # werkzeug's line per request, when asked for
                self.log_request(writer.status_code)

    return KeepAliveRequestHandler


def start_server(host: str, port: int, gate: StateGate = GATE, *, direct_dispatch: bool = True) -> ServerHandle:
    """Bind ``host:port`` in the calling thread (so a port in use raises OSError at once) and serve
    moto there. moto's ``ThreadedMotoServer`` binds inside its thread and waits forever when the
    port is taken (moto/moto_server/threaded_moto_server.py:24-41), so it is not used.
    ``direct_dispatch``: answer JSON- and query-protocol requests without Flask
    (``DirectDispatch``); without it every request goes through Flask, as moto's server does."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    moto_app = DomainDispatcherApplication(create_backend_app)
    direct = DirectDispatch(moto_app) if direct_dispatch else None

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if not gated_path(environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")):
            return moto_app(environ, start_response)
        handler = direct.route(environ) if direct is not None else None
        with gate.shared(), REQUEST_LOCK:
            # Materialize the body inside the gate: the backend call happens in here.
            if direct is not None and handler is not None:
                return list(direct.answer(handler, environ, start_response))
            return list(moto_app(environ, start_response))

    server = make_server(host, port, app, threaded=True, request_handler=keep_alive_request_handler())
    server.daemon_threads = True
    server.open_connections = connections = OpenConnections()
    thread = threading.Thread(target=server.serve_forever, name="kubestep-local-moto", daemon=True)
    thread.start()
    return ServerHandle(server, thread, connections)


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


def draw_random_strings_without_choice(patches: PatchSet) -> None:
    """moto draws each character of a random string with ``Random.choice`` (moto/moto_api/
    _internal/moto_random.py ``MotoRandom.get_random_string``): two Python calls a character,
    and every answer carries a 52-character request id drawn so (moto/utilities/aws_headers.py
    ``gen_amzn_requestid_long``), 28,000 calls a create. The same draws are made here from the
    same generator, inline: ``choice`` picks ``seq[_randbelow(len(seq))]`` and ``_randbelow``
    draws ``getrandbits(n.bit_length())`` until the number is below n (random.py
    ``_randbelow_with_getrandbits``), so the string and the generator's state after it are the
    same, seeded (``deterministic_ids``) or not. A Python whose ``Random`` draws otherwise is left
    to moto (a speed fix only: the ids are the same)."""
    import random
    import string

    from moto.moto_api._internal.moto_random import MotoRandom

    if MotoRandom._randbelow is not getattr(random.Random, "_randbelow_with_getrandbits", None):
        return
    if MotoRandom.choice is not random.Random.choice:
        return

    def get_random_string(self: Any, length: int = 20, include_digits: bool = True, lower_case: bool = False) -> str:
        pool = string.ascii_letters + string.digits if include_digits else string.ascii_letters
        size, getrandbits = len(pool), self.getrandbits
        bits = size.bit_length()
        drawn = []
        for _ in range(length):
            index = getrandbits(bits)
            while index >= size:
                index = getrandbits(bits)
            drawn.append(pool[index])
        text = "".join(drawn)
        return text.lower() if lower_case else text

    patches.set(MotoRandom, "get_random_string", get_random_string)


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


def look_attribute_aliases_up_once(patches: PatchSet) -> None:
    """To find the value of each member of an answer's output shape, moto's serializer asks six
    alias providers, built anew for every member of every item, which names the member may have
    on the object (moto/core/serialize.py ``XFormedAttributePicker.get_possible_keys``): a fifth
    of the serializer's time. The names depend only on the member's name, its shape (botocore's
    shapes of one service model are built once: ``get_service_model`` is cached) and the object's
    class (its ``Meta`` aliases and its class name), so they are worked out once per combination;
    each value is still read from the object every time (a speed fix only: the answer is the
    same)."""
    from moto.core.serialize import XFormedAttributePicker

    original = XFormedAttributePicker.get_possible_keys
    known: dict[tuple[Any, ...], tuple[str, ...]] = {}

    def get_possible_keys(self: Any, context: Any) -> tuple[str, ...]:
        key = (tuple(self.alias_providers), type(context.obj), context.key, context.shape)
        names = known.get(key)
        if names is None:
            names = known[key] = tuple(original(self, context))
        return names

    patches.set(XFormedAttributePicker, "get_possible_keys", get_possible_keys)


def parse_query_parameters_from_a_dict(patches: PatchSet) -> None:
    """For every structure it may descend into, moto's query-protocol parser (EC2, Auto Scaling,
    ELB, IAM) asks whether any request parameter starts with the structure's prefix, walking all
    of the request's parameters each time through werkzeug's CombinedMultiDict (moto/core/
    parse.py ``QueryParser._gonna_recurse``): calls with lists of structures (security group
    rules, tags, filters) pay for it once per element and parameter. The parser reads only each
    parameter's first value (``.get``) and the names, so it gets them as a plain dict, built once
    per request (a speed fix only: the parse is the same)."""
    from moto.core.parse import QueryParser

    original = QueryParser._do_parse

    def _do_parse(self: Any, request_dict: Any, shape: Any) -> Any:
        values = request_dict.get("values")
        if values is not None and type(values) is not dict:
            request_dict = {**request_dict, "values": dict(values.items())}
        return original(self, request_dict, shape)

    patches.set(QueryParser, "_do_parse", _do_parse)


def find_response_transformers_once(patches: PatchSet) -> None:
    """For every member of every item of an answer, moto's serializer builds the member's dotted
    path and tests it with ``endswith`` against each of the service's response transformers
    (moto/core/serialize.py ``AttributePicker.__call__``; EC2 has twenty): a DescribeInstances
    answer tests thousands of paths twenty times each. Which transformer a path ends with depends
    only on the path and the transformers' paths, so it is worked out once per path; the
    transformer itself is still looked up and applied to each value. moto adds a transformer at
    run time (CreateVpcPeeringConnection): a table whose paths changed is worked out anew (a
    speed fix only: the answer is the same)."""
    from moto.core import serialize

    missing = serialize.MISSING
    # id of a transformers dict -> (the dict, its paths when last seen, path -> transformer path)
    matches: dict[int, tuple[dict[str, Any], tuple[str, ...], dict[str, str | None]]] = {}
    lock = threading.Lock()

    def transformer_path(transformers: dict[str, Any], key_path: str) -> str | None:
        known = matches.get(id(transformers))
        if known is None or known[0] is not transformers or len(known[1]) != len(transformers):
            with lock:
                known = matches[id(transformers)] = (transformers, tuple(transformers), {})
        found = known[2]
        if key_path not in found:
            found[key_path] = next((path for path in known[1] if key_path.endswith(path)), None)
        return found[key_path]

    def __call__(self: Any, context: Any) -> Any:
        obj, get_value = context.obj, serialize.get_value  # read_plain_dict_members_directly's, once applied
        for possible_key in self.get_possible_keys(context):
            value = get_value(obj, possible_key, missing)
            if value is not missing:
                break
        else:
            value = None
        transformers = self.response_transformers
        if transformers:
            path = transformer_path(transformers, f"{context.key_path}.{context.key}")
            if path is not None:
                value = transformers[path](value)
        return value

    patches.set(serialize.AttributePicker, "__call__", __call__)


def validate_xml_names_once(patches: PatchSet) -> None:
    """moto writes its XML answers (EC2, Auto Scaling, ELB, IAM) with xmltodict, which checks
    each element's name for characters XML forbids before writing it (xmltodict.py
    ``_validate_name``, called by ``_emit`` for every element): an answer checks the same few
    hundred member names thousands of times.
    A name that passed once passes again, so it is remembered; a name never seen, or one that
    failed, is checked as before (a speed fix only: the answer, or the error, is the same)."""
    import xmltodict

    original = getattr(xmltodict, "_validate_name", None)
    if original is None:  # an xmltodict that does not check names: nothing is repeated
        return
    valid: set[tuple[str, str]] = set()

    def _validate_name(value: Any, kind: str) -> None:
        if type(value) is str and (value, kind) in valid:
            return
        original(value, kind)
        if type(value) is str:
            valid.add((value, kind))

    patches.set(xmltodict, "_validate_name", _validate_name)


# Timestamp texts moto's resources hold (one per resource: a create's groups, instances...).
MAX_PARSED_TIMESTAMPS = 65536
# A whole date and time, with or without fraction and offset: dateutil reads it without
# "today" (the default it fills missing parts from) or the local zone (no offset means UTC).
_WHOLE_ISO_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?")


def parse_each_timestamp_text_once(patches: PatchSet) -> None:
    """moto keeps many timestamps as text (an Auto Scaling group's CreatedTime, an instance's
    launch time) and its serializer parses the text again at every answer that carries it
    (moto/core/serialize.py ``TimestampSerializer._convert_timestamp_to_str``, through
    botocore's ``parse_to_aware_datetime``, which tries the text as a number, then as a date
    with dateutil): 70 us a timestamp, thousands of them per create's describes. A whole ISO 8601
    date and time parses to the same aware datetime (immutable) every time, so each such text
    is parsed once; any other value (a datetime, a number, a partial date) is parsed as before
    (a speed fix only: the answer is the same)."""
    from moto.core import serialize

    original = serialize.parse_to_aware_datetime
    parsed: dict[str, Any] = {}

    def parse_to_aware_datetime(value: Any) -> Any:
        if type(value) is not str or not _WHOLE_ISO_TIMESTAMP.fullmatch(value):
            return original(value)
        found = parsed.get(value)
        if found is None:
            found = original(value)
            if len(parsed) >= MAX_PARSED_TIMESTAMPS:
                parsed.clear()
            parsed[value] = found
        return found

    patches.set(serialize, "parse_to_aware_datetime", parse_to_aware_datetime)


def read_plain_dict_members_directly(patches: PatchSet) -> None:
    """moto's serializer reads every member of an answer's shape from the answer's object, each
    under two to four possible names (moto/core/utils.py ``get_value``): on a plain dict by
    indexing it and catching the KeyError of each name it lacks. Step Functions' history events
    are dicts whose shape has some sixty optional members, so GetExecutionHistory raised and
    caught tens of thousands of KeyErrors an answer. A plain dict (not a subclass, which could
    answer a missing key) is read with ``dict.get`` under a name that is not a dotted path (moto
    walks those); anything else as before (a speed fix only: the answer is the same)."""
    from moto.core import serialize

    original = serialize.get_value

    def get_value(obj: Any, key: Any, default: Any = serialize.MISSING) -> Any:
        if type(obj) is dict and type(key) is str and "." not in key:
            return obj.get(key, default)
        return original(obj, key, default)

    patches.set(serialize, "get_value", get_value)
