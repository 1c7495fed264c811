"""The monthly iteration's activities and the per-tenant Temporal schedules that start it.

On kit.schedules, like pipeline's weekly snapshot: one schedule per tenant with cards,
on IterationPolicy.run_day_of_month at run_time in the tenant's zone (default the 1st
at 03:00, deployment calendar zone); the worker ensures them at start and an hourly
schedule re-ensures them. A schedule's note records the spec it was made for, so an
unchanged one is left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from temporalio import activity
from temporalio.client import Client, Schedule

from kit import schedules
from kit.db import Database
from kit.runtime import Runtime
from kit.schedules import KeeperInput
from salesops.knowledge.v1 import settings_pb2
from services.knowledge import iteration, knowledge_settings
from services.knowledge.iteration_workflows import (
    ENSURE,
    MONTHLY,
    RECONCILE,
    RUN,
    MonthlyInput,
    RunInput,
    RunResult,
)
from services.knowledge.repositories.iteration import tenants_with_cards
from services.knowledge.store import transactions

ITERATIONS = schedules.Family(
    schedule_prefix="knowledge/monthly-iteration",
    workflow_prefix="knowledge-monthly-iteration",
    keeper_schedule_id="knowledge/iteration-schedules",
    keeper_workflow_id="knowledge-iteration-schedules",
)
schedule_id = ITERATIONS.schedule_id


def spec_of(p: settings_pb2.IterationPolicy) -> schedules.When:
    d = knowledge_settings.DEFAULTS.iteration
    at = p.run_time if p.HasField("run_time") else d.run_time
    return schedules.monthly(
        p.run_day_of_month or d.run_day_of_month, at.hours, at.minutes, iteration.zone_of(p).key
    )


def monthly_schedule(tenant: str, p: settings_pb2.IterationPolicy, task_queue: str) -> Schedule:
    return schedules.tenant_schedule(
        ITERATIONS, tenant, MONTHLY, MonthlyInput(tenant), task_queue, spec_of(p)
    )


async def ensure_tenant_schedule(
    client: Client, task_queue: str, tenant: str, p: settings_pb2.IterationPolicy
) -> bool:
    """Create the tenant's schedule, or update it when its settings changed. True if it changed."""
    return await schedules.ensure(client, schedule_id(tenant), monthly_schedule(tenant, p, task_queue))


class IterationActivities:
    def __init__(self, db: Database, client: Client | None) -> None:
        self.db, self.tx, self.client = db, transactions(db), client

    @activity.defn(name=RUN)
    async def run(self, inp: RunInput) -> RunResult:
        at = datetime.fromisoformat(inp.at)
        row = await self.tx.run(inp.tenant, lambda uow: iteration.run_scheduled(uow, at))
        return RunResult(row.report_id, row.state)

    @activity.defn(name=RECONCILE)
    async def reconcile(self, inp: KeeperInput) -> int:
        """Every tenant with cards has its schedule as its settings say; returns how many changed."""

        async def wanted(tenant: str) -> Schedule:
            async with self.tx.read(tenant) as uow:
                s = await knowledge_settings.current(uow)
            return monthly_schedule(tenant, s.iteration, inp.task_queue)

        return await schedules.reconcile(self.client, ITERATIONS, await tenants_with_cards(self.db), wanted)

    def all(self) -> Sequence[Callable[..., Any]]:
        return [self.run, self.reconcile]


def build(rt: Runtime) -> Sequence[Callable[..., Any]]:
    return IterationActivities(rt.db, rt.temporal).all()


async def ensure_schedules(rt: Runtime) -> None:
    """Worker start: every tenant's monthly schedule now, and the hourly schedule that keeps them so."""
    task_queue = rt.settings.task_queue
    await IterationActivities(rt.db, rt.temporal).reconcile(KeeperInput(task_queue))
    await schedules.ensure_keeper(rt.temporal, ITERATIONS, ENSURE, task_queue)


__all__ = [
    "ITERATIONS",
    "IterationActivities",
    "build",
    "ensure_schedules",
    "ensure_tenant_schedule",
    "monthly_schedule",
    "schedule_id",
    "spec_of",
]
