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

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.client import Client, Schedule

from kit import schedules
from kit.auth import Principal
from kit.db import Database
from kit.resources import UnitOfWork
from kit.runtime import Runtime
from kit.schedules import KeeperInput
from salesops.pipeline.v1 import forecast_pb2, settings_pb2
from services.pipeline import calls, pipeline_settings, snapshots
from services.pipeline.accuracy import local_today
from services.pipeline.domain import accuracy as acc
from services.pipeline.domain import forecast as f
from services.pipeline.repositories.calls import tenants_with_deals
from services.pipeline.snapshot_workflows import (
    ENSURE,
    RECONCILE,
    TAKE,
    WEEKLY,
    TakeInput,
    Taken,
    WeeklyInput,
)
from services.pipeline.store import transactions

SYSTEM_USER = "system:weekly-snapshot"
SNAPSHOTS = schedules.Family(
    schedule_prefix="pipeline/weekly-snapshot",
    workflow_prefix="pipeline-weekly-snapshot",
    keeper_schedule_id="pipeline/snapshot-schedules",
    keeper_workflow_id="pipeline-snapshot-schedules",
)
schedule_id = SNAPSHOTS.schedule_id


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


def _when(s: settings_pb2.PipelineSettings) -> schedules.When:
    d = pipeline_settings.DEFAULTS
    zone = s.time_zone or d.time_zone
    day = s.snapshot_day or d.snapshot_day  # google.type.DayOfWeek: MONDAY = 1 ... SUNDAY = 7
    at = s.snapshot_time if s.HasField("snapshot_time") else d.snapshot_time
    return schedules.weekly(day % 7, at.hours, at.minutes, zone)  # Temporal: SUNDAY = 0


def weekly_schedule(tenant: str, s: settings_pb2.PipelineSettings, task_queue: str) -> Schedule:
    return schedules.tenant_schedule(SNAPSHOTS, tenant, WEEKLY, WeeklyInput(tenant), task_queue, _when(s))


async def ensure_tenant_schedule(
    client: Client, task_queue: str, tenant: str, s: settings_pb2.PipelineSettings
) -> bool:
    """Create the tenant's schedule, or update it when its settings changed. True if it changed."""
    return await schedules.ensure(client, schedule_id(tenant), weekly_schedule(tenant, s, task_queue))


class SnapshotActivities:
    def __init__(self, db: Database, client: Client | None) -> None:
        self.db, self.tx, self.client = db, transactions(db), client

    @activity.defn(name=TAKE)
    async def take(self, inp: TakeInput) -> Taken:
        at = datetime.fromisoformat(inp.at)
        granularity = f.Granularity[inp.granularity]
        return await self.tx.run(inp.tenant, lambda uow: take_weekly(uow, granularity, at))

    @activity.defn(name=RECONCILE)
    async def reconcile(self, inp: KeeperInput) -> int:
        """Every tenant with deals has its schedule as its settings say; returns how many changed."""

        async def wanted(tenant: str) -> Schedule:
            async with self.tx.read(tenant) as uow:
                s = await pipeline_settings.current(uow)
            return weekly_schedule(tenant, s, inp.task_queue)

        return await schedules.reconcile(self.client, SNAPSHOTS, await tenants_with_deals(self.db), wanted)

    def all(self) -> Sequence[Callable[..., Any]]:
        return [self.take, self.reconcile]


def build(rt: Runtime) -> Sequence[Callable[..., Any]]:
    return SnapshotActivities(rt.db, rt.temporal).all()


async def ensure_schedules(rt: Runtime) -> None:
    """Worker start: every tenant's weekly schedule now, and the hourly schedule that keeps them so."""
    task_queue = rt.settings.task_queue
    await SnapshotActivities(rt.db, rt.temporal).reconcile(KeeperInput(task_queue))
    await schedules.ensure_keeper(rt.temporal, SNAPSHOTS, ENSURE, task_queue)


__all__ = [
    "SNAPSHOTS",
    "SnapshotActivities",
    "build",
    "ensure_schedules",
    "ensure_tenant_schedule",
    "schedule_id",
    "system_admin",
    "take_weekly",
    "weekly_schedule",
]
