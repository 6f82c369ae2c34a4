"""The token format against aws-iam-authenticator's (pkg/token/token.go): decode -> presigned
URL -> query and signed headers; the verifier's checks before it calls STS (each refusal is one
upstream `Verify` refuses); the ExecCredential kubectl reads. STS itself answers in
tests/auth/test_reaching_the_cluster.py."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import boto3
import pytest

from kubestep.auth import token as tokens
from kubestep.auth.token import InvalidToken, TokenError, decode_token, exec_credential, mint_token

CLUSTER_ID = "k3x9abcd"
SIGNED_AT = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def session(token: str | None = None) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        aws_session_token=token,
        region_name="eu-west-1",
    )


def url_of(value: str) -> str:
    body = value.removeprefix(tokens.TOKEN_PREFIX)
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def encode(url: str) -> str:
    return tokens.TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


@pytest.fixture
def minted(monkeypatch: pytest.MonkeyPatch) -> tokens.Token:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS"):
        monkeypatch.delenv(name, raising=False)
    return mint_token(CLUSTER_ID, session=session())


def test_token_is_prefixed_unpadded_base64url_of_a_presigned_get_caller_identity(minted: tokens.Token) -> None:
    assert minted.value.startswith("k8s-aws-v1.")
    body = minted.value.removeprefix("k8s-aws-v1.")
    assert "=" not in body and "+" not in body and "/" not in body
    parts = urlsplit(url_of(minted.value))
    # The regional endpoint of the session's region, path "/", GET's query carries everything.
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "sts.eu-west-1.amazonaws.com", "/")
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["Action"] == "GetCallerIdentity"
    assert query["Version"] == "2011-06-15"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "60"
    key, day, region, service, terminator = query["X-Amz-Credential"].split("/")
    assert (key, region, service, terminator) == ("AKIDEXAMPLE", "eu-west-1", "sts", "aws4_request")
    assert query["X-Amz-Date"].startswith(day)
    assert query["X-Amz-SignedHeaders"].split(";") == ["host", "x-k8s-aws-id"]
    assert len(query["X-Amz-Signature"]) == 64
    # kubectl refreshes a minute before STS's 15 minutes run out.
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert timedelta(minutes=13, seconds=58) <= minted.expiration - signed_at <= timedelta(minutes=14, seconds=2)


def test_signature_covers_the_cluster_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_STS", raising=False)
    first = urlsplit(url_of(mint_token("cluster-a", session=session()).value)).query
    second = urlsplit(url_of(mint_token("cluster-b", session=session()).value)).query
    signature = [parse_qs(q)["X-Amz-Signature"][0] for q in (first, second)]
    assert signature[0] != signature[1]


def test_session_token_travels_in_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_STS", raising=False)
    query = parse_qs(urlsplit(url_of(mint_token(CLUSTER_ID, session=session("FQoGZXIvYXdzEXAMPLE")).value)).query)
    assert query["X-Amz-Security-Token"] == ["FQoGZXIvYXdzEXAMPLE"]


def test_given_endpoint_and_botocore_endpoint_setting_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = mint_token(CLUSTER_ID, session=session(), sts_endpoint="http://127.0.0.1:4566")
    assert url_of(explicit.value).startswith("http://127.0.0.1:4566/?Action=GetCallerIdentity&")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:4599")
    assert url_of(mint_token(CLUSTER_ID, session=session()).value).startswith("http://127.0.0.1:4599/?")


def test_other_partitions_use_their_regional_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_STS", raising=False)
    minted = mint_token(CLUSTER_ID, session=session(), region="cn-north-1")
    assert urlsplit(url_of(minted.value)).netloc == "sts.cn-north-1.amazonaws.com.cn"
    decode_token(minted.value)  # and the verifier accepts that host


def test_minting_needs_a_cluster_id_a_region_and_credentials() -> None:
    with pytest.raises(TokenError, match="cluster id"):
        mint_token("", session=session())
    no_region = boto3.Session(aws_access_key_id="a", aws_secret_access_key="b")
    if no_region.region_name is None:
        with pytest.raises(TokenError, match="region"):
            mint_token(CLUSTER_ID, session=no_region)


def test_decode_accepts_a_fresh_token_and_returns_its_call(minted: tokens.Token) -> None:
    call = decode_token(minted.value)
    assert call.params["action"] == "GetCallerIdentity"
    assert call.url == url_of(minted.value)


def _query(**overrides: str | None) -> dict[str, str]:
    base = {
        "Action": "GetCallerIdentity",
        "Version": "2011-06-15",
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": "AKIDEXAMPLE/20261130/us-east-1/sts/aws4_request",
        "X-Amz-Date": SIGNED_AT.strftime("%Y%m%dT%H%M%SZ"),
        "X-Amz-Expires": "60",
        "X-Amz-SignedHeaders": "host;x-k8s-aws-id",
        "X-Amz-Signature": "0" * 64,
    }
    base.update({k.replace("_", "-"): v for k, v in overrides.items() if v is not None})
    for key in [k for k, v in overrides.items() if v is None]:
        base.pop(key.replace("_", "-"))
    return base


def crafted(host: str = "https://sts.us-east-1.amazonaws.com", path: str = "/", **overrides: str | None) -> str:
    return encode(f"{host}{path}?{urlencode(_query(**overrides))}")


NOW = SIGNED_AT + timedelta(minutes=1)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("k8s-aws-v2." + crafted().removeprefix("k8s-aws-v1."), "prefix"),
        ("k8s-aws-v1.not*base64", "base64url"),
        ("k8s-aws-v1." + "A" * 5000, "too large"),
        (crafted(host="http://sts.us-east-1.amazonaws.com"), "scheme"),
        (crafted(host="https://evil.example.com"), "not an AWS STS endpoint"),
        (crafted(host="https://sts.us-east-1.amazonaws.com.evil.example"), "not an AWS STS endpoint"),
        (crafted(host="https://sts.us-east-1.amazonaws.com:8443"), "not an AWS STS endpoint"),
        (crafted(host="https://user@sts.us-east-1.amazonaws.com"), "not an AWS STS endpoint"),
        (crafted(host="https://169.254.169.254"), "not an AWS STS endpoint"),
        (crafted(path="/admin"), "path"),
        (crafted(Action="AssumeRole"), "Action"),
        (crafted(Version="2099-01-01"), "Version"),
        (crafted(RoleArn="arn:aws:iam::1:role/x"), "not allowed"),
        (crafted(X_Amz_SignedHeaders="host"), "x-k8s-aws-id"),
        (crafted(X_Amz_Expires="901"), "X-Amz-Expires"),
        (crafted(X_Amz_Expires="soon"), "X-Amz-Expires"),
        (crafted(X_Amz_Date="yesterday"), "X-Amz-Date"),
        (crafted(X_Amz_Date=(SIGNED_AT - timedelta(minutes=15)).strftime("%Y%m%dT%H%M%SZ")), "expired"),
        (encode("https://sts.us-east-1.amazonaws.com/?" + urlencode(_query()) + "&action=GetCallerIdentity"), "dup"),
    ],
)
def test_verifier_refuses_before_calling_sts(value: str, reason: str) -> None:
    with pytest.raises(InvalidToken, match=reason):
        decode_token(value, now=NOW)


@pytest.mark.parametrize(
    "host",
    [
        "https://sts.amazonaws.com",
        "https://sts.us-east-1.amazonaws.com",
        "https://sts-fips.us-gov-west-1.amazonaws.com",
        "https://sts.eu-west-1.api.aws",
        "https://sts.cn-northwest-1.amazonaws.com.cn",
    ],
)
def test_verifier_accepts_aws_sts_hosts(host: str) -> None:
    assert decode_token(crafted(host=host), now=NOW).params["action"] == "GetCallerIdentity"


def test_emulator_endpoint_is_accepted_only_when_configured() -> None:
    emulator = "http://127.0.0.1:4566"
    value = crafted(host=emulator)
    with pytest.raises(InvalidToken, match="scheme"):
        decode_token(value, now=NOW)
    assert decode_token(value, sts_endpoint=emulator, now=NOW)
    # Configured for the emulator, real STS hosts and other loopback ports are refused too.
    with pytest.raises(InvalidToken, match="expected 127.0.0.1:4566"):
        decode_token(crafted(host="http://127.0.0.1:4567"), sts_endpoint=emulator, now=NOW)
    with pytest.raises(InvalidToken, match="expected 127.0.0.1:4566"):
        decode_token(crafted(), sts_endpoint=emulator, now=NOW)


def test_caller_arn_from_json_and_xml_answers() -> None:
    arn = "arn:aws:sts::123456789012:assumed-role/admin/alice"
    as_json = {"GetCallerIdentityResponse": {"GetCallerIdentityResult": {"Arn": arn, "Account": "123456789012"}}}
    assert tokens._caller_arn(json.dumps(as_json).encode()) == arn
    as_xml = (
        '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>'
        f"<Arn>{arn}</Arn><UserId>AIDA:alice</UserId><Account>123456789012</Account></GetCallerIdentityResult>"
        "</GetCallerIdentityResponse>"
    )
    assert tokens._caller_arn(as_xml.encode()) == arn
    assert tokens._caller_arn(b"<html>proxy login</html>") is None
    assert tokens._error_code(b"<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code></Error></ErrorResponse>") == (
        "SignatureDoesNotMatch"
    )


def test_exec_credential_in_the_version_kubectl_asks_for(minted: tokens.Token) -> None:
    credential = exec_credential(minted)
    assert credential["kind"] == "ExecCredential"
    assert credential["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert credential["status"]["token"] == minted.value
    stamp = datetime.strptime(credential["status"]["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(stamp.replace(tzinfo=UTC) - minted.expiration) < timedelta(seconds=1)
    info = json.dumps({"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1", "spec": {}})
    assert tokens.requested_exec_api_version(info) == "client.authentication.k8s.io/v1"
    assert tokens.requested_exec_api_version("not json") == "client.authentication.k8s.io/v1beta1"
    assert tokens.requested_exec_api_version(None) == "client.authentication.k8s.io/v1beta1"
    with pytest.raises(TokenError, match="apiVersion"):
        exec_credential(minted, "client.authentication.k8s.io/v2")
