"""boto3 clients for the runtime's own stand-ins (the instance simulator, the EventBridge stand-in)
whose requests reach moto inside this process, without a trip through loopback HTTP.

The stand-ins run in the runtime's process, so every request they sent to the emulator's HTTP
endpoint cost that one process (one GIL) twice over: urllib3 and ``http.client`` sending it and
reading the answer, then the server thread parsing the HTTP request, werkzeug's WSGI environ and
Flask's routing, request and response objects. Here botocore still builds, validates and signs
each request and parses each answer against the service model (the call recorder and the IAM
check see the same calls), but the request goes to moto's own in-process route, the one every
``mock_aws`` user takes (moto/core/botocore_stubber.py ``BotocoreStubber.process_request``:
the URL matched to a service, the service's URL map to its response class), under the same
state gate and request lock the HTTP server takes. (A speed fix only: the answers are moto's.)

The Lambda workers and the user's clients (the CLI, the tests, the API stand-in) still go over
HTTP: they stand for other processes.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit
from wsgiref.handlers import SimpleHandler

import boto3
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config

from .core import GATE, REQUEST_LOCK, gated_path

LOG = logging.getLogger("kubestep_local.moto_compat")


@functools.cache
def endpoint_of(service: str, region: str) -> str:
    """The AWS endpoint moto's URL patterns know the service by: its endpoint prefix in the
    region (the standard regional form every service kubestep's stand-ins call accepts). Cached:
    a fresh botocore session parses the service's model (EC2's is megabytes), and the simulator
    makes its clients per thread."""
    import botocore.session

    prefix = botocore.session.get_session().get_service_model(service).endpoint_prefix
    return f"https://{prefix}.{region}.amazonaws.com"


def client(service: str, region: str, config: Config | None = None) -> Any:
    """A boto3 client of `service` in `region` whose requests moto serves in this process."""
    made = boto3.client(service, **_settings(service, region, config))
    serve_in_process(made)
    return made


def resource(service: str, region: str) -> Any:
    """A boto3 resource of `service` in `region` whose requests moto serves in this process."""
    made = boto3.resource(service, **_settings(service, region, None))
    serve_in_process(made.meta.client)
    return made


def _settings(service: str, region: str, config: Config | None) -> dict[str, Any]:
    return {
        "endpoint_url": endpoint_of(service, region),
        "region_name": region,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "config": _path_style(service, config),
    }


def _path_style(service: str, config: Config | None) -> Config | None:
    # S3 path-style: the bucket in the path of s3.<region>.amazonaws.com, a URL moto's S3
    # pattern matches whatever the bucket's name.
    if service != "s3":
        return config
    path_style = Config(s3={"addressing_style": "path"})
    return path_style if config is None else config.merge(path_style)


def serve_in_process(made: Any) -> None:
    """Answer `made`'s requests in this process: botocore's ``before-send`` event takes the first
    answer a handler returns instead of sending the request (what ``mock_aws`` registers)."""
    made.meta.events.register_first("before-send", _send)


def _send(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
    from moto.core.botocore_stubber import MockRawResponse

    try:
        if gated_path(request.method or "", urlsplit(request.url).path):
            with GATE.shared(), REQUEST_LOCK:
                answer = _answer(request)
        else:
            answer = _answer(request)
    except Exception:  # noqa: BLE001 - a moto crash is the bare 500 the HTTP server answers it with
        LOG.exception("moto crashed serving %s %s in process", request.method, request.url)
        answer = (500, {"Content-Type": "text/plain"}, SimpleHandler.error_body)
    status, headers, body = answer
    return AWSResponse(request.url, status, headers, MockRawResponse(body))


def _answer(request: AWSPreparedRequest) -> tuple[int, Any, Any]:
    """moto's answer, as ``BotocoreStubber.process_request`` gives it, with the route looked up
    once per URL (it tries ~180 services' URL patterns in turn, then the service's URL map)."""
    from moto.core.exceptions import HTTPException
    from moto.core.request import normalize_request
    from moto.moto_api import recorder

    parsed = urlsplit(request.url)
    respond = _route(f"{parsed.scheme}://{parsed.netloc}{parsed.path}")
    if respond is None:  # no service of moto's matches: as its server answers an unknown route
        return 404, {}, b""
    normalized = normalize_request(request)
    try:
        recorder._record_request(normalized)
        return respond(normalized, normalized.raw_url, normalized.headers)
    except HTTPException as error:
        return error.code, error.get_headers(), error.get_body()


@functools.lru_cache(maxsize=1024)
def _route(clean_url: str) -> Callable[..., Any] | None:
    """The response method moto's in-process route calls for `clean_url` (the URL without its
    query): the first of the matching services' URL maps that matches (moto/core/
    botocore_stubber.py ``process_request``, whose own loop this is). A service's URL map is its
    response classes' dispatchers, the same for every account and region."""
    import moto.backend_index as backend_index
    import moto.backends as backends
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.base_backend import BackendDict

    for service, pattern in backend_index.backend_url_patterns:
        if not pattern.match(clean_url):
            continue
        backend_dict = backends.get_backend(service)  # type: ignore[call-overload]
        if isinstance(backend_dict, BackendDict):
            regions = backend_dict[DEFAULT_ACCOUNT_ID]
            backend = regions["us-east-1"] if "us-east-1" in regions else regions["aws"]
        else:
            backend = backend_dict["global"]
        for url, respond in backend.urls.items():
            if re.compile(url).match(clean_url):
                return respond
    return None
