"""One mutating operation per cluster (and one per network): a lock item keyed by the
operation id, so the API's reservation and the execution's own acquire are the same lock;
taken over only from a holder whose execution is no longer RUNNING or whose lease expired."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from boto3.dynamodb.conditions import Attr

from kubestep.errors import LockHeld
from kubestep.store import keys
from kubestep.store.records import Lock
from kubestep.store.table import ConditionFailed, Table, iso, now, parse_iso

LOCK_TTL = timedelta(hours=3)  # longer than any state machine's TimeoutSeconds
# An API reservation names an execution it is about to start; until it appears, don't take over.
LOCK_START_GRACE = timedelta(minutes=2)

ExecutionRunning = Callable[[str], "bool | None"]


class LockRepository:
    def __init__(self, table: Table):
        self._table = table

    def get(self, target: keys.Target) -> Lock | None:
        return Lock.from_item(self._table.get(keys.lock_pk_for(target), keys.LOCK_SK))

    def acquire(
        self, target: keys.Target, operation_id: str, execution_arn: str | None, running: ExecutionRunning
    ) -> Lock:
        """Take the lock of `target` (the network, or a cluster by name) for `operation_id` (again, if it
        already holds it), or take it over from an abandoned holder.

        `running(arn)` answers True/False, or None when the execution does not exist (yet)."""
        stamp = now()
        lock = Lock(
            operation_id=operation_id,
            execution_arn=execution_arn,
            acquired_at=iso(stamp),
            expires_at=iso(stamp + LOCK_TTL),
        )
        item = {"pk": keys.lock_pk_for(target), "sk": keys.LOCK_SK, **lock.to_item()}
        for _ in range(3):
            try:
                self._table.put(item, Attr("pk").not_exists() | Attr("operationId").eq(operation_id))
                return lock
            except ConditionFailed:
                pass
            holder = self.get(target)
            if holder is None:
                continue
            if not _abandoned(holder, running):
                raise LockHeld(_describe(target), holder.to_item())
            try:
                # Take over only the very lock we judged abandoned.
                self._table.put(item, Attr("operationId").eq(holder.operation_id))
                return lock.model_copy(update={"took_over_from": holder.operation_id})
            except ConditionFailed:
                pass
            time.sleep(0.2)
        current = self.get(target)
        raise LockHeld(_describe(target), current.to_item() if current else {})

    def release(self, target: keys.Target, operation_id: str) -> bool:
        return self._table.delete(keys.lock_pk_for(target), keys.LOCK_SK, Attr("operationId").eq(operation_id))


def _describe(target: keys.Target) -> str:
    return "the network" if target is keys.ServiceTarget.NETWORK else f"cluster {target}"


def _abandoned(holder: Lock, running: ExecutionRunning) -> bool:
    if parse_iso(holder.expires_at) < now():
        return True
    if not holder.execution_arn:
        return False
    state = running(holder.execution_arn)
    if state is None:  # reserved by the API, execution not visible yet
        return parse_iso(holder.acquired_at) + LOCK_START_GRACE < now()
    return not state
