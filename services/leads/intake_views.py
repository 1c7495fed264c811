"""A lead created by this intake, presented from the messages it was stored from.

For a lead written a moment ago in this unit of work, its body and grading columns hold the messages
the intake built: LeadPresenter copies those instead of parsing the JSON back. The answer is the
same, field for field (tests/leads/test_intake_answer_stored.py)."""

from __future__ import annotations

from kit.auth import Principal
from kit.resources import UnitOfWork
from salesops.leads.v1 import lead_pb2
from services.leads import lead_views
from services.leads.intake import Stored
from services.leads.presenters import LeadDetails, LeadPresenter
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
    """LeadPresenter.present of `details`, its body and grading from `stored`."""
    lead = lead_pb2.Lead()
    LeadPresenter().present_into(lead, viewer, details, stored=(stored.lead, stored.grading))
    return lead
