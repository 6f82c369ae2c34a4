"""What the deployed functions did: every invocation, and every AWS API call each one made.

The workers report each botocore call they made (``_worker.py``): its IAM-style action, the
request's parameters and, for calls that change something, the response (both without secret
material) and the answers fault injection dropped after an attempt took effect; the seam
attributes invocations and calls to the operation (``operationId`` in the event) and to the Step
Functions execution that invoked the function. The resource-level IAM check (tests/iam: resource
ARNs and condition keys of each call, evaluated against the synthesized policies) and the
per-operation numbers of ``LocalRuntime.stats()`` read them here.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple


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
    # botocore's service and operation names, the client's region, the request's parameters and
    # the parsed response of a mutating call (None for reads), the error code of a failed call.
    service: str = ""
    operation: str = ""
    region: str | None = None
    params: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    error: str | None = None
    # Fault injection (kubestep_local/faults.py): the error above is its answer (the call never
    # reached the emulator); answers of attempts that took effect on the emulator although
    # fault injection dropped them (``lost-response``: botocore resent the call, whose outcome
    # is above).
    error_injected: bool = False
    lost_responses: tuple[dict[str, Any], ...] = ()
    # A call an instance made with its instance role (the instance simulator plays that part):
    # the role's name and the instance's ARN (its requests' `ec2:SourceInstanceARN`).
    role_name: str | None = None
    source_instance_arn: str | None = None

    @classmethod
    def of(cls, invocation: Invocation, call: str | dict[str, Any]) -> CallRecord:
        where = (invocation.function_name, invocation.operation_id, invocation.execution_arn)
        if isinstance(call, str):  # an action only
            return cls(*where, call)
        return cls(
            *where,
            call["action"],
            service=call.get("service", ""),
            operation=call.get("operation", ""),
            region=call.get("region"),
            params=call.get("params"),
            response=call.get("response"),
            error=call.get("error"),
            error_injected=bool(call.get("error_injected")),
            lost_responses=tuple(call.get("lost_responses") or ()),
        )


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

    def record(self, invocation: Invocation, calls_made: Iterable[str | dict[str, Any]]) -> None:
        calls = [CallRecord.of(invocation, call) for call in calls_made]
        with self._lock:
            self._invocations.append(invocation)
            self._calls.extend(calls)

    def record_calls(self, calls: Iterable[CallRecord]) -> None:
        """Calls made outside the functions (an instance's, with its role)."""
        with self._lock:
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
