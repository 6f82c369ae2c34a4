"""The emulator's requests of AWS's JSON and query protocols, answered by moto's response classes
without Flask in between.

moto's server routes every request through ``DomainDispatcherApplication`` (moto/moto_server/
werkzeug_app.py: the service and region inferred from the request's SigV4 credential scope and
``X-Amz-Target``, then a Flask app per service), and Flask (a request and an application context,
its URL map, flask-cors, the response) calls moto's view (moto/core/utils.py
``convert_to_flask_response``), which calls the service's handler: ~0.4 ms of the emulator's CPU
a request outside moto's response classes, where the handler itself often takes less. A request
of these protocols is a POST to ``/``, which each service maps to one handler (its
``flask_paths["/"]``, the rule Flask would match): here the service is inferred as the dispatcher
does (once per credential scope and target prefix), and the handler is called as moto's view calls
it, with the request Flask would have made (moto's ``BackendRequest`` over the same WSGI environ,
so the URL, the region and the account are the server's), and the answer is built as Flask builds
it (the view's ``Response``, werkzeug's ``HTTPException`` answer, flask-cors's
``Access-Control-Allow-Origin``). moto's own in-process path (moto/core/botocore_stubber.py
``BotocoreStubber.process_request``, what ``mock_aws`` runs) is the same idea, but would answer
differently over HTTP: its request carries the AWS domain's URL (SQS's queue URLs are built from
it) and is not a server's (moto then adds a second ``Date``).

Everything else (S3, Lambda, the moto API, REST services, anything unrecognised) goes to Flask as
before (a speed fix only: each answer is the same, ``tests/unit/test_direct_dispatch.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

# moto's backends of the services whose JSON- or query-protocol calls are answered directly: what
# kubestep's Lambda workers, its stand-ins and its tests call (kubestep/aws, kubestep_local), S3
# and Lambda aside (REST protocols with their own routing; Lambda Invoke is not even gated).
DIRECT_BACKENDS = frozenset(
    {
        "autoscaling",
        "cloudformation",
        "dynamodb",
        "ec2",
        "elb",
        "elbv2",
        "events",
        "iam",
        "kms",
        "logs",
        "resourcegroupstaggingapi",
        "secretsmanager",
        "servicequotas",
        "sqs",
        "ssm",
        "stepfunctions",
        "sts",
    }
)
# Request headers after which flask-cors answers more than ``Access-Control-Allow-Origin: *``
# (flask_cors/core.py ``get_cors_headers``): such a request goes to Flask.
_CORS_REQUEST_HEADERS = ("HTTP_ORIGIN", "HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK")
_UNROUTED = object()

Handler = Callable[..., Any]
StartResponse = Callable[..., Any]


class DirectDispatch:
    """``route(environ)`` the handler moto's Flask app would call for a request, or None (Flask
    answers it); ``answer(handler, environ, start_response)`` that handler's answer, as a WSGI
    application's."""

    def __init__(self, dispatcher: Any) -> None:
        self._dispatcher = dispatcher  # moto's DomainDispatcherApplication: its inference, reused
        self._handlers: dict[tuple[str, str, str | None], Any] = {}
        self._lock = threading.Lock()

    def route(self, environ: dict[str, Any]) -> Handler | None:
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO") != "/":
            return None
        authorization = environ.get("HTTP_AUTHORIZATION")
        if not authorization or any(name in environ for name in _CORS_REQUEST_HEADERS):
            return None
        # The dispatcher infers the host from the credential scope's region and service and, for
        # DynamoDB, the target's API version: they are the key. A request signed otherwise
        # (not SigV4: the dispatcher guesses S3) goes to Flask.
        credential = authorization.split(",", 1)[0].split()
        scope = credential[1].split("/") if len(credential) == 2 else ()
        if len(scope) != 5:
            return None
        target = environ.get("HTTP_X_AMZ_TARGET")
        key = (scope[2], scope[3], target.split(".", 1)[0] if target else None)
        handler = self._handlers.get(key, _UNROUTED)
        if handler is _UNROUTED:
            with self._lock:
                handler = self._handlers[key] = self._resolve(environ)
        return handler

    def _resolve(self, environ: dict[str, Any]) -> Handler | None:
        """``DomainDispatcherApplication.get_application``'s choice of backend, and that backend's
        handler of ``/`` (moto/moto_server/werkzeug_app.py ``create_backend_app``)."""
        from moto import backends
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.core.base_backend import BackendDict

        try:
            host = self._dispatcher.infer_service_region_host(environ, "/")
        except (KeyError, IndexError, ValueError):
            return None
        name = self._dispatcher.get_backend_for_host(host) if host else None
        if name not in DIRECT_BACKENDS:
            return None
        backend_dict = backends.get_backend(name)
        if isinstance(backend_dict, BackendDict):
            per_region = backend_dict[DEFAULT_ACCOUNT_ID]
            backend = per_region["us-east-1"] if "us-east-1" in per_region else per_region["aws"]
        else:
            backend = backend_dict["global"]
        return backend.flask_paths.get("/")

    def answer(self, handler: Handler, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """What moto's Flask app answers, without Flask: moto/core/utils.py
        ``convert_to_flask_response.__call__``, flask/app.py ``Flask.full_dispatch_request`` in
        debug mode (an ``HTTPException`` is answered, a ``BadRequestKeyError`` and any other
        exception propagate) and flask-cors's ``Access-Control-Allow-Origin``."""
        from botocore.exceptions import ClientError
        from flask import Response
        from moto.moto_api import recorder
        from moto.moto_server.werkzeug_app import BackendRequest
        from werkzeug.exceptions import BadRequestKeyError, HTTPException

        request = BackendRequest(environ)
        try:
            try:
                recorder._record_request(request)
                result = handler(request, request.raw_url, dict(request.headers))
            except ClientError as exc:
                result = 400, {}, exc.response["Error"]["Message"]
        except BadRequestKeyError:
            raise
        except HTTPException as error:
            response = Response.force_type(error, environ)
        else:
            if len(result) == 3:
                status, headers, content = result
            else:
                status, headers, content = 200, {}, result
            response = Response(response=content, status=status, headers=headers)
            if request.method == "HEAD" and "content-length" in headers:
                response.headers["Content-Length"] = headers["content-length"]
        _allow_any_origin(response)
        return response(environ, start_response)


def _allow_any_origin(response: Any) -> None:
    """flask-cors's answer to a request without ``Origin`` (moto's ``CORS(backend_app)`` with its
    defaults: origins ``*``, ``always_send``; flask_cors/extension.py ``cors_after_request``)."""
    from moto.settings import DISABLE_GLOBAL_CORS

    if not DISABLE_GLOBAL_CORS and not response.headers.get("Access-Control-Allow-Origin"):
        response.headers.add("Access-Control-Allow-Origin", "*")
