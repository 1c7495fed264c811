"""Closing a lead: conversion into an opportunity (announced for pipeline) and disqualification."""

from __future__ import annotations

from datetime import datetime

from ulid import ULID

from kit.auth import Principal
from kit.errors import FailedPrecondition, InvalidArgument
from kit.resources import UnitOfWork
from salesops.leads.v1 import events_pb2, lead_pb2
from services.leads import access, events, validation
from services.leads.convert import parse, ts
from services.leads.domain import sla, status
from services.leads.repositories.leads import LeadRepository
from services.leads.store import LeadRow


async def convert(
    uow: UnitOfWork,
    who: Principal,
    lead_id: str,
    at: datetime,
    *,
    opportunity_id: str,
    name: str,
    note: str,
    etag: str,
    request: object,
) -> LeadRow:
    leads = LeadRepository(uow)
    row = await leads.visible(who, lead_id, for_update=True)
    if row.status == status.CONVERTED:
        return row  # repeat: same answer
    leads.check_etag(row, etag)
    if not status.is_open(row.status):
        raise FailedPrecondition(
            f"lead {lead_id} is {row.status}; only owned leads convert", reason="NOT_OWNED"
        )
    access.require_owner_or_manager(who, row)
    if opportunity_id and not validation.ID.match(opportunity_id):
        raise InvalidArgument.field("opportunity_id", "1-64 letters, digits, '-' or '_'")
    validation.bounded_text(name, "opportunity_name", 300)
    validation.bounded_text(note, "note")
    lead = lead_pb2.Lead()
    parse(row.body or {}, lead)
    opp = opportunity_id or str(ULID())
    row.status = status.next_status(row.status, status.Action.CONVERT)
    row.converted_opportunity_id, row.close_time = opp, at
    if row.sla_state == sla.PENDING:
        row.sla_state = sla.CANCELLED
    row.version += 1
    row.updated_at = at
    evt = events_pb2.LeadConverted(
        lead=events.context(row),
        opportunity_id=opp,
        opportunity_name=name or row.display_name,
        owner_user_id=row.owner_user_id or "",
        team_path=row.team_path,
        region=row.region,
        company=lead.company,
        contact_name=lead.contact.name,
        contact_job_title=lead.contact.job_title,
        product_lines=list(getattr(request, "product_lines", None) or lead.product_lines),
        channel=lead.source.channel,
        source_code=lead.source.source_code,
        campaign_id=lead.source.campaign_id,
        score=row.score,
        note=note,
        actor_user_id=who.user_id,
    )
    amount = getattr(request, "amount_estimate", None)
    if amount is not None and request.HasField("amount_estimate"):  # type: ignore[attr-defined]
        evt.amount_estimate.CopyFrom(amount)
    elif lead.HasField("amount_estimate"):
        evt.amount_estimate.CopyFrom(lead.amount_estimate)
    elif lead.HasField("stated_budget"):
        evt.amount_estimate.CopyFrom(lead.stated_budget)
    if request is not None and request.HasField("expected_close_date"):  # type: ignore[attr-defined]
        evt.expected_close_date.CopyFrom(request.expected_close_date)  # type: ignore[attr-defined]
    evt.lead_create_time.CopyFrom(ts(row.created_at))
    evt.convert_time.CopyFrom(ts(at))
    await events.publish(uow, evt, lead_id)
    return row


async def disqualify(
    uow: UnitOfWork, who: Principal, lead_id: str, at: datetime, *, reason: int, note: str, etag: str
) -> LeadRow:
    if not reason:
        raise InvalidArgument.field("reason", "required")
    if not validation.known_enum(lead_pb2.DisqualifyReason, reason):
        raise InvalidArgument.field("reason", "one of the DisqualifyReason values")
    validation.bounded_text(note, "note")
    if reason == lead_pb2.DISQUALIFY_REASON_OTHER and not note.strip():
        raise InvalidArgument.field("note", "required when the reason is OTHER")
    leads = LeadRepository(uow)
    row = await leads.visible(who, lead_id, for_update=True)
    leads.check_etag(row, etag)
    if status.is_closed(row.status):
        raise FailedPrecondition(f"lead {lead_id} is already {row.status}", reason="LEAD_CLOSED")
    if row.status == status.IN_POOL:
        if not access.manages(who, row.team_path) and not who.has_role("supervisor", "director"):
            raise FailedPrecondition("claim the lead before closing it", reason="NOT_OWNED")
    else:
        access.require_owner_or_manager(who, row)
    body = dict(row.body or {})
    body["disqualify_reason"] = lead_pb2.DisqualifyReason.Name(reason)  # type: ignore[arg-type]
    body["disqualify_note"] = note
    row.body = body
    row.status, row.close_time = status.next_status(row.status, status.Action.DISQUALIFY), at
    if row.sla_state == sla.PENDING:
        row.sla_state = sla.CANCELLED
    row.version += 1
    row.updated_at = at
    await events.publish(
        uow,
        events_pb2.LeadDisqualified(lead=events.context(row), reason=reason, actor_user_id=who.user_id),  # type: ignore[arg-type]
        lead_id,
    )
    return row
