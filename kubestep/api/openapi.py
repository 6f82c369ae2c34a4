"""The OpenAPI document Powertools generates from the routes, adjusted to what the API answers:
400 instead of Powertools' 422, API Gateway's own 403, and the route table 405 answers use."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, content_types
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server

from kubestep.api import schemas
from kubestep.api.http import PREFIX

API_TITLE = "kubestep management API"
DOCUMENT_VERSION = "1.0.0"
_APP: list[APIGatewayRestResolver] = []


def bind(app: APIGatewayRestResolver) -> None:
    _APP[:] = [app]


@cache
def openapi_document() -> dict[str, Any]:
    (app,) = _APP
    schema = app.get_openapi_schema(
        title=API_TITLE,
        version=DOCUMENT_VERSION,
        description="Kubernetes clusters on AWS, run by a serverless management service on Step Functions. "
        "Every request is signed with AWS SigV4 (service `execute-api`).",
        # Relative to this document (`<ApiUrl>/v1/openapi.json`): the stage URL, on AWS and locally.
        servers=[Server(url="..", description="The stack's ApiUrl (the API Gateway stage)")],
        security_schemes={
            "sigv4": APIKey(
                name="Authorization",
                in_=APIKeyIn.header,
                description="AWS Signature Version 4 (IAM authorization on API Gateway)",
            )
        },
        security=[{"sigv4": []}],
    )
    document = json.loads(schema.model_dump_json(by_alias=True, exclude_none=True))
    for path in document.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict):
                answers = operation.setdefault("responses", {})
                answers.pop("422", None)
                # API Gateway answers these itself, before the function runs.
                answers["403"] = {
                    "description": "Refused by API Gateway: no or invalid SigV4 signature, or IAM denies "
                    "`execute-api:Invoke`",
                    "content": {
                        content_types.APPLICATION_JSON: {"schema": {"$ref": "#/components/schemas/GatewayError"}}
                    },
                }
    document.setdefault("components", {}).setdefault("schemas", {})["GatewayError"] = (
        schemas.GatewayError.model_json_schema()
    )
    components = document.get("components", {}).get("schemas", {})
    # Powertools' own error schemas, now unused (the first two refer to the third).
    for unused in ("HTTPValidationError", "ResponseValidationError", "ValidationError"):
        if f"#/components/schemas/{unused}" not in json.dumps({**document, "components": {}}):
            rest = {k: v for k, v in components.items() if k != unused}
            if f"#/components/schemas/{unused}" not in json.dumps(rest):
                components.pop(unused, None)
    return document


@cache
def _route_table() -> tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]:
    """(path regex, methods) of every route, from the OpenAPI document: what 405 answers allow."""
    table = [(re.compile(rf"^{re.escape(PREFIX)}/openapi\.json/*$"), ("GET",))]
    for template, item in openapi_document().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        methods = tuple(sorted(m.upper() for m in item if m in ("get", "post", "put", "patch", "delete")))
        table.append((re.compile(rf"^{pattern}/*$"), methods))
    return tuple(table)


def allowed_methods(path: str) -> list[str]:
    return sorted({m for regex, methods in _route_table() if regex.match(path) for m in methods})
