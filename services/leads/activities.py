"""Temporal activities of the leads service: all their I/O goes through a unit of work.

The watch over each owned lead (workflow `LeadWatch`, id `lead-sla/<tenant>/<lead>`): one activity
reads the lead and computes its next timer (business-time deadlines are computed here, outside workflow
code); another, when a timer fires, re-checks the lead and applies the change with its event in one
transaction. The re-grade of a tenant's open leads (workflow `RegradeOpenLeads`) runs in batches, one
transaction each.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from kit import metrics
from kit.db import Database
from kit.resources import UnitOfWork
from salesops.leads.v1 import enums_pb2, events_pb2
from services.leads import events, ownership, policies, regrading
from services.leads.convert import aware, enum_value, now, ts
from services.leads.domain import pool as pool_rules
from services.leads.domain import routing, sla
from services.leads.fire_groups import FireGroups
from services.leads.policies import TenantPolicies
from services.leads.repositories.leads import LeadRepository
from services.leads.store import LeadRow, transactions
from services.leads.timers import watch_state
from services.leads.workflows import FireInput, RegradeBatch, RegradeInput, Timer, WatchInput


def _next(row: LeadRow, tenant: TenantPolicies) -> Timer:
    """The lead's next timer, with this worker's clock: the workflow counts the delay from it (the
    workflow task's start time is older by the time this activity took)."""
    timers = sla.timers(watch_state(row, tenant))
    return Timer(timers[0][0], timers[0][1].isoformat(), now().isoformat()) if timers else Timer()


_GROUP_ROWS = "leads.fire_rows"  # session.info: a fire group's leads, read (and locked) together


async def _lock_group(uow: UnitOfWork, lead_ids: list[str]) -> None:
    uow.session.info[_GROUP_ROWS] = await LeadRepository(uow).find_many_locked(lead_ids)


async def _locked(uow: UnitOfWork, lead_id: str) -> LeadRow | None:
    """The lead, locked: from its group's read when there was one (the same identity-mapped row a
    read of its own would give), else read alone."""
    rows: dict[str, LeadRow] | None = uow.session.info.get(_GROUP_ROWS)
    if rows is not None and lead_id in rows:
        return rows[lead_id]
    return await LeadRepository(uow).find_locked(lead_id)


class WatchActivities:
    def __init__(self, db: Database) -> None:
        self.tx = transactions(db)
        # Fires due together share a transaction (a burst of reminders: fire_groups.py).
        self.fires = FireGroups(self.tx, prefetch=_lock_group)

    @activity.defn(name="leads.watch_next")
    async def next_timer(self, inp: WatchInput) -> Timer:
        async with self.tx.read(inp.tenant) as uow:
            row = await LeadRepository(uow).find(inp.lead_id)
            return _next(row, await TenantPolicies.load(uow)) if row is not None else Timer()

    @activity.defn(name="leads.watch_fire")
    async def fire(self, inp: FireInput) -> Timer:
        """Apply a due timer if the lead still warrants it (a contact or reassignment may have raced it).

        Returns the lead's next timer.
        """
        at = datetime.fromisoformat(inp.at)
        applied: list[str] = []  # the breach action, once committed: for the metrics below

        async def work(uow: UnitOfWork) -> Timer:
            applied.clear()  # a retried transaction starts over
            row = await _locked(uow, inp.lead_id)
            if row is None:
                return Timer()
            tenant = await TenantPolicies.load(uow)
            due = dict(sla.timers(watch_state(row, tenant)))
            if inp.kind in due and due[inp.kind] <= at:
                # Written at the commit (a group's rows in one flush; a later read autoflushes).
                await APPLY[inp.kind](uow, row, tenant, at)
                applied.append(row.sla_breach_action or "")
            return _next(row, tenant)

        found: Timer = await self.fires.run(inp.tenant, work, inp.lead_id)
        if applied and inp.kind == sla.REMIND:
            metrics.SLA_REMINDERS.inc()
        elif applied and inp.kind == sla.BREACH:
            metrics.SLA_BREACHES.labels(applied[0] or "UNSPECIFIED").inc()
        return found


async def _remind(uow: UnitOfWork, row: LeadRow, tenant: TenantPolicies, at: datetime) -> None:
    row.sla_reminded = True
    policy = tenant.sla.for_grade(row.sla_grade)
    evt = events_pb2.SlaReminderDue(
        lead=events.context(row),
        owner_user_id=row.owner_user_id or "",
        supervisor_user_id=row.supervisor_user_id,
        policy_grade=enum_value(enums_pb2.LeadGrade, row.sla_grade),
        qualifying_activity_types=[
            enum_value(enums_pb2.ActivityType, t) for t in (policy.qualifying_types if policy else ())
        ],
    )
    evt.due_time.CopyFrom(ts(row.sla_due))
    await events.publish(uow, evt, row.lead_id)


async def _breach(uow: UnitOfWork, row: LeadRow, tenant: TenantPolicies, at: datetime) -> None:
    policy = tenant.sla.for_grade(row.sla_grade) or sla.Policy(row.sla_grade)
    action = sla.breach_action(policy, row.sla_reassignments)
    owner, supervisor, due = row.owner_user_id or "", row.supervisor_user_id, aware(row.sla_due)
    row.sla_state, row.sla_breach_time, row.sla_breach_action = sla.BREACHED, at, action
    row.needs_attention = True
    new_owner = ""
    note = f"first response due {due.isoformat() if due else '?'} missed by {owner}"
    if action == sla.REASSIGN_NEXT_REP:
        row.sla_reassignments += 1
        # The lead must move even when the deadline falls on closing time.
        team = routing.Rule(
            "sla-reassign", row.team_path, routing.LEAST_LOADED, allow_outside_working_hours=True
        )
        excluded = {owner: routing.PREVIOUS_OWNER} if owner else {}
        if policy.restart_on_reassign:
            row.sla_state, row.sla_response_time = sla.PENDING, None
        msg = await ownership.route(
            uow,
            row,
            tenant,
            at=at,
            reason="SLA_REASSIGN",
            note=note,
            excluded=excluded,
            only_team=team,
            entry_reason="SLA_BREACH",
        )
        new_owner = msg.winner_user_id
        if new_owner and not policy.restart_on_reassign:
            row.sla_state = sla.BREACHED
    elif action == sla.RETURN_TO_POOL:
        pool = pool_rules.pool_for_region(tenant.pools, row.region)
        await ownership.to_pool(
            uow,
            row,
            tenant,
            pool_id=pool.pool_id,
            reason="SLA_BREACH",
            at=at,
            actor=ownership.SYSTEM,
            note=note,
        )
    if row.owner_user_id is None or row.owner_user_id != owner:
        row.sla_breach_time = at  # kept for compliance figures even though the clock restarted
    evt = events_pb2.SlaBreached(
        lead=events.context(row),
        owner_user_id=owner,
        supervisor_user_id=supervisor,
        policy_grade=enum_value(enums_pb2.LeadGrade, row.sla_grade or row.grade),
        escalate=policy.escalate,
        action=enum_value(enums_pb2.SlaBreachAction, action),
        new_owner_user_id=new_owner,
    )
    evt.due_time.CopyFrom(ts(due))
    evt.breach_time.CopyFrom(ts(at))
    await events.publish(uow, evt, row.lead_id)


async def _attention(uow: UnitOfWork, row: LeadRow, tenant: TenantPolicies, at: datetime) -> None:
    row.needs_attention = True
    last = aware(row.last_activity_time)
    touch = max((t for t in (aware(row.assign_time), last) if t is not None), default=at)
    evt = events_pb2.LeadNeedsAttention(
        lead=events.context(row),
        owner_user_id=row.owner_user_id or "",
        supervisor_user_id=row.supervisor_user_id,
        idle_days=max((at - touch).days, 0),
    )
    if last:
        evt.last_activity_time.CopyFrom(ts(last))
    await events.publish(uow, evt, row.lead_id)


async def _recycle_warn(uow: UnitOfWork, row: LeadRow, tenant: TenantPolicies, at: datetime) -> None:
    row.recycle_warned = True
    state = watch_state(row, tenant)
    evt = events_pb2.LeadRecycleWarning(lead=events.context(row))
    evt.recycle_time.CopyFrom(ts(state.recycle_time))
    if row.last_activity_time:
        evt.last_activity_time.CopyFrom(ts(row.last_activity_time))
    await events.publish(uow, evt, row.lead_id)


async def _recycle(uow: UnitOfWork, row: LeadRow, tenant: TenantPolicies, at: datetime) -> None:
    pool = pool_rules.pool_for_region(tenant.pools, row.region)
    await ownership.to_pool(
        uow, row, tenant, pool_id=pool.pool_id, reason="RECYCLED", at=at, actor=ownership.SYSTEM
    )


APPLY: dict[str, Callable[[UnitOfWork, LeadRow, TenantPolicies, datetime], Awaitable[None]]] = {
    sla.REMIND: _remind,
    sla.BREACH: _breach,
    sla.ATTENTION: _attention,
    sla.RECYCLE_WARN: _recycle_warn,
    sla.RECYCLE: _recycle,
}


class RegradeActivities:
    def __init__(self, db: Database) -> None:
        self.tx = transactions(db)

    @activity.defn(name="leads.regrade_batch")
    async def regrade_batch(self, inp: RegradeInput) -> RegradeBatch:
        """One batch of a tenant-wide re-grade, in its own transaction; idempotent (a re-graded lead does
        not change again). Waits (retryable error) until the rules version that asked for it is committed."""

        async def work(uow: UnitOfWork) -> RegradeBatch:
            current = await policies.load(uow, policies.GRADING)
            if current.version < inp.rules_version:
                raise ApplicationError(f"grading rules version {inp.rules_version} not committed yet")
            changed, last = await regrading.regrade_batch(uow, inp.after, inp.batch_size, now())
            return RegradeBatch(changed, last)

        return await self.tx.run(inp.tenant, work)
