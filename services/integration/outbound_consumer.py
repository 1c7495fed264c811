"""Platform events -> outbound deliveries: one consumer group over every service's stream.

The handler runs in the consumer's transaction, the one that records the event as
processed, so an event fans out to its matching subscriptions exactly once. Once
that transaction has committed (`before_ack`) the new rows' workflows are started
and the rows marked claimed; a start that fails (Temporal away) is left to the sweep schedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kit.errors import Unavailable
from kit.events import EventEnvelope
from kit.events.entries import Delivery
from kit.events.streams import producer_streams
from kit.resources import PageTokens, UnitOfWork
from kit.runtime import ConsumerSpec, Runtime
from services.integration import deliveries, store

GROUP = "integration-outbound"
# The consumer never lists; its unit of work needs page tokens only to exist.
_NO_PAGING = PageTokens(b"integration-outbound-never-pages")


class FanOut:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._made: dict[str, list[tuple[str, str]]] = {}  # event id -> (tenant, delivery id), until acked

    async def __call__(self, envelope: EventEnvelope, session: AsyncSession) -> None:
        uow = UnitOfWork(
            session, envelope.tenant, source="integration", outbox=store.outbox, tokens=_NO_PAGING
        )
        made = await deliveries.fan_out(uow, envelope, datetime.now(UTC))
        if made:
            self._made[envelope.id] = [(envelope.tenant, d) for d in made]

    async def before_ack(self, done: Sequence[Delivery]) -> None:
        refs = [ref for entry in done for ref in self._made.pop(entry.event_id, [])]
        if not refs:
            return
        try:
            client = self.rt.temporal
        except Unavailable:
            return  # not connected yet: the sweep starts them
        await deliveries.start_all(client, self.rt.settings.task_queue, refs, self.rt.db)


def handler(rt: Runtime) -> FanOut:
    return FanOut(rt)


CONSUMER = ConsumerSpec(GROUP, producer_streams(), handler)
