"""Who owns which lead and deal, from leads' and pipeline's events: reps submit conversations for their own.

Applied once per event in the consumer's transaction (the runtime records it as
processed there). Only the owner and team are kept; nothing else of the lead or deal.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kit.events import EventEnvelope, service_stream, unpack_payload
from kit.events.consumer import Handler
from kit.resources import PageTokens, UnitOfWork
from kit.runtime import ConsumerSpec, Runtime
from salesops.leads.v1 import events_pb2 as leads_events
from salesops.pipeline.v1 import events_pb2 as pipeline_events
from services.integration import store
from services.integration.repositories.insights import Subjects

GROUP = "integration-insights"
_NO_PAGING = PageTokens(b"integration-insights-never-pages")
LEAD_EVENTS = {
    "leads.LeadCreated": leads_events.LeadCreated,
    "leads.LeadAssigned": leads_events.LeadAssigned,
    "leads.LeadReleased": leads_events.LeadReleased,
}
DEAL_EVENTS = {
    "pipeline.DealCreated": pipeline_events.DealCreated,
    "pipeline.DealOwnerChanged": pipeline_events.DealOwnerChanged,
}


async def record_owner(envelope: EventEnvelope, session: AsyncSession) -> None:
    uow = UnitOfWork(session, envelope.tenant, source="integration", outbox=store.outbox, tokens=_NO_PAGING)
    at = datetime.now(UTC)
    if envelope.type in LEAD_EVENTS:
        lead: leads_events.LeadContext = unpack_payload(envelope, LEAD_EVENTS[envelope.type]).lead  # type: ignore[attr-defined]
        await Subjects(uow).record("lead", lead.lead_id, lead.owner_user_id, lead.team_path, at)
    elif envelope.type in DEAL_EVENTS:
        deal: pipeline_events.DealContext = unpack_payload(envelope, DEAL_EVENTS[envelope.type]).deal  # type: ignore[attr-defined]
        await Subjects(uow).record("deal", deal.deal_id, deal.owner_user_id, deal.org_path, at)


def handler(rt: Runtime) -> Handler:
    return record_owner


CONSUMER = ConsumerSpec(
    GROUP,
    [service_stream("leads"), service_stream("pipeline")],
    handler,
    types=(*LEAD_EVENTS, *DEAL_EVENTS),
)
