"""The monthly iteration's activities and the per-tenant Temporal schedules that start it.

The pattern of pipeline's weekly snapshot: one schedule per tenant with cards, on
IterationPolicy.run_day_of_month at run_time in the tenant's zone (default the 1st
at 03:00, deployment calendar zone); the worker ensures them at start and an hourly
schedule re-ensures them. A schedule's note records the spec it was made for, so an
unchanged one is left alone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
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

from kit.db import Database
from kit.runtime import Runtime
from salesops.knowledge.v1 import settings_pb2
from services.knowledge import iteration, knowledge_settings
from services.knowledge.iteration_workflows import (
    RECONCILE,
    RUN,
    EnsureInput,
    EnsureIterationSchedulesWorkflow,
    MonthlyInput,
    MonthlyIterationWorkflow,
    RunInput,
    RunResult,
)
from services.knowledge.repositories.iteration import tenants_with_cards
from services.knowledge.store import transactions

ENSURE_SCHEDULE_ID = "knowledge/iteration-schedules"


def schedule_id(tenant: str) -> str:
    return f"knowledge/monthly-iteration/{tenant}"


def spec_of(p: settings_pb2.IterationPolicy) -> tuple[ScheduleSpec, str]:
    d = knowledge_settings.DEFAULTS.iteration
    zone = iteration.zone_of(p).key
    day = p.run_day_of_month or d.run_day_of_month
    at = p.run_time if p.HasField("run_time") else d.run_time
    calendar = ScheduleCalendarSpec(
        day_of_month=[ScheduleRange(day)],
        hour=[ScheduleRange(at.hours)],
        minute=[ScheduleRange(at.minutes)],
    )
    note = f"monthly {day} {at.hours:02d}:{at.minutes:02d} {zone}"
    return ScheduleSpec(calendars=[calendar], time_zone_name=zone), note


def monthly_schedule(tenant: str, p: settings_pb2.IterationPolicy, task_queue: str) -> Schedule:
    spec, note = spec_of(p)
    return Schedule(
        action=ScheduleActionStartWorkflow(
            MonthlyIterationWorkflow.run,
            MonthlyInput(tenant),
            id=f"knowledge-monthly-iteration/{tenant}",
            task_queue=task_queue,
        ),
        spec=spec,
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=note),
    )


async def ensure_tenant_schedule(
    client: Client, task_queue: str, tenant: str, p: settings_pb2.IterationPolicy
) -> bool:
    """Create the tenant's schedule, or update it when its settings changed. True if it changed."""
    wanted = monthly_schedule(tenant, p, task_queue)
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


class IterationActivities:
    def __init__(self, db: Database, client: Client | None) -> None:
        self.db, self.tx, self.client = db, transactions(db), client

    @activity.defn(name=RUN)
    async def run(self, inp: RunInput) -> RunResult:
        at = datetime.fromisoformat(inp.at)
        row = await self.tx.run(inp.tenant, lambda uow: iteration.run_scheduled(uow, at))
        return RunResult(row.report_id, row.state)

    @activity.defn(name=RECONCILE)
    async def reconcile(self, inp: EnsureInput) -> int:
        """Every tenant with cards has its schedule as its settings say; returns how many changed."""
        if self.client is None:
            raise RuntimeError("schedules need the Temporal client")
        changed = 0
        for tenant in await tenants_with_cards(self.db):
            async with self.tx.read(tenant) as uow:
                s = await knowledge_settings.current(uow)
            changed += await ensure_tenant_schedule(self.client, inp.task_queue, tenant, s.iteration)
        return changed

    def all(self) -> Sequence[Callable[..., Any]]:
        return [self.run, self.reconcile]


def build(rt: Runtime) -> Sequence[Callable[..., Any]]:
    return IterationActivities(rt.db, rt.temporal).all()


async def ensure_schedules(rt: Runtime) -> None:
    """Worker start: every tenant's monthly schedule now, and the hourly schedule that keeps them so."""
    task_queue = rt.settings.task_queue
    await IterationActivities(rt.db, rt.temporal).reconcile(EnsureInput(task_queue))
    keeper = Schedule(
        action=ScheduleActionStartWorkflow(
            EnsureIterationSchedulesWorkflow.run,
            EnsureInput(task_queue),
            id="knowledge-iteration-schedules",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    with contextlib.suppress(ScheduleAlreadyRunningError):
        await rt.temporal.create_schedule(ENSURE_SCHEDULE_ID, keeper)


__all__ = [
    "IterationActivities",
    "build",
    "ensure_schedules",
    "ensure_tenant_schedule",
    "monthly_schedule",
    "schedule_id",
    "spec_of",
]
