"""What the deployed functions did: every invocation, and every AWS API call each one made.

The workers report the IAM-style action of each botocore call they made (``_worker.py``); the
seam attributes invocations and calls to the operation (``operationId`` in the event) and to the
Step Functions execution that invoked the function. The IAM check of the synthesized policies
and the per-operation numbers of ``LocalRuntime.stats()`` read them here.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple


class ApiCall(NamedTuple):
    function_name: str
    operation_id: str | None
    action: str


@dataclass(frozen=True)
class CallRecord:
    function_name: str
    operation_id: str | None
    execution_arn: str | None
    action: str


@dataclass(frozen=True)
class Invocation:
    function_name: str
    operation_id: str | None
    execution_arn: str | None
    errored: bool
    error_type: str | None
    duration_seconds: float
    cold: bool


class CallRecorder:
    """Thread-safe, in-memory; ``reset()`` forgets everything recorded so far."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[CallRecord] = []
        self._invocations: list[Invocation] = []

    def record(self, invocation: Invocation, actions: Iterable[str]) -> None:
        calls = [
            CallRecord(invocation.function_name, invocation.operation_id, invocation.execution_arn, action)
            for action in actions
        ]
        with self._lock:
            self._invocations.append(invocation)
            self._calls.extend(calls)

    def calls(self) -> list[ApiCall]:
        """Every AWS API call made by functions: (function_name, operation_id, action)."""
        with self._lock:
            return [ApiCall(c.function_name, c.operation_id, c.action) for c in self._calls]

    def call_records(self) -> list[CallRecord]:
        with self._lock:
            return list(self._calls)

    def invocations(self) -> list[Invocation]:
        with self._lock:
            return list(self._invocations)

    def invocation_counts(self) -> Counter[tuple[str, str | None]]:
        """Invocations per (function name, operation id)."""
        with self._lock:
            return Counter((i.function_name, i.operation_id) for i in self._invocations)

    def per_execution(self) -> tuple[Counter[str], Counter[str]]:
        """(invocations, AWS API calls) per Step Functions execution ARN."""
        with self._lock:
            invocations = Counter(i.execution_arn for i in self._invocations if i.execution_arn)
            calls = Counter(c.execution_arn for c in self._calls if c.execution_arn)
        return invocations, calls

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._invocations.clear()
