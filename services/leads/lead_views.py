"""What a lead's answer needs beyond its row: the FULL view's duplicates and intakes, the recycle
schedule and whether the caller could claim it. Read here, shown by presenters.LeadPresenter."""

from __future__ import annotations

from collections.abc import Sequence

from kit.auth import Principal
from kit.resources import UnitOfWork
from salesops.leads.v1 import enums_pb2, lead_pb2
from salesops.leads.v1 import leads_service_pb2 as pb
from services.leads import access, intake
from services.leads.assignment import claim_context
from services.leads.convert import enum_value, now, ts
from services.leads.domain import pool as pool_rules
from services.leads.domain import status
from services.leads.policies import TenantPolicies
from services.leads.presenters import LEADS, LeadDetails, masked_display_name
from services.leads.repositories.intakes import DuplicateRepository
from services.leads.repositories.lead_reads import DuplicateView, FoundLead, OtherLead
from services.leads.repositories.leads import LeadRepository
from services.leads.store import DuplicateRow, LeadRow
from services.leads.timers import watch_state


async def duplicate_candidates(uow: UnitOfWork, lead_id: str) -> list[lead_pb2.DuplicateCandidate]:
    return candidates_of(await DuplicateRepository(uow).of_lead(lead_id))


def candidates_of(rows: Sequence[DuplicateRow | DuplicateView]) -> list[lead_pb2.DuplicateCandidate]:
    out = []
    for r in rows:
        c = lead_pb2.DuplicateCandidate(
            lead_id=r.other_lead_id,
            match_kind=enum_value(enums_pb2.DuplicateMatchKind, r.kind),
            score=r.score,
            display_name=r.display_name,
            state=enum_value(lead_pb2.DuplicateCandidateState, r.state),
        )
        c.detect_time.CopyFrom(ts(r.detect_time))
        out.append(c)
    return out


async def details(
    uow: UnitOfWork,
    who: Principal,
    row: LeadRow,
    view: int = pb.LEAD_VIEW_FULL,
    *,
    new_candidates: list[lead_pb2.DuplicateCandidate] | None = None,
    read_only: bool = False,
    found_candidates: list[lead_pb2.DuplicateCandidate] | None = None,
) -> LeadDetails:
    """`new_candidates`: the lead was created in this unit of work with these candidates, so there
    is nothing more to read of its duplicates, and no intake was merged into it yet.
    `read_only`: a read answer (GetLead), which may use policy versions seen a moment ago.
    `found_candidates`: the lead's candidates, already read with it."""
    full = view != pb.LEAD_VIEW_BASIC
    out = LeadDetails(row, full=full, with_recycle=True)
    if full:
        new = new_candidates is not None
        candidates = new_candidates if new else found_candidates
        if candidates is None:
            candidates = await duplicate_candidates(uow, row.lead_id)
        # A candidate names another lead: only those the viewer may see themselves are listed.
        if new and access.sees_all(who):  # just found by this intake, and nothing is hidden from them
            out.duplicate_candidates = list(candidates)
        else:
            seen = await LeadRepository(uow).visible_rows_among(who, [c.lead_id for c in candidates])
            out.duplicate_candidates = _seen_by(
                who, [(c, seen[c.lead_id]) for c in candidates if c.lead_id in seen]
            )
        await _intakes(uow, out, merged=not new and row.intake_count > 1)
    await _schedule(uow, who, out, read_only=read_only)
    return out


async def found_details(uow: UnitOfWork, who: Principal, found: FoundLead, view: int) -> LeadDetails:
    """`details` of a lead read by LeadReads.get (GetLead): its candidates the viewer sees came
    with it, each with what masking its name needs of the other lead."""
    out = LeadDetails(found.lead, full=view != pb.LEAD_VIEW_BASIC, with_recycle=True)
    if out.full:
        listed = candidates_of([d for d, _ in found.candidates])
        out.duplicate_candidates = _seen_by(
            who, list(zip(listed, [o for _, o in found.candidates], strict=True))
        )
        await _intakes(uow, out, merged=found.lead.intake_count > 1)
    await _schedule(uow, who, out, read_only=True)
    return out


def _seen_by(
    who: Principal, candidates: list[tuple[lead_pb2.DuplicateCandidate, LeadRow | OtherLead]]
) -> list[lead_pb2.DuplicateCandidate]:
    """Candidates whose other lead the viewer sees, named as they would see that lead."""
    for c, other in candidates:
        if not access.can_see_phone(who, other):  # named by its number: masked like itself
            c.display_name = masked_display_name(other)
    return [c for c, _ in candidates]


async def _intakes(uow: UnitOfWork, out: LeadDetails, *, merged: bool) -> None:
    # Every merged intake counts on its lead (intake_count), so a lead at 1 has none to read.
    out.recent_intakes = await intake.recent_intakes(uow, out.row.lead_id) if merged else []


async def _schedule(uow: UnitOfWork, who: Principal, out: LeadDetails, *, read_only: bool) -> None:
    """The recycle schedule, and whether the caller could claim the lead now."""
    row = out.row
    tenant = await TenantPolicies.load(uow, recent=read_only)
    state = watch_state(row, tenant)
    out.recycle_time, out.recycle_warn_time = state.recycle_time, state.recycle_warn_time
    # Only reps and supervisors claim; admins and partner systems skip the four cap queries.
    if row.status == status.IN_POOL and who.has_role("rep", "supervisor"):
        at = now()
        ctx = await claim_context(uow, who.user_id, row.lead_id, at)
        pool = pool_rules.find_pool(tenant.pools, row.pool_id or "")
        out.caller_can_claim = not pool_rules.claim_violations(pool, ctx, at)


async def present(
    uow: UnitOfWork,
    who: Principal,
    row: LeadRow,
    view: int = pb.LEAD_VIEW_FULL,
    *,
    new_candidates: list[lead_pb2.DuplicateCandidate] | None = None,
    read_only: bool = False,
    found_candidates: list[lead_pb2.DuplicateCandidate] | None = None,
) -> lead_pb2.Lead:
    """The lead as `who` may see it, with everything its view shows."""
    found = await details(
        uow,
        who,
        row,
        view,
        new_candidates=new_candidates,
        read_only=read_only,
        found_candidates=found_candidates,
    )
    return LEADS.present(who, found)
