"""aws-iam-authenticator bearer tokens: minting (what `kubestep token` prints for kubectl) and
verifying (what the authenticator on the control plane does with them).

A token is a presigned STS `GetCallerIdentity` URL whose signature also covers the header
`x-k8s-aws-id: <cluster id>`, encoded as `k8s-aws-v1.` + base64url without padding. Whoever holds
it can ask STS "who signed this?" once, within 15 minutes, and only while sending the same cluster
id: a token minted for another cluster fails STS's signature check. The format, the limits and
the checks follow kubernetes-sigs/aws-iam-authenticator `pkg/token/token.go` (`GetWithSTS`,
`FormatJSON`, `Verify`, `verifySTSHostnameFormat`); the `aws eks get-token` command presigns the
same way with botocore (awscli `customizations/eks/get_token.py`)."""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.error
import urllib.request
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from kubestep.errors import KubestepError

if TYPE_CHECKING:  # boto3 is imported by mint_token: reading and checking tokens need no SDK
    import boto3

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
STS_API_VERSION = "2011-06-15"
# STS ignores X-Amz-Expires for GetCallerIdentity: a presigned URL is valid 15 minutes after its
# X-Amz-Date. Upstream sends 60 for servers of 0.3.0 and older, which checked 0..60.
PRESIGN_EXPIRES_SECONDS = 60
MAX_EXPIRES_SECONDS = 900
TOKEN_VALIDITY = timedelta(minutes=15)
# kubectl asks for a new token a minute before STS would refuse the old one.
CREDENTIAL_LIFETIME = TOKEN_VALIDITY - timedelta(minutes=1)
MAX_TOKEN_BYTES = 4096
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
# The only query parameters a presigned GetCallerIdentity URL has (upstream `parameterWhitelist`):
# anything else could turn the verifier's GET into another STS call.
ALLOWED_PARAMETERS = frozenset(
    {
        "action",
        "version",
        "x-amz-algorithm",
        "x-amz-credential",
        "x-amz-date",
        "x-amz-expires",
        "x-amz-security-token",
        "x-amz-signature",
        "x-amz-signedheaders",
    }
)
# STS hosts in AWS's partitions: regional, FIPS and dual-stack (upstream resolves the same set
# with the SDK's endpoint resolver), and the legacy global endpoint. The verifier only ever sends
# its GET to one of these, never to a host named by the token (SSRF).
_STS_HOST = re.compile(
    r"^sts(-fips)?\.[a-z0-9]+(-[a-z0-9]+)*\."
    r"(amazonaws\.com|amazonaws\.com\.cn|api\.aws|api\.amazonwebservices\.com\.cn|c2s\.ic\.gov|sc2s\.sgov\.gov)$"
)
_GLOBAL_STS_HOST = "sts.amazonaws.com"
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1beta1", "client.authentication.k8s.io/v1")


class TokenError(KubestepError):
    """A token could not be minted or verified; the message says why."""


class InvalidToken(TokenError):
    """The token is not a presigned STS GetCallerIdentity URL this verifier accepts."""


class TokenRefused(TokenError):
    """STS did not confirm the token (bad signature, another cluster's id, expired, unreachable)."""


@dataclass(frozen=True)
class Token:
    value: str
    # When the client should stop using it (a minute before STS refuses it).
    expiration: datetime


# ---------------------------------------------------------------------------------- minting


