"""Ownership changes: routing, claim, release, manual assignment, return to pool; each with its trace and event."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from kit.auth import Principal
from kit.calendar import BusinessCalendar, weekly_hours
from kit.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PreconditionViolation,
)
from kit.events import emit
from salesops.leads.v1 import enums_pb2, events_pb2, routing_pb2
from services.leads import access, policies
from services.leads.convert import aware, context, long, parse, to_dict, ts
from services.leads.domain import pool as pool_rules
from services.leads.domain import routing, sla
from services.leads.store import ClaimRow, CooldownRow, DecisionRow, LeadRow, RepRow

SYSTEM = "system:leads"
OPEN = ("ASSIGNED", "WORKING")


async def publish(session: AsyncSession, name: str, payload: Message, lead_id: str) -> None:
    await emit(session, f"leads.{name}", payload, source="leads", subject=lead_id)


def check_etag(row: LeadRow, etag: str) -> None:
    if etag and etag != str(row.version):
        raise Aborted(
            f"lead {row.lead_id} changed meanwhile (etag {row.version}, sent {etag})", reason="STALE_ETAG"
        )


# --- reps ---------------------------------------------------------------------------


def profile(row: RepRow) -> routing_pb2.RepProfile:
    msg = routing_pb2.RepProfile()
    parse(row.body or {}, msg)
    msg.user_id = row.user_id
    msg.team_path = row.team_path
    msg.etag = str(row.version)
    if row.last_assigned_time:
        msg.last_assigned_time.CopyFrom(ts(row.last_assigned_time))
    return msg


def _calendar(p: routing_pb2.RepProfile) -> BusinessCalendar | None:
    wh = p.working_hours
    if not wh.windows:
        return None
    days: dict[int | str, list[str]] = {}
    for w in wh.windows:
        start = f"{w.start_time.hours:02d}:{w.start_time.minutes:02d}"
        end = "24:00" if w.end_time.hours >= 24 else f"{w.end_time.hours:02d}:{w.end_time.minutes:02d}"
        days.setdefault(w.day - 1, []).append(f"{start}-{end}")  # google.type.DayOfWeek: MONDAY = 1
    return BusinessCalendar(
        timezone=wh.time_zone or policies.CALENDAR.timezone,
        weekly_hours=weekly_hours(days),
        use_cn_holidays=wh.follow_business_calendar,
    )


def rep_for_routing(row: RepRow, open_leads: int, pool_cap: int) -> routing.Rep:
    p = profile(row)
    return routing.Rep(
        user_id=row.user_id,
        team_path=row.team_path,
        display_name=p.display_name,
        accepting=p.accepting_leads,
        capacity=p.capacity or p.private_lead_cap or pool_cap,
        weight=p.weight or 1,
        skills=frozenset(p.skills),
        languages=frozenset(p.language_codes),
        open_leads=open_leads,
        leaves=tuple(
            (lv.start_time.ToDatetime(tzinfo=UTC), lv.end_time.ToDatetime(tzinfo=UTC)) for lv in p.leaves
        ),
        calendar=_calendar(p),
        last_assigned=aware(row.last_assigned_time),
        supervisor_user_id=p.supervisor_user_id,
    )


async def open_counts(session: AsyncSession, user_ids: list[str] | None = None) -> dict[str, int]:
    stmt = (
        select(LeadRow.owner_user_id, func.count())
        .where(LeadRow.status.in_(OPEN), LeadRow.owner_user_id.is_not(None))
        .group_by(LeadRow.owner_user_id)
    )
    if user_ids is not None:
        stmt = stmt.where(LeadRow.owner_user_id.in_(user_ids))
    return {str(k): int(v) for k, v in (await session.execute(stmt)).all()}


async def team_reps(session: AsyncSession, team: str, include_sub: bool) -> list[RepRow]:
    cond = RepRow.team_path == team
    if include_sub:
        cond = cond | RepRow.team_path.startswith(team + "/")
    return list((await session.execute(select(RepRow).where(cond).order_by(RepRow.user_id))).scalars())


# --- decisions ----------------------------------------------------------------------


def decision_proto(
    d: routing.Decision,
    lead: LeadRow,
    *,
    reason: str,
    actor: str,
    at: datetime,
    previous_owner: str,
    rules_version: int,
    note: str = "",
) -> routing_pb2.AssignmentDecision:
    msg = routing_pb2.AssignmentDecision(
        decision_id=str(ULID()),
        lead_id=lead.lead_id,
        reason=long(enums_pb2.AssignmentReason, reason),
        actor_user_id=actor,
        note=note,
        previous_owner_user_id=previous_owner,
        winner_user_id=d.winner,
        team_path=d.team_path,
        strategy=long(enums_pb2.RoutingStrategy, d.strategy),
        pool_id=d.pool_id,
        fallback_used=d.fallback_used,
        routing_rules_version=rules_version,
        summary=d.summary,
    )
    msg.decide_time.CopyFrom(ts(at))
    for t in d.rules_tried:
        ev = msg.rules_tried.add(
            rule_id=t.rule_id, display_name=t.display_name, position=t.position, matched=t.matched
        )
        for c in t.conditions:
            ev.conditions.add(field=c.field, expected=c.expected, actual=c.actual, passed=c.passed)
    for cand in d.candidates:
        msg.candidates.add(
            user_id=cand.user_id,
            display_name=cand.display_name,
            eligible=cand.eligible,
            skip_reasons=[long(routing_pb2.CandidateSkipReason, r) for r in cand.skip_reasons],
            open_lead_count=cand.open_leads,
            capacity=cand.capacity,
            load_ratio=cand.load_ratio,
            weight=cand.weight,
            score=cand.score,
            rank=cand.rank,
        )
    return msg


async def record(session: AsyncSession, msg: routing_pb2.AssignmentDecision, at: datetime) -> None:
    session.add(
        DecisionRow(decision_id=msg.decision_id, lead_id=msg.lead_id, decide_time=at, body=to_dict(msg))
    )


# --- state changes ------------------------------------------------------------------


@dataclass
class Settings:
    """The policies an ownership change needs, loaded once per transaction."""

    pools: tuple[pool_rules.Pool, ...]
    sla: sla.Policies
    routing_msg: Any
    routing: list[routing.Rule]

    @classmethod
    async def load(cls, session: AsyncSession) -> Settings:
        routing_msg = await policies.load(session, policies.ROUTING)
        return cls(
            policies.pools(await policies.load(session, policies.POOL)),
            policies.sla_policies(await policies.load(session, policies.SLA)),
            routing_msg,
            policies.routing_rules(routing_msg),
        )


def start_sla(row: LeadRow, settings: Settings, at: datetime) -> None:
    """Start (or restart) the first-response clock for the current owner, unless already answered."""
    if row.sla_response_time is not None:
        return
    policy = settings.sla.for_grade(row.grade)
    if policy is None:
        row.sla_state, row.sla_grade = sla.NOT_APPLICABLE, row.grade
        row.sla_start = row.sla_due = row.sla_reminder = None
        return
    clock = sla.start_clock(policies.CALENDAR, policy, at)
    row.sla_state, row.sla_grade = sla.PENDING, row.grade
    row.sla_start, row.sla_due, row.sla_reminder, row.sla_reminded = (
        clock.start,
        clock.due,
        clock.reminder,
        False,
    )


async def apply_owner(
    session: AsyncSession,
    row: LeadRow,
    settings: Settings,
    *,
    owner: str,
    team_path: str,
    supervisor: str,
    reason: str,
    decision: routing_pb2.AssignmentDecision,
    at: datetime,
    restart_clock: bool = True,
) -> None:
    previous = row.owner_user_id or ""
    row.owner_user_id = owner
    row.status = "WORKING" if row.activity_count else "ASSIGNED"
    row.team_path, row.supervisor_user_id = team_path, supervisor
    row.pool_id, row.pool_entry_reason = None, ""
    row.assignment_reason, row.assign_time = reason, at
    row.last_decision_id = decision.decision_id
    row.needs_attention = row.recycle_warned = False
    if restart_clock:
        start_sla(row, settings, at)
    row.version += 1
    row.updated_at = at
    await record(session, decision, at)
    await session.execute(
        update(RepRow)
        .where(RepRow.tenant_id == row.tenant_id, RepRow.user_id == owner)
        .values(last_assigned_time=at)
        .execution_options(synchronize_session=False)
    )
    evt = events_pb2.LeadAssigned(
        lead=context(row),
        previous_owner_user_id=previous,
        reason=long(enums_pb2.AssignmentReason, reason),
        decision_id=decision.decision_id,
        actor_user_id=decision.actor_user_id,
        note=decision.note,
    )
    if row.sla_state == sla.PENDING and row.sla_due:
        evt.first_response_due_time.CopyFrom(ts(row.sla_due))
    await publish(session, "LeadAssigned", evt, row.lead_id)


async def to_pool(
    session: AsyncSession,
    row: LeadRow,
    settings: Settings,
    *,
    pool_id: str,
    reason: str,
    at: datetime,
    actor: str,
    note: str = "",
    decision: routing_pb2.AssignmentDecision | None = None,
) -> None:
    """Unown the lead into `pool_id`; the previous owner enters the re-claim cooldown."""
    previous = row.owner_user_id or ""
    previous_supervisor = row.supervisor_user_id
    pool = pool_rules.find_pool(settings.pools, pool_id)
    row.owner_user_id = None
    row.status = "IN_POOL"
    row.pool_id, row.pool_entry_reason = pool.pool_id, reason
    row.assignment_reason, row.assign_time = "", None
    row.needs_attention = row.recycle_warned = False
    if row.sla_state == sla.PENDING:
        # A fresh clock starts with the next owner.
        row.sla_state, row.sla_start, row.sla_due, row.sla_reminder = sla.NOT_APPLICABLE, None, None, None
    if decision is not None:
        row.last_decision_id = decision.decision_id
        await record(session, decision, at)
    row.version += 1
    row.updated_at = at
    until = pool_rules.cooldown_until(pool, at) if previous else None
    if previous and until is not None:
        existing = await session.get(CooldownRow, (row.tenant_id, previous, row.lead_id))
        if existing is None:
            session.add(CooldownRow(user_id=previous, lead_id=row.lead_id, until=until))
        else:
            existing.until = until
    if not previous:
        return
    if reason == "RECYCLED":
        recycled = events_pb2.LeadRecycled(
            lead=context(row),
            previous_owner_user_id=previous,
            previous_supervisor_user_id=previous_supervisor,
        )
        if row.last_activity_time:
            recycled.last_activity_time.CopyFrom(ts(row.last_activity_time))
        if until:
            recycled.reclaim_allowed_time.CopyFrom(ts(until))
        await publish(session, "LeadRecycled", recycled, row.lead_id)
        return
    released = events_pb2.LeadReleased(
        lead=context(row),
        previous_owner_user_id=previous,
        reason=long(enums_pb2.PoolEntryReason, reason),
        actor_user_id=actor,
        note=note,
    )
    if until:
        released.reclaim_allowed_time.CopyFrom(ts(until))
    await publish(session, "LeadReleased", released, row.lead_id)


def lead_facts(row: LeadRow) -> routing.LeadFacts:
    body = row.body or {}
    return routing.LeadFacts(
        lead_id=row.lead_id,
        region=row.region,
        product_lines=tuple(body.get("product_lines", ())),
        channel=row.channel,
        source_code=row.source_code,
        grade=row.grade,
        language=row.language,
    )


async def route(
    session: AsyncSession,
    row: LeadRow,
    settings: Settings,
    *,
    at: datetime,
    actor: str = SYSTEM,
    reason: str = "ROUTED",
    note: str = "",
    excluded: dict[str, str] | None = None,
    only_team: routing.Rule | None = None,
    entry_reason: str = "",
) -> routing_pb2.AssignmentDecision:
    """Run the routing rules (or one team's strategy) and apply the result: an owner or a pool."""
    facts = lead_facts(row)
    rule = only_team
    if rule is None:
        rule, _ = routing.match_rule(settings.routing, facts)
    region_pool = pool_rules.pool_for_region(settings.pools, row.region)
    reps: list[routing.Rep] = []
    wrr: dict[str, int] = {}
    rep_rows: dict[str, RepRow] = {}
    if rule is not None and rule.strategy != routing.CLAIM_ONLY:
        rows = await team_reps(session, rule.team_path, rule.include_sub_teams)
        counts = await open_counts(session, [r.user_id for r in rows])
        reps = [rep_for_routing(r, counts.get(r.user_id, 0), region_pool.private_lead_cap) for r in rows]
        wrr = {r.user_id: r.wrr_current for r in rows}
        rep_rows = {r.user_id: r for r in rows}
    decision = routing.route(
        facts,
        settings.routing,
        reps,
        at,
        fallback_pool=settings.routing_msg.fallback_pool_id or "fallback",
        region_pool=region_pool.pool_id,
        tenant_calendar=policies.CALENDAR,
        wrr_state=wrr,
        excluded=excluded,
        only_team=only_team,
    )
    if rule is not None and rule.strategy == routing.WRR:
        for uid, current in decision.wrr_state.items():
            if uid in rep_rows and rep_rows[uid].wrr_current != current:
                rep_rows[uid].wrr_current = current
    previous = row.owner_user_id or ""
    msg = decision_proto(
        decision,
        row,
        reason=reason,
        actor=actor,
        at=at,
        previous_owner=previous,
        rules_version=settings.routing_msg.version,
        note=note,
    )
    if decision.winner:
        winner = next(r for r in reps if r.user_id == decision.winner)
        await apply_owner(
            session,
            row,
            settings,
            owner=winner.user_id,
            team_path=winner.team_path,
            supervisor=winner.supervisor_user_id,
            reason=reason,
            decision=msg,
            at=at,
        )
    else:
        pool_reason = entry_reason or (
            "CLAIM_ONLY" if decision.strategy == routing.CLAIM_ONLY else "UNROUTED"
        )
        if previous:
            await to_pool(
                session,
                row,
                settings,
                pool_id=decision.pool_id,
                reason=pool_reason,
                at=at,
                actor=actor,
                note=note,
                decision=msg,
            )
        else:
            row.pool_id, row.pool_entry_reason = decision.pool_id, pool_reason
            row.team_path = decision.team_path
            row.last_decision_id = msg.decision_id
            await record(session, msg, at)
    return msg


# --- pool: claim and release ----------------------------------------------------------


async def claim_context(
    session: AsyncSession, who: str, lead_id: str, at: datetime, *, lock: bool = False
) -> pool_rules.ClaimContext:
    """The rep's figures for the anti-hoarding rules. With `lock`, the rep's profile row is locked first
    (PostgreSQL), so two concurrent claims by one rep cannot both pass a cap with one slot left."""
    rep_stmt = select(RepRow).where(RepRow.user_id == who)
    rep = await session.scalar(rep_stmt.with_for_update() if lock else rep_stmt)
    owned = (await open_counts(session, [who])).get(who, 0)
    day = policies.CALENDAR.local_date(at).isoformat()
    claims = await session.scalar(
        select(func.count()).select_from(ClaimRow).where(ClaimRow.user_id == who, ClaimRow.local_day == day)
    )
    cooldown = await session.scalar(
        select(CooldownRow.until).where(CooldownRow.user_id == who, CooldownRow.lead_id == lead_id)
    )
    p = profile(rep) if rep is not None else None
    return pool_rules.ClaimContext(
        owned_count=owned,
        claims_today=int(claims or 0),
        cooldown_until=aware(cooldown),
        accepting=p.accepting_leads if p is not None else True,
        rep_cap_override=p.private_lead_cap if p is not None else 0,
    )


async def claim(session: AsyncSession, who: Principal, lead_id: str, at: datetime) -> tuple[LeadRow, str]:
    # Not load_visible: a rep racing for a pool lead that was just claimed must learn it lost (ABORTED).
    row = await access.load(session, lead_id)
    if row.status != "IN_POOL":
        if row.owner_user_id:
            raise Aborted(f"lead {lead_id} is already owned", reason="ALREADY_CLAIMED")
        raise FailedPrecondition(f"lead {lead_id} is {row.status}, not in a pool", reason="NOT_IN_POOL")
    settings = await Settings.load(session)
    pool = pool_rules.find_pool(settings.pools, row.pool_id or "")
    ctx = await claim_context(session, who.user_id, lead_id, at, lock=True)
    violations = pool_rules.claim_violations(pool, ctx, at)
    if violations:
        raise FailedPrecondition(
            f"claim refused: {violations[0].description}", violations, reason="CLAIM_REFUSED"
        )
    # Compare-and-set: of many concurrent claims exactly one finds the lead unowned.
    won = await session.execute(
        update(LeadRow)
        .where(
            LeadRow.tenant_id == row.tenant_id,
            LeadRow.lead_id == lead_id,
            LeadRow.status == "IN_POOL",
            LeadRow.owner_user_id.is_(None),
        )
        .values(owner_user_id=who.user_id, status="ASSIGNED", version=LeadRow.version + 1)
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]
        raise Aborted(f"lead {lead_id} was claimed by another rep first", reason="CLAIM_LOST")
    await session.refresh(row)
    rep = await session.scalar(select(RepRow).where(RepRow.user_id == who.user_id))
    p = profile(rep) if rep is not None else None
    team = p.team_path if p is not None and p.team_path else who.org
    cand = routing.Candidate(
        who.user_id, p.display_name if p else "", True, [], ctx.owned_count, 0, 0.0, 1, 1.0, 1
    )
    d = routing.Decision(candidates=[cand], winner=who.user_id, team_path=team, pool_id=row.pool_id or "")
    d.summary = f"{who.user_id} claimed the lead from pool {row.pool_id!r}."
    msg = decision_proto(
        d, row, reason="CLAIMED", actor=who.user_id, at=at, previous_owner="", rules_version=0
    )
    row.version -= 1  # apply_owner bumps it once more for the whole change
    await apply_owner(
        session,
        row,
        settings,
        owner=who.user_id,
        team_path=team,
        supervisor=p.supervisor_user_id if p else "",
        reason="CLAIMED",
        decision=msg,
        at=at,
    )
    session.add(
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
    session: AsyncSession, who: Principal, lead_id: str, at: datetime, *, note: str, pool_id: str, etag: str
) -> LeadRow:
    row = await access.load_visible(session, who, lead_id, for_update=True)
    check_etag(row, etag)
    if row.status not in OPEN:
        raise FailedPrecondition(f"lead {lead_id} is {row.status} and cannot be released", reason="NOT_OWNED")
    access.require_owner_or_manager(who, row)
    settings = await Settings.load(session)
    target = pool_id or pool_rules.pool_for_region(settings.pools, row.region).pool_id
    if pool_id and all(p.pool_id != pool_id for p in settings.pools):
        raise InvalidArgument.field("pool_id", f"unknown pool {pool_id!r}")
    reason = "RELEASED" if row.owner_user_id == who.user_id else "MANAGER_RETURNED"
    await to_pool(session, row, settings, pool_id=target, reason=reason, at=at, actor=who.user_id, note=note)
    return row


async def assign(
    session: AsyncSession,
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
    row = await access.load_visible(session, who, lead_id, for_update=True)
    check_etag(row, etag)
    if row.status in ("CONVERTED", "DISQUALIFIED", "MERGED"):
        raise FailedPrecondition(f"lead {lead_id} is {row.status}", reason="LEAD_CLOSED")
    if row.owner_user_id and not access.manages(who, row.team_path):
        raise PermissionDenied("the lead belongs to a team you do not manage", reason="NOT_MANAGER")
    settings = await Settings.load(session)
    if not assignee:
        msg = await route(session, row, settings, at=at, actor=who.user_id, reason="MANUAL", note=reason)
        return row, msg
    rep = await session.scalar(select(RepRow).where(RepRow.user_id == assignee))
    if rep is None:
        raise NotFound("rep profile", assignee)
    if not access.manages(who, rep.team_path):
        raise PermissionDenied(f"{assignee} is not in a team you manage", reason="NOT_MANAGER")
    region_pool = pool_rules.pool_for_region(settings.pools, row.region)
    counts = await open_counts(session, [assignee])
    candidate = rep_for_routing(rep, counts.get(assignee, 0), region_pool.private_lead_cap)
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
    msg = decision_proto(
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
        session,
        row,
        settings,
        owner=assignee,
        team_path=rep.team_path,
        supervisor=candidate.supervisor_user_id,
        reason="MANUAL",
        decision=msg,
        at=at,
    )
    return row, msg


__all__ = ["SYSTEM", "Settings", "apply_owner", "assign", "claim", "release", "route", "to_pool"]
