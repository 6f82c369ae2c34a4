"""`<svc>-api`: the management REST API behind API Gateway (`ANY /v1/{proxy+}`, IAM auth).

The routes live in `kubestep.api.app`; this entry point adds Powertools logging, tracing and
metrics and hands the cached settings and store to the resolver."""

from __future__ import annotations

import warnings
from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from kubestep.api.app import handle
from kubestep.settings import settings
from lambdas._tasks import logger, metrics, store, tracer

# Most requests read and publish no metric; that is expected, not worth a warning per request.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


# Never log the event: request bodies are manifests, and callers may paste anything into them.
@logger.inject_lambda_context(log_event=False, correlation_id_path=correlation_paths.API_GATEWAY_REST)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    response = handle(event, context, settings=settings(), store=store())
    logger.info(
        "request",
        extra={
            "method": event.get("httpMethod"),
            "path": event.get("path"),
            "status": response.get("statusCode"),
        },
    )
    return response
