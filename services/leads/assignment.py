"""Use cases of the pool and of assignment: claim, release, manual assignment.

Each reads what it needs once through repositories (the tenant's policies once per unit of work),
asks domain/ for the decision, and writes through the unit of work, which commits elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kit.auth import Principal
from kit.errors import Aborted, FailedPrecondition, InvalidArgument, PermissionDenied, PreconditionViolation
from kit.resources import UnitOfWork
from salesops.leads.v1 import routing_pb2
from services.leads import access, decisions, policies
from services.leads.convert import aware
from services.leads.domain import pool as pool_rules
from services.leads.domain import routing, status
from services.leads.ownership import apply_owner, route, to_pool
from services.leads.policies import TenantPolicies
from services.leads.repositories.leads import LeadRepository
from services.leads.repositories.reps import ClaimRepository, CooldownRepository, RepRepository
from services.leads.reps import profile, rep_for_routing
from services.leads.store import ClaimRow, LeadRow, RepRow


@dataclass(frozen=True)
class Claimer:
    """A rep about to claim: their profile row and their figures for the anti-hoarding rules."""

    rep: RepRow | None
    context: pool_rules.ClaimContext


async def claimer(
    uow: UnitOfWork, who: str, lead_id: str, at: datetime, *, owned: int | None = None
) -> Claimer:
    """Read once what a claim needs of the rep; `owned`: their open leads when already known."""
    reps = RepRepository(uow)
    rep = await reps.find(who)
    if owned is None:
        owned = await reps.open_count(who)
    claims = await ClaimRepository(uow).count_on(who, policies.CALENDAR.local_date(at).isoformat())
    cooldown = await CooldownRepository(uow).until(who, lead_id)
    p = profile(rep) if rep is not None else None
    ctx = pool_rules.ClaimContext(
        owned_count=owned,
        claims_today=claims,
        cooldown_until=aware(cooldown),
        accepting=p.accepting_leads if p is not None else True,
        rep_cap_override=p.private_lead_cap if p is not None else 0,
    )
    return Claimer(rep, ctx)


async def claim_context(uow: UnitOfWork, who: str, lead_id: str, at: datetime) -> pool_rules.ClaimContext:
    return (await claimer(uow, who, lead_id, at)).context


async def claim(uow: UnitOfWork, who: Principal, lead_id: str, at: datetime) -> tuple[LeadRow, str]:
    leads = LeadRepository(uow)
    # Not the visible read: a rep racing for a pool lead that was just claimed must learn it lost (ABORTED).
    row = await leads.get(lead_id)
    if row.status != status.IN_POOL:
        if row.owner_user_id:
            # The loser of a race learns who won (the rep may not read the lead itself any more).
            raise Aborted(
                f"lead {lead_id} is already owned",
                reason="ALREADY_CLAIMED",
                metadata={"owner_user_id": row.owner_user_id},
            )
        raise FailedPrecondition(f"lead {lead_id} is {row.status}, not in a pool", reason="NOT_IN_POOL")
    tenant = await TenantPolicies.load(uow)
    pool = pool_rules.find_pool(tenant.pools, row.pool_id or "")
    # Every ownership change locks in one order: the lead, then the owners' load counters, then
    # rep profiles (last_assigned_time). So the claim takes the lead first (compare-and-set), then
    # the rep's counter, which also queues this rep's concurrent claims: the caps are checked on
    # figures no other claim of theirs can change before this one commits or rolls back.
    owned = await leads.take_from_pool(lead_id, who.user_id)
    if owned is None:
        raise Aborted(f"lead {lead_id} was claimed by another rep first", reason="CLAIM_LOST")
    rep = await claimer(uow, who.user_id, lead_id, at, owned=owned - 1)
    ctx = rep.context
    violations = pool_rules.claim_violations(pool, ctx, at)
    if violations:  # the unit of work rolls back: the lead stays in its pool, the counter as it was
        raise FailedPrecondition(
            f"claim refused: {violations[0].description}", violations, reason="CLAIM_REFUSED"
        )
    await leads.refresh(row)
    p = profile(rep.rep) if rep.rep is not None else None
    team = p.team_path if p is not None and p.team_path else who.org
    cand = routing.Candidate(
        who.user_id, p.display_name if p else "", True, [], ctx.owned_count, 0, 0.0, 1, 1.0, 1
    )
    d = routing.Decision(candidates=[cand], winner=who.user_id, team_path=team, pool_id=row.pool_id or "")
    d.summary = f"{who.user_id} claimed the lead from pool {row.pool_id!r}."
    msg = decisions.decision_proto(
        d, row, reason="CLAIMED", actor=who.user_id, at=at, previous_owner="", rules_version=0
    )
    row.version -= 1  # apply_owner bumps it once more for the whole change
    await apply_owner(
        uow,
        row,
        tenant,
        owner=who.user_id,
        team_path=team,
        supervisor=p.supervisor_user_id if p else "",
        reason="CLAIMED",
        decision=msg,
        at=at,
    )
    uow.session.add(
        ClaimRow(
            decision_id=msg.decision_id,
            user_id=who.user_id,
            lead_id=lead_id,
            local_day=policies.CALENDAR.local_date(at).isoformat(),
            claim_time=at,
        )
    )
    return row, msg.decision_id


async def release(
    uow: UnitOfWork, who: Principal, lead_id: str, at: datetime, *, note: str, pool_id: str, etag: str
) -> LeadRow:
    leads = LeadRepository(uow)
    row = await leads.visible(who, lead_id, for_update=True)
    leads.check_etag(row, etag)
    if not status.is_open(row.status):
        raise FailedPrecondition(f"lead {lead_id} is {row.status} and cannot be released", reason="NOT_OWNED")
    access.require_owner_or_manager(who, row)
    tenant = await TenantPolicies.load(uow)
    target = pool_id or pool_rules.pool_for_region(tenant.pools, row.region).pool_id
    if pool_id and all(p.pool_id != pool_id for p in tenant.pools):
        raise InvalidArgument.field("pool_id", f"unknown pool {pool_id!r}")
    reason = "RELEASED" if row.owner_user_id == who.user_id else "MANAGER_RETURNED"
    await to_pool(uow, row, tenant, pool_id=target, reason=reason, at=at, actor=who.user_id, note=note)
    return row


async def assign(
    uow: UnitOfWork,
    who: Principal,
    lead_id: str,
    at: datetime,
    *,
    assignee: str,
    reason: str,
    override: bool,
    etag: str,
) -> tuple[LeadRow, routing_pb2.AssignmentDecision]:
    if not who.has_role(*access.MANAGERS) and not who.is_service:
        raise PermissionDenied("only supervisors, directors and admins assign leads", reason="NOT_MANAGER")
    if not reason.strip():
        raise InvalidArgument.field("reason", "say why the lead is (re)assigned")
    if override and not who.is_admin:
        raise PermissionDenied("only admins may override capacity", reason="NOT_ADMIN")
    leads = LeadRepository(uow)
    row = await leads.visible(who, lead_id, for_update=True)
    leads.check_etag(row, etag)
    if status.is_closed(row.status):
        raise FailedPrecondition(f"lead {lead_id} is {row.status}", reason="LEAD_CLOSED")
    if row.owner_user_id and not access.manages(who, row.team_path):
        raise PermissionDenied("the lead belongs to a team you do not manage", reason="NOT_MANAGER")
    tenant = await TenantPolicies.load(uow)
    if not assignee:
        msg = await route(uow, row, tenant, at=at, actor=who.user_id, reason="MANUAL", note=reason)
        return row, msg
    reps = RepRepository(uow)
    rep = await reps.get(assignee)
    if not access.manages(who, rep.team_path):
        raise PermissionDenied(f"{assignee} is not in a team you manage", reason="NOT_MANAGER")
    region_pool = pool_rules.pool_for_region(tenant.pools, row.region)
    candidate = rep_for_routing(rep, await reps.open_count(assignee), region_pool.private_lead_cap)
    manual = routing.Rule("manual", rep.team_path, routing.LEAST_LOADED, allow_outside_working_hours=True)
    reasons = routing.skip_reasons(candidate, manual, routing.LeadFacts(row.lead_id), at, None, {})
    if reasons and not override:
        raise FailedPrecondition(
            f"{assignee} cannot take the lead now: {', '.join(reasons)}",
            [
                PreconditionViolation(r, assignee, f"rep {assignee}: {r.lower().replace('_', ' ')}")
                for r in reasons
            ],
            reason="ASSIGNEE_UNAVAILABLE",
        )
    cand = routing.Candidate(
        assignee,
        candidate.display_name,
        True,
        reasons,
        candidate.open_leads,
        candidate.capacity,
        0.0,
        candidate.weight,
        1.0,
        1,
    )
    d = routing.Decision(candidates=[cand], winner=assignee, team_path=rep.team_path)
    d.summary = f"{who.user_id} assigned the lead to {assignee}: {reason}" + (
        " (capacity overridden)" if reasons else ""
    )
    msg = decisions.decision_proto(
        d,
        row,
        reason="MANUAL",
        actor=who.user_id,
        at=at,
        previous_owner=row.owner_user_id or "",
        rules_version=0,
        note=reason,
    )
    await apply_owner(
        uow,
        row,
        tenant,
        owner=assignee,
        team_path=rep.team_path,
        supervisor=candidate.supervisor_user_id,
        reason="MANUAL",
        decision=msg,
        at=at,
    )
    return row, msg
