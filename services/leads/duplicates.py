"""Duplicate review and descriptive updates: dismiss candidates, merge one lead into another, UpdateLead."""

from __future__ import annotations

from datetime import datetime

from google.protobuf import field_mask_pb2
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.auth import Principal
from kit.errors import FailedPrecondition, InvalidArgument
from salesops.leads.v1 import enums_pb2, events_pb2, lead_pb2
from services.leads import access, assignment, followups, intake, policies
from services.leads.convert import context, long, parse, to_dict
from services.leads.domain import sla
from services.leads.store import ActivityRow, BehaviorRow, DuplicateRow, IntakeRow, LeadRow

CLOSED = ("CONVERTED", "DISQUALIFIED", "MERGED")
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


async def _open_left(session: AsyncSession, lead_id: str) -> bool:
    found = await session.scalar(
        select(DuplicateRow.lead_id)
        .where(DuplicateRow.lead_id == lead_id, DuplicateRow.state == "OPEN")
        .limit(1)
    )
    return found is not None


async def dismiss(
    session: AsyncSession, who: Principal, lead_id: str, candidates: list[str], at: datetime
) -> LeadRow:
    row = await access.load_visible(session, who, lead_id, for_update=True)
    if row.status != "IN_POOL":
        access.require_owner_or_manager(who, row)
    stmt = update(DuplicateRow).where(DuplicateRow.lead_id == lead_id, DuplicateRow.state == "OPEN")
    if candidates:
        stmt = stmt.where(DuplicateRow.other_lead_id.in_(candidates))
    await session.execute(stmt.values(state="DISMISSED").execution_options(synchronize_session=False))
    row.duplicate_review_needed = await _open_left(session, lead_id)
    row.version += 1
    row.updated_at = at
    return row


async def merge(session: AsyncSession, who: Principal, lead_id: str, target_id: str, at: datetime) -> LeadRow:
    if not target_id or target_id == lead_id:
        raise InvalidArgument.field("target_lead_id", "another lead is required")
    source = await access.load_visible(session, who, lead_id, for_update=True)
    target = await access.load_visible(session, who, target_id, for_update=True)
    for row in (source, target):
        if row.status != "IN_POOL":
            access.require_owner_or_manager(who, row)
    if source.status in CLOSED:
        raise FailedPrecondition(f"lead {lead_id} is {source.status}", reason="LEAD_CLOSED")
    if target.status == "MERGED":
        raise FailedPrecondition(f"lead {target_id} was itself merged", reason="LEAD_CLOSED")
    for table in (IntakeRow, ActivityRow, BehaviorRow):
        await session.execute(
            update(table)
            .where(table.lead_id == lead_id)
            .values(lead_id=target_id)
            .execution_options(synchronize_session=False)
        )
    await session.execute(
        update(DuplicateRow)
        .where(
            DuplicateRow.lead_id.in_([lead_id, target_id]),
            DuplicateRow.other_lead_id.in_([lead_id, target_id]),
        )
        .values(state="MERGED")
        .execution_options(synchronize_session=False)
    )
    target.intake_count += source.intake_count
    target.activity_count += source.activity_count
    if source.last_activity_time and (
        not target.last_activity_time or source.last_activity_time > target.last_activity_time
    ):
        target.last_activity_time = source.last_activity_time
    target.duplicate_review_needed = await _open_left(session, target_id)
    target.version += 1
    target.updated_at = at
    source.status, source.merged_into, source.close_time = "MERGED", target_id, at
    source.owner_user_id, source.pool_id = None, None
    if source.sla_state == sla.PENDING:
        source.sla_state = sla.CANCELLED
    source.version += 1
    source.updated_at = at
    await assignment.publish(
        session,
        "LeadMerged",
        events_pb2.LeadMerged(
            lead=context(target),
            merged_lead_id=lead_id,
            channel=long(enums_pb2.LeadChannel, source.channel),
            automatic=False,
            actor_user_id=who.user_id,
        ),
        target_id,
    )
    return target


async def update_lead(
    session: AsyncSession, who: Principal, lead: lead_pb2.Lead, paths: list[str], at: datetime
) -> LeadRow:
    if not paths:
        raise InvalidArgument.field("update_mask", "name the fields to change")
    for p in paths:
        if p.split(".")[0] not in UPDATABLE:
            raise InvalidArgument.field(
                "update_mask", f"{p!r} is output-only or changes only through custom methods"
            )
    row = await access.load_visible(session, who, lead.lead_id, for_update=True)
    assignment.check_etag(row, lead.etag)
    if row.status in CLOSED:
        raise FailedPrecondition(f"lead {lead.lead_id} is {row.status}", reason="LEAD_CLOSED")
    if row.status == "IN_POOL":
        if not (who.is_admin or who.has_role("supervisor", "director")):
            raise FailedPrecondition("claim the lead before editing it", reason="NOT_OWNED")
    else:
        access.require_owner_or_manager(who, row)
    current = lead_pb2.Lead()
    parse(row.body or {}, current)
    current.display_name = row.display_name
    field_mask_pb2.FieldMask(paths=paths).MergeMessage(
        lead, current, replace_message_field=True, replace_repeated_field=True
    )
    policy = await policies.load(session, policies.INTAKE)
    current.lead_id = row.lead_id
    fixed = intake.validate(current, policy)
    keys_changed = (fixed.contact.phone, fixed.contact.email) != (row.phone, row.email)
    row.body = to_dict(fixed)
    row.body.pop("lead_id", None)
    row.display_name = fixed.display_name[:300]
    row.phone, row.email = fixed.contact.phone, fixed.contact.email
    row.company_norm = fixed.company.normalized_name[:200]
    row.company_key = intake.company_key(row.company_norm)
    row.region, row.language = fixed.region, fixed.language_code
    if keys_changed:
        # A changed phone or e-mail that now matches another lead is flagged for review, never merged silently.
        for other in await intake._existing(session, row.phone, row.email):
            if other.lead_id == row.lead_id:
                continue
            kind = "PHONE" if row.phone and other.phone == row.phone else "EMAIL"
            if await session.get(DuplicateRow, (row.tenant_id, row.lead_id, other.lead_id, kind)) is None:
                session.add(
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
    row.version += 1
    row.updated_at = at
    await session.flush()
    await followups.regrade(session, row, at, "LEAD_UPDATED")
    return row
