"""Duplicate review: dismiss a lead's candidates, or merge one lead into another (history moves along)."""

from __future__ import annotations

from datetime import datetime

from kit.auth import Principal
from kit.errors import FailedPrecondition, InvalidArgument
from kit.resources import UnitOfWork
from salesops.leads.v1 import enums_pb2, events_pb2
from services.leads import access, events
from services.leads.convert import enum_value
from services.leads.domain import sla, status
from services.leads.repositories.intakes import DuplicateRepository
from services.leads.repositories.leads import LeadRepository
from services.leads.store import LeadRow


async def dismiss(
    uow: UnitOfWork, who: Principal, lead_id: str, candidates: list[str], at: datetime
) -> LeadRow:
    row = await LeadRepository(uow).visible(who, lead_id, for_update=True)
    if row.status != status.IN_POOL:
        access.require_owner_or_manager(who, row)
    dups = DuplicateRepository(uow)
    await dups.dismiss(lead_id, candidates)
    row.duplicate_review_needed = await dups.any_open(lead_id)
    row.version += 1
    row.updated_at = at
    return row


async def merge(uow: UnitOfWork, who: Principal, lead_id: str, target_id: str, at: datetime) -> LeadRow:
    if not target_id or target_id == lead_id:
        raise InvalidArgument.field("target_lead_id", "another lead is required")
    leads = LeadRepository(uow)
    source = await leads.visible(who, lead_id, for_update=True)
    target = await leads.visible(who, target_id, for_update=True)
    # Both sides need their owner or manager, pool leads too: absorbing a pool lead into one's own
    # would take it without a claim (no caps) and show its intakes' phones unmasked.
    for row in (source, target):
        access.require_owner_or_manager(who, row)
    if status.is_closed(source.status):
        raise FailedPrecondition(f"lead {lead_id} is {source.status}", reason="LEAD_CLOSED")
    if target.status == status.MERGED:
        raise FailedPrecondition(f"lead {target_id} was itself merged", reason="LEAD_CLOSED")
    await leads.move_children(lead_id, target_id)
    dups = DuplicateRepository(uow)
    await dups.close_between(lead_id, target_id)
    target.intake_count += source.intake_count
    target.activity_count += source.activity_count
    if source.last_activity_time and (
        not target.last_activity_time or source.last_activity_time > target.last_activity_time
    ):
        target.last_activity_time = source.last_activity_time
    target.duplicate_review_needed = await dups.any_open(target_id)
    target.version += 1
    target.updated_at = at
    source.status = status.next_status(source.status, status.Action.MERGE)
    source.merged_into, source.close_time = target_id, at
    source.owner_user_id, source.pool_id = None, None
    if source.sla_state == sla.PENDING:
        source.sla_state = sla.CANCELLED
    source.version += 1
    source.updated_at = at
    await events.publish(
        uow,
        events_pb2.LeadMerged(
            lead=events.context(target),
            merged_lead_id=lead_id,
            channel=enum_value(enums_pb2.LeadChannel, source.channel),
            automatic=False,
            actor_user_id=who.user_id,
        ),
        target_id,
    )
    return target
