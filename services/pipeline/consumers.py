"""Stream consumers of the pipeline service: converted leads become deals, integration events finance facts."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from kit.events import EventEnvelope, service_stream
from kit.events.consumer import Handler
from kit.events.envelope import occurred_at, unpack_payload
from kit.resources import PageTokens, UnitOfWork
from kit.runtime import ConsumerSpec, Runtime
from salesops.integration.v1 import events_pb2 as integration_events
from salesops.leads.v1 import events_pb2 as lead_events
from salesops.pipeline.v1 import pipeline_service_pb2, reconciliation_pb2
from services.pipeline import conversion, customer_projection, reconciliation, store

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


# --- integration's finance / ERP events -> finance facts (the same use case as IngestFinanceFacts).

log = logging.getLogger("salesops.pipeline.consumers")
FACT_KINDS = {
    "integration.PaymentReceived": (
        integration_events.PaymentReceived,
        reconciliation_pb2.FINANCE_FACT_KIND_PAYMENT_RECEIVED,
    ),
    "integration.ContractSigned": (
        integration_events.ContractSigned,
        reconciliation_pb2.FINANCE_FACT_KIND_CONTRACT_SIGNED,
    ),
    "integration.InvoiceIssued": (
        integration_events.InvoiceIssued,
        reconciliation_pb2.FINANCE_FACT_KIND_INVOICE_ISSUED,
    ),
    "integration.ShipmentDispatched": (
        integration_events.ShipmentDispatched,
        reconciliation_pb2.FINANCE_FACT_KIND_SHIPMENT_DISPATCHED,
    ),
}
_FOREVER = datetime.max.replace(tzinfo=UTC)


def fact_of(envelope: EventEnvelope) -> reconciliation_pb2.FinanceFact:
    """The event as a finance fact: keyed by (connector, external id), ordered by the source's update time."""
    cls, kind = FACT_KINDS[envelope.type]
    evt: Any = unpack_payload(envelope, cls)
    fact = reconciliation_pb2.FinanceFact(kind=kind, deal_id=evt.deal_id, customer_id=evt.customer_id)
    fact.source_system = evt.origin.connector_id
    if isinstance(evt, integration_events.PaymentReceived):
        ref, amount, occurred = evt.payment, evt.amount, evt.occur_time
        fact.contract_external_id = evt.contract.external_id
    elif isinstance(evt, integration_events.ContractSigned):
        ref, amount, occurred = evt.contract, evt.amount, evt.signed_time
        fact.contract_external_id = evt.contract.external_id
    elif isinstance(evt, integration_events.InvoiceIssued):
        ref, amount, occurred = evt.invoice, evt.total_amount, evt.occur_time
        fact.contract_external_id = evt.contract.external_id
    else:
        ref, amount, occurred = evt.shipment, None, evt.dispatch_time
        fact.contract_external_id = evt.order.external_id
    fact.external_id, fact.external_number = ref.external_id, ref.external_number
    if amount is not None:
        fact.amount.CopyFrom(amount)
    fact.occur_time.CopyFrom(occurred if occurred.seconds else envelope.occurred_at)
    if evt.origin.HasField("source_update_time"):
        fact.source_update_time.CopyFrom(evt.origin.source_update_time)
    return fact


def integration_handler(rt: Runtime) -> Handler:
    async def handle(envelope: EventEnvelope, session: AsyncSession) -> None:
        system = Principal(
            user_id="system:integration",
            tenant=envelope.tenant,
            roles=frozenset({"service"}),
            org="",
            expires_at=_FOREVER,
            scopes=frozenset({reconciliation.WRITE_SCOPE}),
        )
        fact = fact_of(envelope)
        uow = on_session(session, envelope.tenant)
        (result,) = await reconciliation.ingest(uow, system, [fact], occurred_at(envelope))
        if result.status == pipeline_service_pb2.FACT_INGEST_STATUS_INVALID:
            # Applied as far as it can be: a fact pipeline refuses (e.g. another currency) is not retried.
            log.warning(
                "integration fact refused",
                extra={"event_id": envelope.id, "type": envelope.type, "reason": result.error.message},
            )

    return handle


INTEGRATION_CONSUMER = ConsumerSpec(
    group="pipeline-integration",
    streams=(service_stream("integration"),),
    handler=integration_handler,
    types=tuple(FACT_KINDS),
)
