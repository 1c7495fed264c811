"""What leads' events tell pipeline about customers: the account a converted lead becomes or
matches, the leads it came from, their follow-ups, and conversation keyword tags. Never commit.

Fed only by events (leads.LeadConverted, leads.ActivityLogged), each write an upsert
by the event's own key, so a redelivered event changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from kit.auth import Principal
from kit.errors import InvalidArgument
from kit.resources import UnitOfWork
from salesops.leads.v1 import activity_pb2, enums_pb2
from salesops.leads.v1 import events_pb2 as lead_events
from salesops.pipeline.v1 import customer_pb2
from services.pipeline.convert import aware, from_ts, optional_date
from services.pipeline.customers import (
    CONTACT_LIMITS,
    LIMITS,
    add_contact,
    create_customer,
    match,
    normalised,
)
from services.pipeline.domain import customers as rules
from services.pipeline.repositories.customers import CustomerActivity
from services.pipeline.store_customers import CustomerLeadRow, CustomerRow, CustomerTagRow, LeadFollowUpRow

CONVERTED_SOURCE = "leads.LeadConverted"


def customer_of_lead(evt: lead_events.LeadConverted) -> customer_pb2.Customer:
    """The account a converted lead describes, cut to the customer's limits (a long field must not stop it)."""
    name = evt.company.name.strip() or evt.contact_name.strip()
    if not rules.normalize_company(name):
        name = f"Lead {evt.lead.lead_id}"
    c = customer_pb2.Customer(
        display_name=name[: LIMITS["display_name"]],
        industry=evt.company.industry[: LIMITS["industry"]],
        city=evt.company.city[: LIMITS["city"]],
        website=evt.company.website[: LIMITS["website"]],
        owner_user_id=(evt.owner_user_id or evt.actor_user_id)[: LIMITS["owner_user_id"]],
    )
    if evt.contact_name.strip():
        c.contacts.add(
            name=evt.contact_name.strip()[: CONTACT_LIMITS["name"]],
            job_title=evt.contact_job_title[: CONTACT_LIMITS["job_title"]],
            lead_id=evt.lead.lead_id[: CONTACT_LIMITS["lead_id"]],
        )
    return c


async def customer_for_lead(
    uow: UnitOfWork, system: Principal, evt: lead_events.LeadConverted, at: datetime
) -> CustomerRow:
    """The customer the lead matches (its contact added), else a new one in the lead's team."""
    wanted, keys = normalised(customer_of_lead(evt))
    existing = await match(uow, wanted.normalized_name, keys)
    if existing is not None:
        for contact in wanted.contacts:
            await add_contact(uow, existing, contact, at)
        return existing
    row, _ = await create_customer(
        uow, system, wanted, at, lead_id=evt.lead.lead_id, org_path=evt.team_path.strip("/")
    )
    return row


async def record_conversion(
    uow: UnitOfWork, evt: lead_events.LeadConverted, customer_id: str, deal_id: str, at: datetime
) -> None:
    repo = CustomerActivity(uow)
    row = await repo.find(evt.lead.lead_id)
    if row is None:
        row = CustomerLeadRow(lead_id=evt.lead.lead_id)
        uow.session.add(row)
    row.customer_id, row.deal_id = customer_id, deal_id
    row.display_name = evt.lead.display_name[:300]
    row.owner_user_id = (evt.owner_user_id or evt.actor_user_id)[:128]
    row.source_code = evt.source_code[:64]
    row.lead_created_at = _time(evt.lead_create_time)
    row.converted_at = _time(evt.convert_time) or at
    await add_tags(uow, customer_id, rules.keyword_tags(evt.note), CONVERTED_SOURCE, at)


async def add_tags(uow: UnitOfWork, customer_id: str, tags: list[str], source: str, at: datetime) -> None:
    """Count each tag once more for the customer (callers dedupe by event id: the consumer's processed row)."""
    repo = CustomerActivity(uow)
    for tag in tags:
        row = await repo.tag(customer_id, tag)
        if row is None:
            row = CustomerTagRow(customer_id=customer_id, tag=tag, count=0)
            uow.session.add(row)
        row.count, row.source, row.last_seen_at = row.count + 1, source, at
    await uow.session.flush()


async def record_follow_up(uow: UnitOfWork, evt: lead_events.ActivityLogged, at: datetime) -> None:
    """Upsert the follow-up by activity id (a completed visit updates its check-in's row)."""
    if not evt.activity_id or not evt.lead.lead_id:
        return
    repo = CustomerActivity(uow)
    row = await repo.follow_up(evt.activity_id)
    if row is None:
        row = LeadFollowUpRow(activity_id=evt.activity_id[:64])
        uow.session.add(row)
    row.lead_id = evt.lead.lead_id[:64]
    row.activity_type = _name(enums_pb2.ActivityType, evt.activity_type)
    row.state = _name(activity_pb2.ActivityState, evt.state)
    row.outcome = _name(enums_pb2.ActivityOutcome, evt.outcome)
    row.actor_user_id = evt.actor_user_id[:128]
    row.occurred_at = _time(evt.occur_time) or at
    try:
        row.next_step_due = optional_date(evt.next_step_due_date, "next_step_due_date")
    except InvalidArgument:  # an impossible date from the producer: the follow-up is still worth keeping
        row.next_step_due = None
    await uow.session.flush()


def _name(enum: Any, value: int) -> str:
    """The producer's enum name ("" for unset or a value newer than our stubs)."""
    found = enum.DESCRIPTOR.values_by_number.get(value) if value else None
    return str(found.name) if found is not None else ""


def _time(t: Timestamp) -> datetime | None:
    try:
        value = from_ts(t)
    except InvalidArgument:  # out of range from the producer: unknown rather than a stuck consumer
        return None
    return aware(value) if value is not None else None
