"""EventBridge stand-ins: Step Functions status-change events and scheduled rules.

moto's EventBridge stores rules and targets but (a) Step Functions never emits "Execution Status
Change" events and (b) nothing fires ``ScheduleExpression`` rules; moto's ``put_events`` cannot
deliver to Lambda targets either (``moto/events/models.py:140-202`` raises NotImplementedError).
This module plays EventBridge's part for the deployed rules: it builds the event exactly as AWS
shapes it, matches each ENABLED rule of the default bus with moto's own pattern matcher
(``moto_compat.RuleInfo.matches``), applies the target's Input/InputPath/InputTransformer, and
invokes Lambda targets through boto3 against the emulator (so through the Lambda seam) with
Lambda's asynchronous-invocation retry policy (2 retries), time-scaled.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

from kubestep_local import moto_compat
from kubestep_local.moto_compat import ExecutionInfo, RuleInfo
from kubestep_local.time_scale import TimeScale

LOG = logging.getLogger(__name__)

STATUS_CHANGE = "Step Functions Execution Status Change"
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
# Lambda's asynchronous invocation: the event is retried twice after a function error, ~1 and
# ~2 minutes later.
ASYNC_RETRY_DELAYS = (60.0, 120.0)


@dataclass(frozen=True)
class Delivery:
    rule_name: str
    target_arn: str
    detail_type: str
    event: dict[str, Any]
    payload: Any
    errored: bool
    attempts: int


def _iso(value: datetime | None) -> str:
    value = value or datetime.now(UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch_ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


def rate_seconds(expression: str | None) -> float | None:
    match = _RATE.match((expression or "").strip())
    if not match:
        return None
    unit = match.group(2).rstrip("s")
    return int(match.group(1)) * _UNIT_SECONDS[unit]


def status_change_event(execution: ExecutionInfo) -> dict[str, Any]:
    """The EventBridge event AWS emits when a Standard execution changes status."""
    output = None
    if execution.status == "SUCCEEDED" and execution.output is not None:
        output = json.dumps(execution.output, separators=(",", ":"))
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": STATUS_CHANGE,
        "source": "aws.states",
        "account": execution.account,
        "time": _iso(execution.stop_date),
        "region": execution.region,
        "resources": [execution.arn],
        "detail": {
            "executionArn": execution.arn,
            "stateMachineArn": execution.state_machine_arn,
            "name": execution.name,
            "status": execution.status,
            "startDate": _epoch_ms(execution.start_date),
            "stopDate": _epoch_ms(execution.stop_date),
            "input": json.dumps(execution.input, separators=(",", ":")),
            "output": output,
            "inputDetails": {"included": True},
            "outputDetails": {"included": True} if output is not None else None,
            "error": execution.error,
            "cause": execution.cause,
        },
    }


def scheduled_event(rule: RuleInfo) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": rule.account,
        "time": _iso(None),
        "region": rule.region,
        "resources": [rule.arn],
        "detail": {},
    }


def _target_input(target: dict[str, Any], event: dict[str, Any]) -> Any:
    if target.get("Input"):
        return json.loads(target["Input"])
    if target.get("InputPath"):
        from jsonpath_ng.ext import parse

        matches = parse(target["InputPath"]).find(event)
        return matches[0].value if matches else None
    if target.get("InputTransformer"):
        return moto_compat.render_input_transformer(
            target["InputTransformer"], {**event, "ingestion-time": time.time()}
        )
    return event


class EventBridgeStandIn:
    """Delivers execution status changes and scheduled events to the deployed rules' targets."""

    def __init__(
        self,
        endpoint_url: str,
        *,
        time_scale: TimeScale | None = None,
        poll_interval: float = 0.5,
        scheduled_rules: bool = True,
        max_workers: int = 4,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.time_scale = time_scale or TimeScale(1.0)
        self.poll_interval = poll_interval
        self.scheduled_rules = scheduled_rules
        self._seen: set[str] = set()
        self._next_fire: dict[str, float] = {}
        self._deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._max_workers = max_workers
        self._clients: dict[tuple[str, str], Any] = {}
        self._patches = moto_compat.PatchSet()
        self._inflight = 0

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        # Wake the poller the moment an execution ends instead of waiting for the next poll.
        moto_compat.on_execution_end(self._patches, self._wake.set)
        self._stop.clear()
        self._pool = ThreadPoolExecutor(self._max_workers, thread_name_prefix="kubestep-events")
        self._thread = threading.Thread(target=self._run, name="kubestep-eventbridge", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._patches.undo()

    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._deliveries)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every ended execution seen so far has been delivered."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll_executions()
            with self._lock:
                if self._inflight == 0:
                    return True
            time.sleep(0.02)
        return False

    # -- the loop ------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_executions()
                if self.scheduled_rules:
                    self._fire_due_schedules()
            except Exception:  # noqa: BLE001 - the loop must survive moto's races
                LOG.exception("EventBridge stand-in iteration failed")
            self._wake.wait(self.poll_interval)
            self._wake.clear()

    def delivered(self) -> set[str]:
        """ARNs of the ended executions whose status change has been delivered."""
        with self._lock:
            return set(self._seen)

    def mark_delivered(self, execution_arns: set[str]) -> None:
        """Known as delivered already (restored from a snapshot): not delivered again."""
        with self._lock:
            self._seen |= set(execution_arns)

    def poll_executions(self) -> None:
        for execution in moto_compat.executions():
            if execution.status not in TERMINAL:
                continue
            with self._lock:
                if execution.arn in self._seen:
                    continue
                self._seen.add(execution.arn)
                self._inflight += 1  # until its deliveries are submitted (wait_idle)
            try:
                self.put_event(status_change_event(execution), execution.account, execution.region)
            finally:
                with self._lock:
                    self._inflight -= 1

    def put_event(self, event: dict[str, Any], account: str, region: str) -> int:
        """Deliver ``event`` to the targets of every matching ENABLED rule; returns #targets."""
        count = 0
        for rule in moto_compat.event_rules(account, region, bus="default"):
            if rule.state != "ENABLED" or rule.schedule_expression:
                continue
            if not rule.matches(event):
                continue
            for target in rule.targets:
                self._submit(rule.name, target, event, rule.region)
                count += 1
        return count

    def _submit(self, rule_name: str, target: dict[str, Any], event: dict[str, Any], region: str) -> None:
        with self._lock:
            self._inflight += 1
        pool = self._pool
        if pool is None:
            self._deliver(rule_name, target, event, region)
            return
        pool.submit(self._deliver, rule_name, target, event, region)

    # -- scheduled rules -----------------------------------------------------------------------
    def _fire_due_schedules(self) -> None:
        now = time.monotonic()
        for rule in moto_compat.event_rules():
            period = rate_seconds(rule.schedule_expression)
            if period is None or rule.state != "ENABLED":
                continue  # cron(...) fires only through fire_scheduled()
            due = self._next_fire.get(rule.arn)
            if due is None:
                self._next_fire[rule.arn] = now + self.time_scale.seconds(period)
                continue
            if now >= due:
                self._next_fire[rule.arn] = now + self.time_scale.seconds(period)
                self._fire(rule)

    def _fire(self, rule: RuleInfo) -> int:
        event = scheduled_event(rule)
        for target in rule.targets:
            self._submit(rule.name, target, event, rule.region)
        return len(rule.targets)

    def fire_scheduled(self, rule_name: str, *, wait: bool = True, timeout: float = 60.0) -> list[Delivery]:
        """Fire a scheduled rule (rate or cron) now; returns its deliveries when ``wait``."""
        for rule in moto_compat.event_rules():
            if rule.name != rule_name:
                continue
            before = len(self.deliveries())
            expected = self._fire(rule)
            if not wait:
                return []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                mine = [d for d in self.deliveries()[before:] if d.rule_name == rule_name]
                if len(mine) >= expected:
                    return mine
                time.sleep(0.02)
            raise TimeoutError(f"scheduled rule {rule_name} not delivered in {timeout} s")
        raise KeyError(f"no EventBridge rule named {rule_name}")

    # -- delivery ------------------------------------------------------------------------------
    def _client(self, service: str, region: str) -> Any:
        key = (service, region)
        client = self._clients.get(key)
        if client is None:
            client = boto3.client(
                service,
                endpoint_url=self.endpoint_url,
                region_name=region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(read_timeout=900, retries={"max_attempts": 1}),
            )
            self._clients[key] = client
        return client

    def _deliver(self, rule_name: str, target: dict[str, Any], event: dict[str, Any], region: str) -> None:
        try:
            arn = target["Arn"]
            payload_in = _target_input(target, event)
            service = arn.split(":")[2]
            attempts = 0
            payload: Any = None
            errored = False
            if service == "lambda":
                for delay in (0.0, *ASYNC_RETRY_DELAYS):
                    if delay and self._stop.wait(self.time_scale.seconds(delay)):
                        break
                    attempts += 1
                    response = self._client("lambda", region).invoke(
                        FunctionName=arn, Payload=json.dumps(payload_in).encode()
                    )
                    raw = response["Payload"].read()
                    with contextlib.suppress(ValueError):
                        raw = json.loads(raw)
                    payload, errored = raw, bool(response.get("FunctionError"))
                    if not errored:
                        break
            elif service == "states":
                attempts = 1
                payload = self._client("stepfunctions", region).start_execution(
                    stateMachineArn=arn, input=json.dumps(payload_in)
                )["executionArn"]
            else:
                LOG.warning("EventBridge stand-in: target %s of rule %s not supported", arn, rule_name)
                return
            with self._lock:
                self._deliveries.append(
                    Delivery(rule_name, arn, event["detail-type"], event, payload, errored, attempts)
                )
        except Exception:  # noqa: BLE001 - one failed delivery must not stop the others
            LOG.exception("delivery of %s to %s failed", event.get("detail-type"), target.get("Arn"))
        finally:
            with self._lock:
                self._inflight -= 1
