"""EventBridge target for Step Functions "Execution Status Change" (FAILED, TIMED_OUT,
ABORTED): releases the lock the run held and records the outcome."""

from typing import Any

from kubestep.workflows.execution_events import handle
from lambdas._tasks import logger, store, tracer


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict, context: Any) -> dict:
    result = handle(event["detail"], store())
    logger.info("execution ended", extra=result)
    return result
