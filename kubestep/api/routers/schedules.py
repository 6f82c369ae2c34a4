"""`/v1/schedules`: one-off upgrades at a chosen time (EventBridge Scheduler) — list, show, cancel."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from kubestep import upgrades
from kubestep.api import schemas
from kubestep.api.http import PREFIX, JsonResponse, could_exist, deps, json_response, name_param, responses, shown
from kubestep.errors import NotFound

router = APIGatewayRouter()

SCHEDULE_ID_PATTERN = r"^[a-z0-9-]{1,64}$"
ScheduleId = Annotated[
    str,
    name_param(
        "The schedule's id", "prod-svc-upgrade-1a2b3c4d", pattern=SCHEDULE_ID_PATTERN, max_length=64, alias="id"
    ),
]


def _require(store, schedule_id: str):
    found = store.schedules.get(schedule_id) if could_exist(schedule_id, SCHEDULE_ID_PATTERN, 64) else None
    if found is None:
        raise NotFound(f"schedule {shown(schedule_id)} does not exist")
    return found


@router.get(
    f"{PREFIX}/schedules",
    operation_id="listSchedules",
    summary="One-off upgrade schedules, by time (pending, fired and cancelled)",
    description="Each with its time, version, state (SCHEDULED, FIRED, CANCELLED) and outcome (`started`, or "
    "`skipped: <why>` when the cluster was gone, busy or no longer fit the request).",
    responses=responses(200, schemas.ScheduleList, "The schedules", 400),
    tags=["schedules"],
)
def list_schedules(
    cluster: Annotated[
        str | None,
        Query(max_length=40, pattern=r"^[a-z]([-a-z0-9]*[a-z0-9])?$", description="Only this cluster's schedules"),
    ] = None,
) -> JsonResponse:
    _, store = deps(router)
    return json_response(200, {"items": [upgrades.schedule_view(s) for s in store.schedules.list(cluster)]})


@router.get(
    f"{PREFIX}/schedules/<id>",
    operation_id="getSchedule",
    summary="A one-off upgrade schedule and what it did",
    responses=responses(200, schemas.Schedule, "The schedule", 400, 404),
    tags=["schedules"],
)
def get_schedule(schedule_id: ScheduleId) -> JsonResponse:
    _, store = deps(router)
    return json_response(200, upgrades.schedule_view(_require(store, schedule_id)))


@router.delete(
    f"{PREFIX}/schedules/<id>",
    operation_id="cancelSchedule",
    summary="Cancel a pending one-off upgrade (deletes its EventBridge Scheduler schedule)",
    description="Answers the schedule, CANCELLED; 409 `ScheduleNotPending` once it fired.",
    responses=responses(200, schemas.Schedule, "The schedule, CANCELLED", 400, 404, 409),
    tags=["schedules"],
)
def cancel_schedule(schedule_id: ScheduleId) -> JsonResponse:
    current, store = deps(router)
    _require(store, schedule_id)
    return json_response(200, upgrades.schedule_view(upgrades.cancel_schedule(current, store, schedule_id)))