def mint_token(
    cluster_id: str,
    *,
    session: boto3.Session | None = None,
    region: str | None = None,
    sts_endpoint: str | None = None,
    now: datetime | None = None,
) -> Token:
    """Presign `GetCallerIdentity` with the caller's AWS credentials for `cluster_id`.

    The URL goes to the regional STS endpoint of `region` (botocore's resolution, which also
    honours `AWS_ENDPOINT_URL_STS`), or to `sts_endpoint` (the local emulator)."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError

    if not cluster_id:
        raise TokenError("a cluster id is required to mint a token")
    session = session or boto3.Session()
    region = region or session.region_name
    if not region:
        raise TokenError("no AWS region to sign the token for: pass --region or set AWS_REGION")
    try:
        sts = session.client(
            "sts", region_name=region, endpoint_url=sts_endpoint, config=Config(signature_version="v4")
        )

        def add_cluster_id(request: Any, **_: Any) -> None:
            # Added before signing, so X-Amz-SignedHeaders lists it and the signature covers it.
            request.headers[CLUSTER_ID_HEADER] = cluster_id

        sts.meta.events.register("before-sign.sts.GetCallerIdentity", add_cluster_id)
        signed_at = now or datetime.now(UTC)
        url = sts.generate_presigned_url(
            "get_caller_identity", Params={}, ExpiresIn=PRESIGN_EXPIRES_SECONDS, HttpMethod="GET"
        )
    except BotoCoreError as exc:  # no credentials, bad profile, no region...
        raise TokenError(f"cannot sign the token: {exc}") from exc
    encoded = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    return Token(TOKEN_PREFIX + encoded, signed_at + CREDENTIAL_LIFETIME)


def exec_credential(token: Token, api_version: str = EXEC_API_VERSIONS[0]) -> dict[str, Any]:
    """The `ExecCredential` a client-go exec plugin prints (k8s.io/client-go/pkg/apis/
    clientauthentication), in the API version the client asked for."""
    if api_version not in EXEC_API_VERSIONS:
        raise TokenError(f"unsupported ExecCredential apiVersion {api_version!r}; expected one of {EXEC_API_VERSIONS}")
    return {
        "kind": "ExecCredential",
        "apiVersion": api_version,
        "spec": {},
        "status": {
            "expirationTimestamp": token.expiration.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "token": token.value,
        },
    }


def requested_exec_api_version(exec_info: str | None) -> str:
    """The apiVersion kubectl asks for in `KUBERNETES_EXEC_INFO` (upstream `FormatJSON` answers in
    it); v1beta1 when absent or unreadable."""
    if exec_info:
        try:
            version = json.loads(exec_info).get("apiVersion")
        except (ValueError, AttributeError):
            version = None
        if version in EXEC_API_VERSIONS:
            return version
    return EXEC_API_VERSIONS[0]


# ---------------------------------------------------------------------------------- verifying


@dataclass(frozen=True)
class PresignedCall:
    """A token decoded and checked: the URL to GET, and its lower-cased query parameters."""

    url: str
    params: dict[str, str]
    signed_at: datetime


def decode_token(token: str, *, sts_endpoint: str | None = None, now: datetime | None = None) -> PresignedCall:
    """Everything the verifier checks before it calls STS (upstream `Verify` up to the GET)."""
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken("token is too large")
    if not token.startswith(TOKEN_PREFIX):
        raise InvalidToken(f"token is missing the {TOKEN_PREFIX!r} prefix")
    body = token[len(TOKEN_PREFIX) :]
    if not re.fullmatch(r"[A-Za-z0-9_-]*", body):
        raise InvalidToken("token is not unpadded base64url")
    try:
        url = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidToken(f"token does not decode: {exc}") from exc
    parts = urlsplit(url)
    _check_host(parts.scheme, parts.netloc, sts_endpoint)
    if parts.path != "/":
        raise InvalidToken(f"unexpected path {parts.path!r} in the presigned URL")
    if parts.fragment:
        raise InvalidToken("unexpected fragment in the presigned URL")
    params: dict[str, str] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query)):
        lower = key.lower()
        if lower not in ALLOWED_PARAMETERS:
            raise InvalidToken(f"query parameter {key!r} is not allowed in the presigned URL")
        if lower in params:
            raise InvalidToken(f"duplicate query parameter {key!r} in the presigned URL")
        params[lower] = value
    if params.get("action") != "GetCallerIdentity":
        raise InvalidToken("the presigned URL is not an STS GetCallerIdentity call (Action)")
    if params.get("version") != STS_API_VERSION:
        raise InvalidToken(f"the presigned URL is not STS API version {STS_API_VERSION} (Version)")
    signed = [h.strip().lower() for h in params.get("x-amz-signedheaders", "").split(";")]
    if CLUSTER_ID_HEADER not in signed:
        raise InvalidToken(f"the client did not sign the {CLUSTER_ID_HEADER} header in the presigned URL")
    try:
        expires = int(params.get("x-amz-expires", ""))
    except ValueError:
        expires = -1
    if not 0 <= expires <= MAX_EXPIRES_SECONDS:
        raise InvalidToken(f"X-Amz-Expires must be 0..{MAX_EXPIRES_SECONDS} in the presigned URL")
    try:
        signed_at = datetime.strptime(params.get("x-amz-date", ""), AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidToken(f"X-Amz-Date must be {AMZ_DATE_FORMAT} in the presigned URL") from exc
    if (now or datetime.now(UTC)) > signed_at + TOKEN_VALIDITY:
        raise InvalidToken(f"token expired (signed {signed_at:%Y-%m-%dT%H:%M:%SZ}, valid 15 minutes)")
    return PresignedCall(url, params, signed_at)


def _check_host(scheme: str, netloc: str, sts_endpoint: str | None) -> None:
    if sts_endpoint:
        # The emulator, configured by whoever runs the verifier: that exact scheme and host:port.
        allowed = urlsplit(sts_endpoint)
        if (scheme, netloc) != (allowed.scheme, allowed.netloc):
            raise InvalidToken(f"unexpected host {netloc!r} in the presigned URL (expected {allowed.netloc})")
        return
    if scheme != "https":
        raise InvalidToken(f"unexpected scheme {scheme!r} in the presigned URL")
    if netloc != _GLOBAL_STS_HOST and not _STS_HOST.fullmatch(netloc):
        raise InvalidToken(f"unexpected host {netloc!r} in the presigned URL (not an AWS STS endpoint)")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would send the cluster id header to wherever STS's answer points.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def verify_token(
    token: str,
    cluster_id: str,
    sts_endpoint: str | None = None,
    *,
    now: datetime | None = None,
    timeout: float = 10.0,
) -> str:
    """Verify a bearer token for `cluster_id` the way aws-iam-authenticator's server does, and
    return the caller's ARN. `sts_endpoint` allows that one non-AWS endpoint (the emulator)."""
    call = decode_token(token, sts_endpoint=sts_endpoint, now=now)
    request = urllib.request.Request(
        call.url, headers={CLUSTER_ID_HEADER: cluster_id, "Accept": "application/json"}, method="GET"
    )
    handlers: list[Any] = [_NoRedirects()]
    if sts_endpoint:
        handlers.append(urllib.request.ProxyHandler({}))  # the emulator is on loopback
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise TokenRefused(f"STS GetCallerIdentity failed: {exc}") from exc
    if status != 200:
        raise TokenRefused(f"STS refused the token (HTTP {status}, {_error_code(body) or 'no error code'})")
    arn = _caller_arn(body)
    if not arn:
        raise TokenRefused("STS answered without a caller ARN")
    return arn


def _caller_arn(body: bytes) -> str | None:
    """The `Arn` of a GetCallerIdentity answer: JSON when asked with `Accept: application/json`
    (what AWS answers the authenticator), the query protocol's XML otherwise."""
    text = body.decode(errors="replace").strip()
    if text.startswith("{"):
        try:
            result = json.loads(text)["GetCallerIdentityResponse"]["GetCallerIdentityResult"]
        except (ValueError, KeyError, TypeError):
            return None
        return result.get("Arn") if isinstance(result, dict) else None
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        return None
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "Arn" and element.text:
            return element.text.strip()
    return None


def _error_code(body: bytes) -> str | None:
    text = body.decode(errors="replace").strip()
    if text.startswith("{"):
        try:
            return str(json.loads(text)["Error"]["Code"])
        except (ValueError, KeyError, TypeError):
            return None
    match = re.search(r"<Code>([^<]+)</Code>", text)
    return match.group(1) if match else None
