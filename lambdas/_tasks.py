"""The shared shape of a task function: Powertools logging, tracing and metrics around a
dispatch on the event's `task`, through the table each workflow declaration generates.
Expected outcomes (pending, invalid input) are logged as such; their exception class name
becomes the Step Functions error name."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from kubestep.errors import KubestepError, ResourcePending
from kubestep.flow.dispatch import run_step
from kubestep.settings import settings
from kubestep.store import Store
from kubestep.workflows import dispatch_table

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@cache
def store() -> Store:
    return Store.for_table(settings().table_name)


def dispatcher(function: str) -> Callable[[dict, Any], dict]:
    tasks = dispatch_table(function)

    @logger.inject_lambda_context(log_event=False)  # inputs may name secrets' ARNs; never log them
    @tracer.capture_lambda_handler(capture_response=False)
    @metrics.log_metrics
    def handler(event: dict, context: Any) -> dict:
        name = event.get("task", "")
        spec = tasks.get(name)
        if spec is None:
            raise ValueError(f"unknown task {name!r}; known: {', '.join(sorted(tasks))}")
        logger.append_keys(task=name, operationId=event.get("operationId"), cluster=event.get("clusterName"))
        try:
            result = run_step(spec, event, settings(), store())
        except ResourcePending as exc:
            logger.info("pending", extra={"reason": str(exc)})
            metrics.add_metric(name="StepPending", unit=MetricUnit.Count, value=1)
            raise
        except KubestepError as exc:
            logger.warning("step failed", extra={"error": type(exc).__name__, "reason": str(exc)})
            metrics.add_metric(name="StepFailed", unit=MetricUnit.Count, value=1)
            raise
        except Exception:
            logger.exception("step crashed")
            metrics.add_metric(name="StepCrashed", unit=MetricUnit.Count, value=1)
            raise
        metrics.add_metric(name="StepSucceeded", unit=MetricUnit.Count, value=1)
        return result

    return handler
