"""UpdateLead: descriptive changes (contact, company, budget...) with re-validation, duplicate flags
and re-grading. Ownership and status change only through the custom methods."""

from __future__ import annotations

from datetime import datetime

from google.protobuf.field_mask_pb2 import FieldMask

from kit.auth import Principal
from kit.errors import FailedPrecondition, InvalidArgument
from kit.resources import UnitOfWork, merge_update, sanitize_create
from salesops.leads.v1 import lead_pb2
from services.leads import access, intake, policies, regrading
from services.leads.convert import parse, to_dict
from services.leads.domain import status
from services.leads.repositories.intakes import DuplicateRepository
from services.leads.repositories.leads import LeadRepository
from services.leads.store import DuplicateRow, LeadRow

# Fields UpdateLead may change (top-level names; sub-paths such as "contact.email" allowed).
UPDATABLE = frozenset(
    {
        "display_name",
        "contact",
        "company",
        "product_lines",
        "stated_budget",
        "amount_estimate",
        "expected_purchase_date",
        "region",
        "language_code",
        "description",
        "tags",
        "attributes",
    }
)


async def update_lead(
    uow: UnitOfWork, who: Principal, lead: lead_pb2.Lead, paths: list[str], at: datetime
) -> LeadRow:
    if not paths:
        raise InvalidArgument.field("update_mask", "name the fields to change")
    for p in paths:
        if p.split(".")[0] not in UPDATABLE:
            raise InvalidArgument.field(
                "update_mask", f"{p!r} is output-only or changes only through custom methods"
            )
    leads = LeadRepository(uow)
    row = await leads.visible(who, lead.lead_id, for_update=True)
    leads.check_etag(row, lead.etag)
    if status.is_closed(row.status):
        raise FailedPrecondition(f"lead {lead.lead_id} is {row.status}", reason="LEAD_CLOSED")
    if row.status == status.IN_POOL:
        if not (who.is_admin or who.has_role("supervisor", "director")):
            raise FailedPrecondition("claim the lead before editing it", reason="NOT_OWNED")
    else:
        access.require_owner_or_manager(who, row)
    current = lead_pb2.Lead()
    parse(row.body or {}, current)
    current.display_name = row.display_name
    # Named sub-messages are replaced whole: their output-only parts are dropped from the input first.
    current = merge_update(current, sanitize_create(lead), FieldMask(paths=paths))
    current.lead_id = row.lead_id
    fixed = intake.validate(current, await policies.load(uow, policies.INTAKE))
    keys_changed = (fixed.contact.phone, fixed.contact.email) != (row.phone, row.email)
    row.body = to_dict(fixed)
    row.body.pop("lead_id", None)
    row.display_name = fixed.display_name[:300]
    row.phone, row.email = fixed.contact.phone, fixed.contact.email
    row.company_norm = fixed.company.normalized_name[:200]
    row.company_key = intake.company_key(row.company_norm)
    row.region, row.language = fixed.region, fixed.language_code
    if keys_changed:
        await _flag_new_matches(uow, row, at)
    row.version += 1
    row.updated_at = at
    await uow.session.flush()
    await regrading.regrade(uow, row, at, "LEAD_UPDATED")
    return row


async def _flag_new_matches(uow: UnitOfWork, row: LeadRow, at: datetime) -> None:
    """A changed phone or e-mail that now matches another lead is flagged for review, never merged silently."""
    dups = DuplicateRepository(uow)
    for other in await LeadRepository(uow).others_with_contact(row.lead_id, row.phone, row.email):
        kind = "PHONE" if row.phone and other.phone == row.phone else "EMAIL"
        if await dups.find(row.lead_id, other.lead_id, kind) is None:
            uow.session.add(
                DuplicateRow(
                    lead_id=row.lead_id,
                    other_lead_id=other.lead_id,
                    kind=kind,
                    score=1.0,
                    display_name=other.display_name,
                    detect_time=at,
                )
            )
            row.duplicate_review_needed = True
