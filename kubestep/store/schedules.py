"""One-off schedules (an upgrade at a given time): kubestep's record of each EventBridge
Scheduler schedule it made, and what happened when it fired."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from kubestep.store import keys
from kubestep.store.clusters import stored_form
from kubestep.store.records import Schedule
from kubestep.store.table import ConditionFailed, Table, iso


class ScheduleRepository:
    def __init__(self, table: Table):
        self._table = table

    def create(self, schedule: Schedule) -> bool:
        item = {
            "pk": keys.schedule_pk(schedule.schedule_id),
            "sk": keys.SCHEDULE_SK,
            "gsi1pk": keys.SCHEDULES_INDEX,
            "gsi1sk": f"{schedule.at}#{schedule.schedule_id}",
            **schedule.model_copy(update={"created_at": schedule.created_at or iso()}).to_item(),
        }
        return self._table.put_new(item)

    def get(self, schedule_id: str) -> Schedule | None:
        return Schedule.from_item(self._table.get(keys.schedule_pk(schedule_id), keys.SCHEDULE_SK))

    def list(self, cluster: str | None = None) -> list[Schedule]:
        items = self._table.query_all(IndexName="gsi1", KeyConditionExpression=Key("gsi1pk").eq(keys.SCHEDULES_INDEX))
        found = [s for s in (Schedule.from_item(i) for i in items) if s is not None]
        return [s for s in found if cluster is None or s.cluster == cluster]

    def update(self, schedule_id: str, **fields: Any) -> Schedule | None:
        values = {Schedule.attribute(k): stored_form(v) for k, v in fields.items()}
        try:
            item = self._table.update(keys.schedule_pk(schedule_id), keys.SCHEDULE_SK, values, Attr("pk").exists())
        except ConditionFailed:
            return None
        return Schedule.from_item(item)

    def record_outcome(self, schedule_id: str, outcome: str, operation_id: str | None) -> Schedule | None:
        """What the schedule did when it fired (once: a later run of the same schedule id does
        not overwrite it)."""
        values = {"state": "FIRED", "firedAt": iso(), "outcome": outcome[:500]}
        if operation_id:
            values["operationId"] = operation_id
        return self._leave_scheduled(schedule_id, values)

    def cancel(self, schedule_id: str, outcome: str) -> Schedule | None:
        """A pending schedule that will not run, and why; None if it already fired or went."""
        values = {"state": "CANCELLED", "outcome": outcome[:500], "cancelledAt": iso()}
        return self._leave_scheduled(schedule_id, values)

    def _leave_scheduled(self, schedule_id: str, values: dict[str, str]) -> Schedule | None:
        """The schedule's one move out of SCHEDULED (None if it already made it, or is gone)."""
        try:
            item = self._table.update(
                keys.schedule_pk(schedule_id),
                keys.SCHEDULE_SK,
                values,
                Attr("pk").exists() & Attr("state").eq("SCHEDULED"),
            )
        except ConditionFailed:
            return None
        return Schedule.from_item(item)

    def delete(self, schedule_id: str) -> bool:
        return self._table.delete(keys.schedule_pk(schedule_id), keys.SCHEDULE_SK)
