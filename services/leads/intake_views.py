"""A lead created by this intake, presented from the messages it was stored from.

presenters.LeadPresenter.present parses the lead's stored JSON (its body and grading columns) back
into a Lead: for a lead written a moment ago in this unit of work those are the messages the intake
built, so they are copied instead (json_format's parser was ~15% of a grouped CreateLead's CPU).
The answer is the same, field for field (tests/leads/test_intake_answer_stored.py)."""

from __future__ import annotations

from kit.auth import Principal
from kit.resources import UnitOfWork
from salesops.leads.v1 import lead_pb2
from services.leads import access, lead_views
from services.leads.domain.normalize import mask_phone
from services.leads.intake import Stored
from services.leads.presenters import LeadDetails, masked_display_name
from services.leads.presenters import _state as state_of
from services.leads.store import LeadRow


async def present_created(
    uow: UnitOfWork,
    who: Principal,
    row: LeadRow,
    stored: Stored,
    new_candidates: list[lead_pb2.DuplicateCandidate],
) -> lead_pb2.Lead:
    """lead_views.present(uow, who, row, new_candidates=...) of a lead this intake created."""
    details = await lead_views.details(uow, who, row, new_candidates=new_candidates)
    return shown(who, details, stored)


def shown(viewer: Principal, details: LeadDetails, stored: Stored) -> lead_pb2.Lead:
    """LeadPresenter.present of `details` (the FULL view), its body and grading from `stored`."""
    row = details.row
    lead = lead_pb2.Lead()
    lead.CopyFrom(stored.lead)
    lead.lead_id = row.lead_id
    lead.display_name = row.display_name
    masked = bool(lead.contact.phone) and not access.can_see_phone(viewer, row)
    if masked:
        lead.contact.phone = mask_phone(lead.contact.phone)
        lead.contact.phone_masked = True
        lead.display_name = masked_display_name(row)
    state_of(lead, row, full=False)  # the grading: from the message, not the column's JSON
    lead.grading.CopyFrom(stored.grading)
    lead.duplicate_candidates.extend(details.duplicate_candidates)
    for rec in details.recent_intakes:  # none yet for a new lead; kept as the presenter does
        if rec.contact.phone and masked:
            rec.contact.phone = mask_phone(rec.contact.phone)
            rec.contact.phone_masked = True
        lead.recent_intakes.append(rec)
    lead.recycle.exempt = details.recycle_time is None
    if details.recycle_time:
        lead.recycle.recycle_time.FromDatetime(details.recycle_time)
    if details.recycle_warn_time:
        lead.recycle.warn_time.FromDatetime(details.recycle_warn_time)
    lead.caller_can_claim = details.caller_can_claim
    return lead
