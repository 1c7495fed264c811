"""Use and praise points from the service's own events, in the consumer's transaction.

CardUsed (the first use of a card by a rep on a deal or lead: the one that opens a
feedback duty, so repeat uses by the same rep earn nothing more) and FeedbackRecorded
with FULLY award the contributor of a LIGHT card (points.award_card_use). Each event
books at most one entry (`used:<use_id>`, `praised:<use_id>`), so a redelivery is a no-op.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from kit.events import EventEnvelope, service_stream, unpack_payload
from kit.events.consumer import Handler
from kit.events.envelope import occurred_at
from kit.resources import PageTokens, UnitOfWork
from kit.runtime import ConsumerSpec, Runtime
from salesops.knowledge.v1 import events_pb2
from services.knowledge import points, store
from services.knowledge.uses import EVENT_FEEDBACK, EVENT_USED

# Consumers never list; their units of work need tokens only to exist.
_NO_PAGING = PageTokens(b"knowledge-consumers-never-page")


def on_session(session: AsyncSession, tenant: str) -> UnitOfWork:
    """A unit of work over the consumer's tenant session (the consumer commits it with the processed row)."""
    return UnitOfWork(session, tenant, source="knowledge", outbox=store.outbox, tokens=_NO_PAGING)


async def award(envelope: EventEnvelope, session: AsyncSession) -> None:
    uow = on_session(session, envelope.tenant)
    at = occurred_at(envelope)
    if envelope.type == EVENT_USED:
        used = unpack_payload(envelope, events_pb2.CardUsed)
        if used.duty_use_id and used.duty_use_id != used.use_id:
            return  # a repeat use on the same deal or lead
        await points.award_card_use(
            uow, card_id=used.card_id, use_id=used.use_id, user_id=used.user_id, praised=False, at=at
        )
    elif envelope.type == EVENT_FEEDBACK:
        rated = unpack_payload(envelope, events_pb2.FeedbackRecorded)
        if points.is_praise(rated.rating):
            await points.award_card_use(
                uow, card_id=rated.card_id, use_id=rated.use_id, user_id=rated.user_id, praised=True, at=at
            )


def points_handler(rt: Runtime) -> Handler:
    return award


POINTS_CONSUMER = ConsumerSpec(
    group="knowledge-points",
    streams=(service_stream("knowledge"),),
    handler=points_handler,
    types=(EVENT_USED, EVENT_FEEDBACK),
)
