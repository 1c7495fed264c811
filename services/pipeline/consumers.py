"""Stream consumers of the pipeline service: converted leads become deals."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from kit.events import EventEnvelope, service_stream
from kit.events.consumer import Handler
from kit.events.envelope import occurred_at, unpack_payload
from kit.resources import PageTokens, UnitOfWork
from kit.runtime import ConsumerSpec, Runtime
from salesops.leads.v1 import events_pb2 as lead_events
from services.pipeline import conversion, customer_projection, store

LEAD_CONVERTED = "leads.LeadConverted"
ACTIVITY_LOGGED = "leads.ActivityLogged"
# Consumers never list; their units of work need tokens only to exist.
_NO_PAGING = PageTokens(b"pipeline-consumers-never-page")


def on_session(session: AsyncSession, tenant: str) -> UnitOfWork:
    """A unit of work over the consumer's tenant session (the consumer commits it with the processed row)."""
    return UnitOfWork(session, tenant, source="pipeline", outbox=store.outbox, tokens=_NO_PAGING)


def converted_handler(rt: Runtime) -> Handler:
    async def handle(envelope: EventEnvelope, session: AsyncSession) -> None:
        if envelope.type == ACTIVITY_LOGGED:  # the follow-ups of the single customer view
            logged = unpack_payload(envelope, lead_events.ActivityLogged)
            await customer_projection.record_follow_up(
                on_session(session, envelope.tenant), logged, occurred_at(envelope)
            )
            return
        evt = unpack_payload(envelope, lead_events.LeadConverted)
        await conversion.deal_from_lead(on_session(session, envelope.tenant), evt, occurred_at(envelope))

    return handle


LEADS_CONSUMER = ConsumerSpec(
    group="pipeline-leads",
    streams=(service_stream("leads"),),
    handler=converted_handler,
    types=(LEAD_CONVERTED, ACTIVITY_LOGGED),
)
