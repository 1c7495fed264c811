"""Stream consumers of the knowledge service: pipeline's deal events feed the deal projection and lift."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from kit.events import EventEnvelope, service_stream
from kit.events.consumer import Handler
from kit.events.envelope import occurred_at, unpack_payload
from kit.resources import PageTokens, UnitOfWork
from kit.runtime import ConsumerSpec, Runtime
from services.knowledge import deal_outcomes, store

# Consumers never list; their units of work need tokens only to exist.
_NO_PAGING = PageTokens(b"knowledge-consumers-never-page")


def on_session(session: AsyncSession, tenant: str) -> UnitOfWork:
    """A unit of work over the consumer's tenant session (the consumer commits it with the processed row)."""
    return UnitOfWork(session, tenant, source="knowledge", outbox=store.outbox, tokens=_NO_PAGING)


def deals_handler(rt: Runtime) -> Handler:
    async def handle(envelope: EventEnvelope, session: AsyncSession) -> None:
        evt = unpack_payload(envelope, deal_outcomes.EVENTS[envelope.type])
        await deal_outcomes.apply_deal_event(on_session(session, envelope.tenant), evt, occurred_at(envelope))

    return handle


# Idempotent by event id: the kit's consumer records (group, event id) in processed_events
# in the same transaction as the projection, and skips an event it has already applied.
DEALS_CONSUMER = ConsumerSpec(
    group="knowledge-deals",
    streams=(service_stream("pipeline"),),
    handler=deals_handler,
    types=tuple(deal_outcomes.EVENTS),
)
