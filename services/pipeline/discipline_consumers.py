"""Stream consumers of update discipline and process health.

- `pipeline-discipline` (worker role): our own deal events wake the tenant's
  discipline timer (signal-with-start), so a new stage entry with a short dwell
  limit is planned at once; committed events reach it even if Temporal was down.
- `pipeline-lead-responses`: leads' FirstResponseRecorded, kept once per lead
  (the first one wins; the consumer's processed-event ids drop redeliveries) as
  the input of the lead response time metric.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.events import EventEnvelope, service_stream
from kit.events.consumer import Handler
from kit.events.envelope import occurred_at, unpack_payload
from kit.runtime import ConsumerSpec, Runtime
from salesops.leads.v1 import events_pb2 as lead_events
from services.pipeline import events
from services.pipeline.consumers import on_session
from services.pipeline.discipline_activities import poke
from services.pipeline.repositories.health import LeadResponses
from services.pipeline.store import DealRow
from services.pipeline.store_discipline import LeadResponseRow

FIRST_RESPONSE = "leads.FirstResponseRecorded"
# Deal events after which the tenant's timer must plan again.
WAKING = (events.DEAL_CREATED, events.DEAL_STAGE_CHANGED, events.DEAL_REOPENED, events.DEAL_OWNER_CHANGED)


def timer_handler(rt: Runtime) -> Handler:
    async def handle(envelope: EventEnvelope, _session: AsyncSession) -> None:
        await poke(rt.temporal, rt.settings.task_queue, envelope.tenant)

    return handle


def responses_handler(rt: Runtime) -> Handler:
    async def handle(envelope: EventEnvelope, session: AsyncSession) -> None:
        evt = unpack_payload(envelope, lead_events.FirstResponseRecorded)
        if not evt.lead.lead_id:
            return
        responded = (
            evt.response_time.ToDatetime(tzinfo=occurred_at(envelope).tzinfo)
            if evt.HasField("response_time")
            else occurred_at(envelope)
        )
        await LeadResponses(on_session(session, envelope.tenant)).record_first(
            LeadResponseRow(
                lead_id=evt.lead.lead_id[:64],
                team_path=evt.lead.team_path[:200],
                responder_user_id=evt.responder_user_id[:128],
                response_seconds=max(0, int(evt.business_time_to_respond.ToTimedelta().total_seconds())),
                responded_at=responded,
            )
        )

    return handle


async def ensure_timers(rt: Runtime) -> None:
    """At worker start: every tenant with deals has its timer (a tenant from before the timer existed)."""
    async with rt.db.system_session() as session:
        tenants = list(await session.scalars(select(DealRow.tenant_id).distinct()))
    for tenant in tenants:
        await poke(rt.temporal, rt.settings.task_queue, tenant)


TIMER_CONSUMER = ConsumerSpec(
    group="pipeline-discipline",
    streams=(service_stream(events.SOURCE),),
    handler=timer_handler,
    types=WAKING,
    role="worker",
    options={"min_idle": 30.0},
)
RESPONSES_CONSUMER = ConsumerSpec(
    group="pipeline-lead-responses",
    streams=(service_stream("leads"),),
    handler=responses_handler,
    types=(FIRST_RESPONSE,),
)

__all__ = ["RESPONSES_CONSUMER", "TIMER_CONSUMER", "ensure_timers"]
