"""Temporal activities of the feedback duty's timer: each runs a use case of uses.py in its own unit of work."""

from __future__ import annotations

from datetime import datetime

from temporalio import activity

from kit.db import Database
from kit.resources import UnitOfWork
from services.knowledge import uses
from services.knowledge.domain.duties import Point
from services.knowledge.duty_workflows import FIRE, NEXT, DutyInput, FireInput, Timer
from services.knowledge.store import transactions


def _timer(point: Point | None) -> Timer:
    return Timer(point.number, point.at.isoformat()) if point is not None else Timer()


class DutyActivities:
    def __init__(self, db: Database) -> None:
        self.tx = transactions(db)

    @activity.defn(name=NEXT)
    async def next_timer(self, inp: DutyInput) -> Timer:
        async with self.tx.read(inp.tenant) as uow:
            return _timer(await uses.next_point(uow, inp.duty_id))

    @activity.defn(name=FIRE)
    async def fire(self, inp: FireInput) -> Timer:
        """Send the due reminder (re-checked in the transaction: a retry or a race sends nothing twice)."""
        at = datetime.fromisoformat(inp.at)
        now = datetime.fromisoformat(inp.now) if inp.now else at

        async def work(uow: UnitOfWork) -> Timer:
            return _timer(await uses.fire(uow, inp.duty_id, inp.number, at, now))

        return await self.tx.run(inp.tenant, work)

    def all(self) -> list[object]:
        return [self.next_timer, self.fire]
