"""Temporal activities of the tenant's discipline timer: all I/O, one transaction per batch.

They run the rules for the instant the workflow woke for (its clock, not this
process's), so a replayed or late activity decides as it would have on time.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import partial

from temporalio import activity
from temporalio.client import Client

from kit.db import Database
from kit.resources import UnitOfWork
from services.pipeline import discipline, health
from services.pipeline.discipline_workflows import (
    PLAN,
    SIGNAL,
    SWEEP,
    WORKFLOW_NAME,
    DisciplineInput,
    Plan,
    PlanInput,
    SweepInput,
    Swept,
    workflow_id,
)
from services.pipeline.store import transactions

# The teams' p90 dwell scans the change history: kept this long per tenant in the worker.
P90_TTL_SECONDS = 3600.0


class DisciplineActivities:
    def __init__(self, db: Database) -> None:
        self.tx = transactions(db)
        self._p90: dict[str, tuple[float, dict[tuple[str, str], int]]] = {}

    async def _team_p90(self, uow: UnitOfWork) -> dict[tuple[str, str], int]:
        cached = self._p90.get(uow.tenant)
        if cached is not None and time.monotonic() < cached[0]:
            return cached[1]
        fresh = await discipline.team_p90s(uow)
        self._p90[uow.tenant] = (time.monotonic() + P90_TTL_SECONDS, fresh)
        return fresh

    @activity.defn(name=PLAN)
    async def plan(self, inp: PlanInput) -> Plan:
        at = datetime.fromisoformat(inp.now)
        async with self.tx.read(inp.tenant) as uow:
            wake = await discipline.next_wake(uow, at, await self._team_p90(uow))
            wake = min(wake, await health.next_run(uow, at))
        return Plan(wake.isoformat())

    async def _batches(self, tenant: str, step: Callable[[UnitOfWork], Awaitable[int]]) -> int:
        total = 0
        while True:
            activity.heartbeat(total)
            done = await self.tx.run(tenant, step)
            total += done
            if done < discipline.BATCH:
                return total

    @activity.defn(name=SWEEP)
    async def sweep(self, inp: SweepInput) -> Swept:
        at = datetime.fromisoformat(inp.at)
        frozen, after = 0, ""
        while True:
            activity.heartbeat(frozen)
            batch = await self.tx.run(inp.tenant, partial(discipline.freeze_batch, at=at, after=after))
            frozen += batch.count
            if batch.count < discipline.BATCH:
                break
            after = batch.last
        async with self.tx.read(inp.tenant) as uow:
            p90 = await self._team_p90(uow)
        flagged = await self._batches(
            inp.tenant, lambda uow: discipline.flag_dwell(uow, at, discipline.BATCH, p90)
        )
        weeks = await self.tx.run(inp.tenant, lambda uow: health.run_due(uow, at))
        return Swept(frozen, flagged, weeks)


async def poke(client: Client, task_queue: str, tenant: str) -> None:
    """Start the tenant's timer, or tell the running one to plan again (signal-with-start)."""
    await client.start_workflow(
        WORKFLOW_NAME,
        DisciplineInput(tenant),
        id=workflow_id(tenant),
        task_queue=task_queue,
        start_signal=SIGNAL,
    )


__all__ = ["DisciplineActivities", "poke"]
