"""Checks on the raw API Gateway event before any parsing: size, encoding, media type."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import content_types

from kubestep.api.http import MAX_BODY_BYTES, error_body


def proxy_response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": int(status),
        "multiValueHeaders": {"Content-Type": [content_types.APPLICATION_JSON]},
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def _body_size(event: Mapping[str, Any]) -> int:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return len(body) * 3 // 4
    return len(body.encode())


def _is_json(event: Mapping[str, Any]) -> bool:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    media_type = str(headers.get("content-type") or "").split(";")[0].strip().lower()
    # No Content-Type is read as JSON (curl -d without -H); so is any `+json` type.
    return not media_type or media_type == "application/json" or media_type.endswith("+json")


def check(event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(the event to resolve, or an answer to give without resolving it)."""
    if _body_size(event) > MAX_BODY_BYTES:
        # Before any parsing: a huge body costs nothing but this check.
        return event, proxy_response(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            error_body("PayloadTooLarge", f"the request body is larger than {MAX_BODY_BYTES // 1024} KiB"),
        )
    if event.get("body") and event.get("isBase64Encoded"):
        # JSON is text: decode here, so a body that is not UTF-8 is a 400, not a parser crash.
        try:
            event = {**event, "body": base64.b64decode(event["body"]).decode(), "isBase64Encoded": False}
        except (binascii.Error, UnicodeDecodeError):
            return event, proxy_response(
                HTTPStatus.BAD_REQUEST,
                error_body("InvalidRequest", "the request body is not UTF-8 text", [("body", "must be UTF-8 JSON")]),
            )
    if event.get("body") and event.get("httpMethod") in ("POST", "PATCH") and not _is_json(event):
        # Every body this API takes is JSON; Powertools would try form and multipart parsers.
        return event, proxy_response(
            HTTPStatus.UNSUPPORTED_MEDIA_TYPE, error_body("UnsupportedMediaType", "send the body as application/json")
        )
    return event, None
