"""The weekly keyword digest's activities and the per-tenant Temporal schedules that start it.

Schedules: one per tenant with conversations, Monday 08:00 in the tenant's zone
(IntegrationSettings' digest_day / digest_time defaults; Asia/Shanghai). The
worker ensures them at start and an hourly schedule re-ensures them, so a new
tenant is picked up within the hour. A schedule's note records the spec it was made for.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio import activity
from temporalio.client import Client, Schedule

from kit import schedules
from kit.db import Database
from kit.runtime import Runtime
from kit.schedules import KeeperInput
from salesops.integration.v1.settings_pb2 import IntegrationSettings
from services.integration import integration_settings, keyword_digests
from services.integration.domain.keyword_digest import DEFAULT_ZONE
from services.integration.insight_workflows import (
    ENSURE,
    MAKE,
    RECONCILE,
    WEEKLY,
    DigestInput,
    Made,
    MakeInput,
)
from services.integration.repositories.insights import tenants_with_conversations
from services.integration.store import transactions

DIGESTS = schedules.Family(
    schedule_prefix="integration/keyword-digest",
    workflow_prefix="integration-keyword-digest",
    keeper_schedule_id="integration/keyword-digest-schedules",
    keeper_workflow_id="integration-keyword-digest-schedules",
)
schedule_id = DIGESTS.schedule_id
DIGEST_DAY, DIGEST_HOUR, DIGEST_MINUTE = 1, 8, 0  # Monday 08:00 (Temporal: SUNDAY = 0)


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
    calendar = schedules.weekly(when.day, when.hour, when.minute, when.zone)
    return schedules.tenant_schedule(DIGESTS, tenant, WEEKLY, DigestInput(tenant), task_queue, calendar)


async def ensure_tenant_schedule(
    client: Client, task_queue: str, tenant: str, when: DigestWhen | None = None
) -> bool:
    """Create the tenant's schedule, or update it when its spec changed. True if it changed."""
    return await schedules.ensure(client, schedule_id(tenant), weekly_schedule(tenant, task_queue, when=when))


class InsightActivities:
    def __init__(self, db: Database, client: Client | None) -> None:
        self.db, self.tx, self.client = db, transactions(db), client

    @activity.defn(name=MAKE)
    async def make(self, inp: MakeInput) -> Made:
        at = datetime.fromisoformat(inp.at)
        made = await self.tx.run(inp.tenant, lambda uow: keyword_digests.make_weekly(uow, at))
        return Made(made)

    @activity.defn(name=RECONCILE)
    async def reconcile(self, inp: KeeperInput) -> int:
        """Every tenant with conversations has its weekly schedule; returns how many changed."""

        async def wanted(tenant: str) -> Schedule:
            # The tenant's day / time / zone: a settings change reaches the schedule within the hour.
            async with self.tx.read(tenant) as uow:
                when = digest_when(await integration_settings.get(uow))
            return weekly_schedule(tenant, inp.task_queue, when=when)

        tenants = await tenants_with_conversations(self.db)
        return await schedules.reconcile(self.client, DIGESTS, tenants, wanted)

    def all(self) -> Sequence[Callable[..., Any]]:
        return [self.make, self.reconcile]


def build(rt: Runtime) -> Sequence[Callable[..., Any]]:
    return InsightActivities(rt.db, rt.temporal).all()


async def ensure_schedules(rt: Runtime) -> None:
    """Worker start: every tenant's weekly schedule now, and the hourly schedule that keeps them so."""
    task_queue = rt.settings.task_queue
    await InsightActivities(rt.db, rt.temporal).reconcile(KeeperInput(task_queue))
    await schedules.ensure_keeper(rt.temporal, DIGESTS, ENSURE, task_queue)
