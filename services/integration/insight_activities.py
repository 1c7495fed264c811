"""The weekly keyword digest's activities and the per-tenant Temporal schedules that start it.

Schedules: one per tenant with conversations, Monday 08:00 in the tenant's zone
(IntegrationSettings' digest_day / digest_time defaults; Asia/Shanghai). The
worker ensures them at start and an hourly schedule re-ensures them, so a new
tenant is picked up within the hour. A schedule's note records the spec it was made for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
from salesops.integration.v1.settings_pb2 import IntegrationSettings
from services.integration import integration_settings, keyword_digests
from services.integration.domain.keyword_digest import DEFAULT_ZONE
from services.integration.insight_workflows import (
    MAKE,
    RECONCILE,
    DigestInput,
    EnsureInput,
    EnsureKeywordDigestSchedulesWorkflow,
    Made,
    MakeInput,
    WeeklyKeywordDigestWorkflow,
)
from services.integration.repositories.insights import tenants_with_conversations
from services.integration.store import transactions

ENSURE_SCHEDULE_ID = "integration/keyword-digest-schedules"
DIGEST_DAY, DIGEST_HOUR, DIGEST_MINUTE = 1, 8, 0  # Monday 08:00 (Temporal: SUNDAY = 0)


def schedule_id(tenant: str) -> str:
    return f"integration/keyword-digest/{tenant}"


@dataclass(frozen=True)
class DigestWhen:
    """When the weekly digest runs, in the tenant's zone (IntegrationSettings; Temporal: SUNDAY = 0)."""

    day: int = DIGEST_DAY
    hour: int = DIGEST_HOUR
    minute: int = DIGEST_MINUTE
    zone: str = DEFAULT_ZONE


def digest_when(policy: IntegrationSettings) -> DigestWhen:
    day = policy.digest_day % 7 if policy.digest_day else DIGEST_DAY  # google.type: MONDAY = 1 .. SUNDAY = 7
    t = policy.digest_time
    return DigestWhen(day, t.hours, t.minutes, integration_settings.digest_zone(policy))


def weekly_schedule(
    tenant: str, task_queue: str, zone: str = DEFAULT_ZONE, when: DigestWhen | None = None
) -> Schedule:
    when = when or DigestWhen(zone=zone)
    zone = when.zone
    calendar = ScheduleCalendarSpec(
        day_of_week=[ScheduleRange(when.day)],
        hour=[ScheduleRange(when.hour)],
        minute=[ScheduleRange(when.minute)],
    )
    return Schedule(
        action=ScheduleActionStartWorkflow(
            WeeklyKeywordDigestWorkflow.run,
            DigestInput(tenant),
            id=f"integration-keyword-digest/{tenant}",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(calendars=[calendar], time_zone_name=zone),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(note=f"weekly {when.day} {when.hour:02d}:{when.minute:02d} {zone}"),
    )


async def ensure_tenant_schedule(
    client: Client, task_queue: str, tenant: str, when: DigestWhen | None = None
) -> bool:
    """Create the tenant's schedule, or update it when its spec changed. True if it changed."""
    wanted = weekly_schedule(tenant, task_queue, when=when)
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


class InsightActivities:
    def __init__(self, db: Database, client: Client | None) -> None:
        self.db, self.tx, self.client = db, transactions(db), client

    @activity.defn(name=MAKE)
    async def make(self, inp: MakeInput) -> Made:
        at = datetime.fromisoformat(inp.at)
        made = await self.tx.run(inp.tenant, lambda uow: keyword_digests.make_weekly(uow, at))
        return Made(made)

    @activity.defn(name=RECONCILE)
    async def reconcile(self, inp: EnsureInput) -> int:
        """Every tenant with conversations has its weekly schedule; returns how many changed."""
        if self.client is None:
            raise RuntimeError("schedules need the Temporal client")
        changed = 0
        for tenant in await tenants_with_conversations(self.db):
            # The tenant's day / time / zone: a settings change reaches the schedule within the hour.
            async with self.tx.read(tenant) as uow:
                when = digest_when(await integration_settings.get(uow))
            changed += await ensure_tenant_schedule(self.client, inp.task_queue, tenant, when)
        return changed

    def all(self) -> Sequence[Callable[..., Any]]:
        return [self.make, self.reconcile]


def build(rt: Runtime) -> Sequence[Callable[..., Any]]:
    return InsightActivities(rt.db, rt.temporal).all()


async def ensure_schedules(rt: Runtime) -> None:
    """Worker start: every tenant's weekly schedule now, and the hourly schedule that keeps them so."""
    task_queue = rt.settings.task_queue
    await InsightActivities(rt.db, rt.temporal).reconcile(EnsureInput(task_queue))
    keeper = Schedule(
        action=ScheduleActionStartWorkflow(
            EnsureKeywordDigestSchedulesWorkflow.run,
            EnsureInput(task_queue),
            id="integration-keyword-digest-schedules",
            task_queue=task_queue,
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    with contextlib.suppress(ScheduleAlreadyRunningError):
        await rt.temporal.create_schedule(ENSURE_SCHEDULE_ID, keeper)
