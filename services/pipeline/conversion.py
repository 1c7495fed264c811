"""Deals from converted leads (leads.LeadConverted): one deal per converted lead, whatever is redelivered.

The deal takes the id leads chose (opportunity_id), the owner and team of the
lead, the company as customer (an account matched by name or contact, else
created), the estimated amount and close date (else the
default offset). It is created by the same use case as any deal, so the gates
of its stage run like everywhere else. Idempotent twice over: the consumer's
processed-event row, and the lead's deal looked up before creating (backed by
the unique (tenant_id, lead_id) key when two deliveries race).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from kit.auth import Principal
from kit.errors import InvalidArgument
from kit.resources import UnitOfWork
from salesops.common.v1.types_pb2 import Money
from salesops.leads.v1 import events_pb2 as lead_events
from salesops.pipeline.v1 import deal_pb2
from services.pipeline import pipeline_settings
from services.pipeline.convert import date_proto, optional_date
from services.pipeline.customer_projection import customer_for_lead, record_conversion
from services.pipeline.deals import MAX_AMOUNT_MINOR, MAX_CHARS, create_deal
from services.pipeline.repositories.deals import Deals
from services.pipeline.store import DealRow

SYSTEM = "system:pipeline"


def _close_date(evt: lead_events.LeadConverted, at: datetime, offset: timedelta) -> deal_pb2.Deal:
    """The deal's close date: the lead's when it is a real, future date; else the default offset."""
    d = deal_pb2.Deal()
    try:
        given = optional_date(evt.expected_close_date, "expected_close_date")
    except InvalidArgument:
        given = None  # an impossible date from the lead: the default applies
    chosen = given if given is not None and given >= at.date() else (at + offset).date()
    d.expected_close_date.CopyFrom(date_proto(chosen))
    return d


def deal_of_lead(
    evt: lead_events.LeadConverted, at: datetime, currency: str, offset: timedelta
) -> deal_pb2.Deal:
    company = evt.company.name.strip()
    customer = company or evt.contact_name.strip() or f"Lead {evt.lead.lead_id}"
    deal = _close_date(evt, at, offset)
    deal.deal_id = evt.opportunity_id
    # Cut to the deal's limits: an over-long lead field must not stop its conversion.
    deal.title = (evt.opportunity_name.strip() or customer)[: MAX_CHARS["title"]]
    deal.customer.display_name = customer[: MAX_CHARS["customer.display_name"]]
    deal.customer.industry = evt.company.industry[: MAX_CHARS["customer.industry"]]
    deal.customer.city = evt.company.city[: MAX_CHARS["customer.city"]]
    # A pool lead converted by a manager has no owner: the converting user takes the deal.
    deal.owner_user_id = evt.owner_user_id or evt.actor_user_id
    amount = evt.amount_estimate
    if amount.currency == currency and 0 <= amount.amount_minor <= MAX_AMOUNT_MINOR:
        deal.amount.CopyFrom(amount)
    else:
        deal.amount.CopyFrom(Money(amount_minor=0, currency=currency))
        if amount.currency:  # no FX here: the estimate is kept on the deal for the rep to convert
            deal.custom_fields["lead_amount_estimate"] = f"{amount.amount_minor} {amount.currency}"
    deal.source.lead_id = evt.lead.lead_id
    if evt.note:
        deal.next_step = evt.note[:500]
    return deal


async def deal_from_lead(uow: UnitOfWork, evt: lead_events.LeadConverted, at: datetime) -> DealRow:
    """The lead's deal, for the customer the lead becomes or matches (customers.py dedupe)."""
    repo = Deals(uow)
    lead_id = evt.lead.lead_id
    existing = await repo.by_lead(lead_id) if lead_id else None
    if existing is not None:
        return existing
    system = Principal(SYSTEM, uow.tenant, frozenset({"service"}), "", at + timedelta(minutes=5))
    tenant = await pipeline_settings.current(uow)
    offset = timedelta(days=tenant.converted_deal_close_offset_days)
    deal = deal_of_lead(evt, at, tenant.base_currency, offset)
    customer = await customer_for_lead(uow, system, evt, at)
    deal.customer.customer_id = customer.customer_id
    row = await create_deal(uow, system, deal, at, origin="LEAD_CONVERSION", org_path=evt.team_path)
    if lead_id:
        await record_conversion(uow, evt, customer.customer_id, row.deal_id, at)
    return row
