"""A consumer's group commit (StreamConsumer(group_commit=True)): the entries of one read that belong
to one tenant are applied in one transaction, in order, each with its own processed-event row.

A burst (a thousand SLA reminders due in the same second) otherwise costs a transaction per entry:
session, BEGIN, the writer's turn on SQLite, COMMIT, a thousand times; and the handler may share
reads across the transaction (notify reads a tenant's defaults once). If the group's transaction
fails as a whole, each entry is applied alone, as without group commit, so one bad entry is retried
or dead-lettered alone and never holds up the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import Database
from kit.events.entries import Delivery
from kit.events.envelope import EventEnvelope, consumer_span

log = logging.getLogger("kit.events.consumer")


class TenantGroups:
    """StreamConsumer's group commit; the attributes and steps below are StreamConsumer's."""

    db: Database
    group: str
    tracer: Any
    handler: Callable[[EventEnvelope, AsyncSession], Awaitable[None]]
    handled: int
    skipped: int
    groups: int
    _stopping: bool

    async def _prepare(self, delivery: Delivery) -> EventEnvelope | bool:
        raise NotImplementedError

    async def _apply_one(self, delivery: Delivery, envelope: EventEnvelope) -> bool:
        raise NotImplementedError

    async def _claim_event(self, session: AsyncSession, event_id: str) -> bool:
        raise NotImplementedError

    async def _process_grouped(self, batch: Iterable[Delivery], done: list[Delivery]) -> None:
        """Runs of consecutive entries of one tenant are applied in one transaction each, in order.

        A burst (a thousand reminders due in the same second) otherwise costs a transaction per
        entry: session, BEGIN, the writer's turn on SQLite, COMMIT, each paid a thousand times.
        """
        run: list[tuple[Delivery, EventEnvelope]] = []
        for delivery in batch:
            if self._stopping:
                break
            envelope = await self._prepare(delivery)
            if isinstance(envelope, bool):
                if envelope:
                    done.append(delivery)
                continue
            if run and run[-1][1].tenant != envelope.tenant:
                done.extend(await self._apply_run(run))
                run = []
            run.append((delivery, envelope))
        if run and not self._stopping:
            done.extend(await self._apply_run(run))

    async def _apply_run(self, run: Sequence[tuple[Delivery, EventEnvelope]]) -> list[Delivery]:
        """Apply one tenant's entries together; the deliveries to acknowledge."""
        if len(run) > 1:
            try:
                applied = await self._apply_together([envelope for _, envelope in run])
            except asyncio.CancelledError:
                raise
            except Exception:  # one entry, or the database: each alone says which (retries, DLQ)
                log.debug("group of %d entries failed; applying them one by one", len(run), exc_info=True)
            else:
                self.groups += 1
                self.handled += sum(applied)
                self.skipped += len(applied) - sum(applied)
                return [delivery for delivery, _ in run]
        return [delivery for delivery, envelope in run if await self._apply_one(delivery, envelope)]

    async def _apply_together(self, envelopes: Sequence[EventEnvelope]) -> list[bool]:
        """One transaction: per entry its processed-event row and, when new, the handler."""
        applied: list[bool] = []
        async with self.db.session(envelopes[0].tenant) as session:
            for envelope in envelopes:
                with consumer_span(
                    envelope, tracer=self.tracer, attributes={"messaging.consumer.group.name": self.group}
                ) as span:
                    new = await self._claim_event(session, envelope.id)
                    if new:
                        await self.handler(envelope, session)
                    span.set_attribute("salesops.event.duplicate", not new)
                applied.append(new)
            await session.commit()
        return applied
