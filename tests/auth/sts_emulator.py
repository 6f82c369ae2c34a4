"""moto's server answering presigned STS URLs the way AWS does.

moto 5.2.5's server reads SigV4 only from the `Authorization` header: a presigned URL (the
signature in the query string, as aws-iam-authenticator tokens carry it) is routed to S3, and its
signature and access key are never looked at (moto/moto_server/werkzeug_app.py
`infer_service_region_host`, moto/core/responses.py `get_access_key`). AWS accepts the same
signature in either place ("Authenticating requests: using query parameters", Amazon S3 / IAM
SigV4 documentation) and refuses a request whose signature does not match its signed headers.
`PresignedSigV4` does that in front of moto: it recomputes the query signature with botocore's
SigV4 implementation and the secret of the moto IAM user owning the access key, answers 403
`SignatureDoesNotMatch` (as STS does) when it differs — e.g. a token minted for another cluster
id, sent with this cluster's `x-k8s-aws-id` — and otherwise hands moto the request with the
signature moved into the header, so moto routes it to STS and names the caller.

The embedded runtime (`kubestep local`) would need the same middleware to answer presigned URLs;
it lives here until the runtime takes it."""

from __future__ import annotations

import hmac
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

# Presigned GetCallerIdentity URLs are honoured for 15 minutes after X-Amz-Date.
PRESIGNED_VALIDITY = timedelta(minutes=15)


def moto_iam_secret(access_key_id: str) -> str | None:
    """The secret of a moto IAM user's access key (None for keys moto did not issue)."""
    from moto.iam.models import iam_backends

    # dict access: BackendDict's own lookups would create backends as a side effect.
    for _account, partitions in list(dict.items(iam_backends)):
        for _partition, backend in list(dict.items(partitions)):
            user = backend.get_user_from_access_key_id(access_key_id)
            for key in getattr(user, "access_keys", []) if user else []:
                if key.access_key_id == access_key_id:
                    return str(key.secret_access_key)
    return None


class PresignedSigV4:
    """WSGI middleware: authenticate query-string SigV4 requests, then pass them on header-signed."""

    def __init__(self, app: Callable[..., Any], secret_for: Callable[[str], str | None] = moto_iam_secret) -> None:
        self.app = app
        self.secret_for = secret_for
        self.refused: list[str] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        pairs = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        params = dict(pairs)
        if "X-Amz-Signature" not in params or environ.get("HTTP_AUTHORIZATION"):
            return self.app(environ, start_response)
        problem = self._check(environ, pairs, params)
        if problem:
            code, message = problem
            self.refused.append(code)
            body = (
                '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                f"<Code>{code}</Code><Message>{escape(message)}</Message></Error>"
                f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
            ).encode()
            start_response("403 Forbidden", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
            return [body]
        environ["HTTP_AUTHORIZATION"] = (
            f"AWS4-HMAC-SHA256 Credential={params['X-Amz-Credential']}, "
            f"SignedHeaders={params['X-Amz-SignedHeaders']}, Signature={params['X-Amz-Signature']}"
        )
        return self.app(environ, start_response)

    def _check(self, environ: dict[str, Any], pairs: list[tuple[str, str]], params: dict[str, str]) -> tuple | None:
        try:
            access_key, _day, region, service, _terminator = params["X-Amz-Credential"].split("/")
            signed_at = datetime.strptime(params["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            signed_headers = params["X-Amz-SignedHeaders"].split(";")
        except (KeyError, ValueError):
            return "IncompleteSignature", "The request signature does not conform to AWS standards."
        secret = self.secret_for(access_key)
        if secret is None:
            return "InvalidClientTokenId", "The security token included in the request is invalid."
        if datetime.now(UTC) > signed_at + PRESIGNED_VALIDITY:
            return "ExpiredToken", "The security token included in the request is expired"
        headers = {}
        for name in signed_headers:
            value = environ.get("HTTP_HOST" if name == "host" else "HTTP_" + name.upper().replace("-", "_"))
            if value is None:
                return "SignatureDoesNotMatch", f"Signed header {name} is missing from the request."
            headers[name] = value
        # The canonical request as the signer built it: the same query (but the signature), the
        # received values of the signed headers, an unsigned payload (botocore's SigV4QueryAuth).
        request = AWSRequest(
            method=environ["REQUEST_METHOD"],
            url=f"http://{headers.get('host', 'localhost')}{environ.get('PATH_INFO') or '/'}",
            params={k: v for k, v in pairs if k != "X-Amz-Signature"},
            headers=headers,
        )
        request.context["timestamp"] = params["X-Amz-Date"]
        auth = SigV4QueryAuth(Credentials(access_key, secret), service, region)
        string_to_sign = auth.string_to_sign(request, auth.canonical_request(request))
        expected = auth.signature(string_to_sign, request)
        if not hmac.compare_digest(expected, params["X-Amz-Signature"]):
            return (
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        return None


@contextmanager
def serve() -> Iterator[tuple[str, PresignedSigV4]]:
    """moto's server (every service, as the embedded runtime serves it) on a loopback port, with
    presigned URLs authenticated. Yields its URL and the middleware (which records refusals)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    app = PresignedSigV4(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", app
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
