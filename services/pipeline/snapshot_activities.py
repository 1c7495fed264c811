"""The weekly snapshot's activities and the per-tenant Temporal schedules that start it.

`take_weekly` takes the snapshot of the current month or quarter (tenant calendar)
through `snapshots.take`, the TakeForecastSnapshot use case, keyed by the tenant day
(a retry or a second run that day returns the same snapshot), then locks the calls
of every lock point the period has reached and not locked yet (`calls.lock_calls`,
unique per tenant, period and lock point). Each runs in its own unit of work.

Schedules: one per tenant with deals, on the tenant's snapshot day and time in its
zone (pipeline settings; default Friday 20:00 Asia/Shanghai). The worker ensures
them at start and an hourly schedule re-ensures them, so a new tenant or a changed
zone is picked up within the hour. A schedule's note records the spec it was made for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import activity
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from kit.auth import Principal
from kit.db import Database
from kit.resources import UnitOfWork
from kit.runtime import Runtime
from salesops.pipeline.v1 import forecast_pb2, settings_pb2
from services.pipeline import calls, pipeline_settings, snapshots
from services.pipeline.accuracy import local_today
from services.pipeline.domain import accuracy as acc
from services.pipeline.domain import forecast as f
from services.pipeline.repositories.calls import tenants_with_deals
from services.pipeline.snapshot_workflows import (
    RECONCILE,
    TAKE,
    EnsureInput,
    EnsureSnapshotSchedulesWorkflow,
    TakeInput,
    Taken,
    WeeklyInput,
    WeeklySnapshotWorkflow,
)
from services.pipeline.store import transactions

SYSTEM_USER = "system:weekly-snapshot"
ENSURE_SCHEDULE_ID = "pipeline/snapshot-schedules"


def schedule_id(tenant: str) -> str:
    return f"pipeline/weekly-snapshot/{tenant}"


def system_admin(tenant: str) -> Principal:
    """Who the schedule acts as: TakeForecastSnapshot is an admin's."""
    return Principal(SYSTEM_USER, tenant, frozenset({"admin"}), "", datetime.max.replace(tzinfo=UTC))


async def take_weekly(uow: UnitOfWork, granularity: f.Granularity, at: datetime) -> Taken:
    """The snapshot of the period holding the tenant's today, and the locks it has reached."""
    today = await local_today(uow, at)
    start, end = f.period_bounds(granularity, today)
    request_id = f"weekly:{granularity.value}:{today.isoformat()}"
    row = await snapshots.take(
        uow,
        system_admin(uow.tenant),
        granularity,
        today,
        request_id,
        at,
        trigger=forecast_pb2.SNAPSHOT_TRIGGER_SCHEDULED,
    )
    locked = []
    for point in acc.due_lock_points(start, end, today):
        _, new = await calls.lock_calls(uow, granularity, start, end, point, row.snapshot_id, at, today)
        if new:
            locked.append(point.value)
    return Taken(row.snapshot_id, locked)


def _spec(s: settings_pb2.PipelineSettings) -> tuple[ScheduleSpec, str]:
    d = pipeline_settings.DEFAULTS
    zone = s.time_zone or d.time_zone
    day = s.snapshot_day or d.snapshot_day  # google.type.DayOfWeek: MONDAY = 1 ... SUNDAY = 7
    hour = s.snapshot_time.hours if s.HasField("snapshot_time") else d.snapshot_time.hours
    minute = s.snapshot_time.minutes if s.HasField("snapshot_time") else d.snapshot_time.minutes
    calendar = ScheduleCalendarSpec(
        day_of_week=[ScheduleRange(day % 7)],  # Temporal: SUNDAY = 0
        hour=[ScheduleRange(hour)],
        minute=[ScheduleRange(minute)],
    )
    note = f"weekly {day % 7} {hour:02d}:{minute:02d} {zone}"
    return ScheduleSpec(calendars=[calendar], time_zone_name=zone), note


def weekly_schedule(tenant: str, s: settings_pb2.PipelineSettings, task_queue: str) -> Schedule:
    spec, note = _spec(s)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WeeklySnapshotWorkflow.run,
            WeeklyInput(tenant),
            id=f"pipeline-weekly-snapshot/{tenant}",
            task_queue=task_queue,
        ),
        spec=spec,
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=note),
    )


async def ensure_tenant_schedule(
    client: Client, task_queue: str, tenant: str, s: settings_pb2.PipelineSettings
) -> bool:
    """Create the tenant's schedule, or update it when its settings changed. True if it changed."""
    wanted = weekly_schedule(tenant, s, task_queue)
    handle = client.get_schedule_handle(schedule_id(tenant))
    try:
        described = await handle.describe()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        with contextlib.suppress(ScheduleAlreadyRunningError):  # another worker made it meanwhile
            await client.create_schedule(schedule_id(tenant), wanted)
        return True
    if described.schedule.state.note == wanted.state.note:
        return False

    def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=wanted)

    await handle.update(update)
    return True


class SnapshotActivities:
    def __init__(self, db: Database, client: Client | None) -> None:
        self.db, self.tx, self.client = db, transactions(db), client

    @activity.defn(name=TAKE)
    async def take(self, inp: TakeInput) -> Taken:
        at = datetime.fromisoformat(inp.at)
        granularity = f.Granularity[inp.granularity]
        return await self.tx.run(inp.tenant, lambda uow: take_weekly(uow, granularity, at))

    @activity.defn(name=RECONCILE)
    async def reconcile(self, inp: EnsureInput) -> int:
        """Every tenant with deals has its schedule as its settings say; returns how many changed."""
        if self.client is None:
            raise RuntimeError("schedules need the Temporal client")
        changed = 0
        for tenant in await tenants_with_deals(self.db):
            async with self.tx.read(tenant) as uow:
                s = await pipeline_settings.current(uow)
            changed += await ensure_tenant_schedule(self.client, inp.task_queue, tenant, s)
        return changed

    def all(self) -> Sequence[Callable[..., Any]]:
        return [self.take, self.reconcile]


def build(rt: Runtime) -> Sequence[Callable[..., Any]]:
    return SnapshotActivities(rt.db, rt.temporal).all()


async def ensure_schedules(rt: Runtime) -> None:
    """Worker start: every tenant's weekly schedule now, and the hourly schedule that keeps them so."""
    task_queue = rt.settings.task_queue
    await SnapshotActivities(rt.db, rt.temporal).reconcile(EnsureInput(task_queue))
    keeper = Schedule(
        action=ScheduleActionStartWorkflow(
            EnsureSnapshotSchedulesWorkflow.run,
            EnsureInput(task_queue),
            id="pipeline-snapshot-schedules",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    with contextlib.suppress(ScheduleAlreadyRunningError):
        await rt.temporal.create_schedule(ENSURE_SCHEDULE_ID, keeper)


__all__ = [
    "SnapshotActivities",
    "build",
    "ensure_schedules",
    "ensure_tenant_schedule",
    "schedule_id",
    "system_admin",
    "take_weekly",
    "weekly_schedule",
]
