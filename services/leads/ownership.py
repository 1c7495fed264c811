"""Ownership changes shared by routing, claims, manual assignment and the watch: give a lead an owner
(with its first-response clock), or return it to a pool (with the re-claim cooldown). Each writes its
decision trace and its event through the unit of work."""

from __future__ import annotations

from datetime import datetime

from kit.resources import UnitOfWork
from salesops.leads.v1 import enums_pb2, events_pb2, routing_pb2
from services.leads import decisions, events, policies
from services.leads.convert import enum_value, ts
from services.leads.domain import pool as pool_rules
from services.leads.domain import routing, sla, status
from services.leads.policies import TenantPolicies
from services.leads.repositories.reps import CooldownRepository, RepRepository
from services.leads.reps import rep_for_routing
from services.leads.store import LeadRow, RepRow

SYSTEM = "system:leads"


def start_sla(row: LeadRow, tenant: TenantPolicies, at: datetime) -> None:
    """Start (or restart) the first-response clock for the current owner, unless already answered."""
    if row.sla_response_time is not None:
        return
    policy = tenant.sla.for_grade(row.grade)
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
    uow: UnitOfWork,
    row: LeadRow,
    tenant: TenantPolicies,
    *,
    owner: str,
    team_path: str,
    supervisor: str,
    reason: str,
    decision: routing_pb2.AssignmentDecision,
    at: datetime,
    restart_clock: bool = True,
    stamp: bool = True,
    decision_body: decisions.Body | None = None,
) -> None:
    """`decision_body`: the decision's stored trace, made already (`decision` is then its header,
    decisions.header). `stamp=False`: the caller stamps the rep's last assignment itself, later in
    the transaction (a batch's routing, RepRepository.stamp_many, once for all its leads)."""
    previous = row.owner_user_id or ""
    row.owner_user_id = owner
    row.status = status.owned_status(row.activity_count)
    row.team_path, row.supervisor_user_id = team_path, supervisor
    row.pool_id, row.pool_entry_reason = None, ""
    row.assignment_reason, row.assign_time = reason, at
    row.last_decision_id = decision.decision_id
    row.needs_attention = row.recycle_warned = False
    if restart_clock:
        start_sla(row, tenant, at)
    row.version += 1
    row.updated_at = at
    decisions.record(uow, decision, at, decision_body)
    if stamp:
        await RepRepository(uow).stamp_assigned(owner, at)
    evt = events_pb2.LeadAssigned(
        lead=events.context(row),
        previous_owner_user_id=previous,
        reason=enum_value(enums_pb2.AssignmentReason, reason),
        decision_id=decision.decision_id,
        actor_user_id=decision.actor_user_id,
        note=decision.note,
    )
    if row.sla_state == sla.PENDING and row.sla_due:
        evt.first_response_due_time.CopyFrom(ts(row.sla_due))
    await events.publish(uow, evt, row.lead_id)


async def to_pool(
    uow: UnitOfWork,
    row: LeadRow,
    tenant: TenantPolicies,
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
    pool = pool_rules.find_pool(tenant.pools, pool_id)
    row.owner_user_id = None
    row.status = status.IN_POOL
    row.pool_id, row.pool_entry_reason = pool.pool_id, reason
    row.assignment_reason, row.assign_time = "", None
    row.needs_attention = row.recycle_warned = False
    if row.sla_state == sla.PENDING:
        # A fresh clock starts with the next owner.
        row.sla_state, row.sla_start, row.sla_due, row.sla_reminder = sla.NOT_APPLICABLE, None, None, None
    if decision is not None:
        row.last_decision_id = decision.decision_id
        decisions.record(uow, decision, at)
    row.version += 1
    row.updated_at = at
    until = pool_rules.cooldown_until(pool, at) if previous else None
    if previous and until is not None:
        await CooldownRepository(uow).set(previous, row.lead_id, until)
    if not previous:
        return
    if reason == "RECYCLED":
        recycled = events_pb2.LeadRecycled(
            lead=events.context(row),
            previous_owner_user_id=previous,
            previous_supervisor_user_id=previous_supervisor,
        )
        if row.last_activity_time:
            recycled.last_activity_time.CopyFrom(ts(row.last_activity_time))
        if until:
            recycled.reclaim_allowed_time.CopyFrom(ts(until))
        await events.publish(uow, recycled, row.lead_id)
        return
    released = events_pb2.LeadReleased(
        lead=events.context(row),
        previous_owner_user_id=previous,
        reason=enum_value(enums_pb2.PoolEntryReason, reason),
        actor_user_id=actor,
        note=note,
    )
    if until:
        released.reclaim_allowed_time.CopyFrom(ts(until))
    await events.publish(uow, released, row.lead_id)


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
    uow: UnitOfWork,
    row: LeadRow,
    tenant: TenantPolicies,
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
        rule, _ = routing.match_rule(tenant.routing, facts)
    region_pool = pool_rules.pool_for_region(tenant.pools, row.region)
    reps: list[routing.Rep] = []
    wrr: dict[str, int] = {}
    rep_rows: dict[str, RepRow] = {}
    if rule is not None and rule.strategy != routing.CLAIM_ONLY:
        repo = RepRepository(uow)
        rows = await repo.in_team(rule.team_path, rule.include_sub_teams)
        counts = await repo.open_counts([r.user_id for r in rows])
        reps = [rep_for_routing(r, counts.get(r.user_id, 0), region_pool.private_lead_cap) for r in rows]
        wrr = {r.user_id: r.wrr_current for r in rows}
        rep_rows = {r.user_id: r for r in rows}
    decision = routing.route(
        facts,
        tenant.routing,
        reps,
        at,
        fallback_pool=tenant.routing_msg.fallback_pool_id or "fallback",
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
    msg = decisions.decision_proto(
        decision,
        row,
        reason=reason,
        actor=actor,
        at=at,
        previous_owner=previous,
        rules_version=tenant.routing_msg.version,
        note=note,
    )
    if decision.winner:
        winner = next(r for r in reps if r.user_id == decision.winner)
        await apply_owner(
            uow,
            row,
            tenant,
            owner=winner.user_id,
            team_path=winner.team_path,
            supervisor=winner.supervisor_user_id,
            reason=reason,
            decision=msg,
            at=at,
        )
        return msg
    pool_reason = entry_reason or ("CLAIM_ONLY" if decision.strategy == routing.CLAIM_ONLY else "UNROUTED")
    if previous:
        await to_pool(
            uow,
            row,
            tenant,
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
        decisions.record(uow, msg, at)
    return msg
