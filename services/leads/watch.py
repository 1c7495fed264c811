"""The durable watch over each owned lead: first-response reminder and breach, no-follow-up attention, recycling.

One Temporal workflow per lead, id `lead-sla/<tenant>/<lead>`. Its activities read
the lead, compute the next timer (business-time deadlines are computed here,
outside workflow code) and, when a timer fires, re-check the lead and apply the
change with its event in one transaction. Changes made through the API reach
the workflow as a `changed` signal (signal-with-start), sent by a consumer of
our own event stream, so a change committed while Temporal is down is still
delivered when it comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity, workflow
from temporalio.client import Client

with workflow.unsafe.imports_passed_through():
    from kit.db import Database
    from kit.events import EventEnvelope, StreamConsumer, service_stream
    from kit.runtime import Runtime
    from salesops.leads.v1 import enums_pb2, events_pb2
    from services.leads import assignment
    from services.leads.convert import aware, context, long, ts
    from services.leads.domain import pool as pool_rules
    from services.leads.domain import routing, sla
    from services.leads.store import LeadRow
    from services.leads.workflows import (
        SIGNAL,
        WORKFLOW_NAME,
        FireInput,
        LeadWatchWorkflow,
        Timer,
        WatchInput,
        workflow_id,
    )

log = logging.getLogger("salesops.leads.watch")

# Events after which the watch must look at the lead again.
WATCHED_EVENTS = frozenset(
    f"leads.{n}"
    for n in (
        "LeadAssigned",
        "LeadReleased",
        "LeadRecycled",
        "ActivityLogged",
        "LeadGraded",
        "LeadConverted",
        "LeadDisqualified",
    )
)


def watch_state(row: LeadRow, settings: assignment.Settings) -> sla.WatchState:
    owned = bool(row.owner_user_id) and row.status in assignment.OPEN
    last_touch = max(
        (t for t in (aware(row.assign_time), aware(row.last_activity_time)) if t is not None), default=None
    )
    pool = pool_rules.pool_for_region(settings.pools, row.region)
    plan = pool_rules.recycle_plan(pool, row.grade, row.status, last_touch)
    return sla.WatchState(
        owned=owned,
        sla_state=row.sla_state,
        reminder_time=aware(row.sla_reminder),
        due_time=aware(row.sla_due),
        reminded=row.sla_reminded,
        last_touch=last_touch,
        attention_after_days=settings.sla.attention_after_days,
        needs_attention=row.needs_attention,
        recycle_warn_time=plan.warn_time,
        recycle_time=plan.recycle_time,
        recycle_warned=row.recycle_warned,
    )


class WatchActivities:
    def __init__(self, db: Database) -> None:
        self.db = db

    @activity.defn(name="leads.watch_next")
    async def next_timer(self, inp: WatchInput) -> Timer:
        async with self.db.session(inp.tenant) as session:
            row = await session.get(LeadRow, (inp.tenant, inp.lead_id))
            if row is None:
                return Timer()
            timers = sla.timers(watch_state(row, await assignment.Settings.load(session)))
        if not timers:
            return Timer()
        kind, at = timers[0]
        return Timer(kind, at.isoformat())

    @activity.defn(name="leads.watch_fire")
    async def fire(self, inp: FireInput) -> Timer:
        """Apply a due timer if the lead still warrants it (a contact or reassignment may have raced it).

        Returns the lead's next timer.
        """
        at = datetime.fromisoformat(inp.at)
        async with self.db.session(inp.tenant) as session:
            row = await session.get(LeadRow, (inp.tenant, inp.lead_id), with_for_update=True)
            if row is None:
                return Timer()
            settings = await assignment.Settings.load(session)
            due = dict(sla.timers(watch_state(row, settings)))
            if inp.kind in due and due[inp.kind] <= at:
                await APPLY[inp.kind](session, row, settings, at)
                await session.flush()
            timers = sla.timers(watch_state(row, settings))
            await session.commit()
        return Timer(timers[0][0], timers[0][1].isoformat()) if timers else Timer()


async def _remind(session: AsyncSession, row: LeadRow, settings: assignment.Settings, at: datetime) -> None:
    row.sla_reminded = True
    policy = settings.sla.for_grade(row.sla_grade)
    evt = events_pb2.SlaReminderDue(
        lead=context(row),
        owner_user_id=row.owner_user_id or "",
        supervisor_user_id=row.supervisor_user_id,
        policy_grade=long(enums_pb2.LeadGrade, row.sla_grade),
        qualifying_activity_types=[
            long(enums_pb2.ActivityType, t) for t in (policy.qualifying_types if policy else ())
        ],
    )
    evt.due_time.CopyFrom(ts(row.sla_due))
    await assignment.publish(session, "SlaReminderDue", evt, row.lead_id)


async def _breach(session: AsyncSession, row: LeadRow, settings: assignment.Settings, at: datetime) -> None:
    policy = settings.sla.for_grade(row.sla_grade) or sla.Policy(row.sla_grade)
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
        msg = await assignment.route(
            session,
            row,
            settings,
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
        pool = pool_rules.pool_for_region(settings.pools, row.region)
        await assignment.to_pool(
            session,
            row,
            settings,
            pool_id=pool.pool_id,
            reason="SLA_BREACH",
            at=at,
            actor=assignment.SYSTEM,
            note=note,
        )
    if row.owner_user_id is None or row.owner_user_id != owner:
        row.sla_breach_time = at  # kept for compliance figures even though the clock restarted
    evt = events_pb2.SlaBreached(
        lead=context(row),
        owner_user_id=owner,
        supervisor_user_id=supervisor,
        policy_grade=long(enums_pb2.LeadGrade, row.sla_grade or row.grade),
        escalate=policy.escalate,
        action=long(enums_pb2.SlaBreachAction, action),
        new_owner_user_id=new_owner,
    )
    evt.due_time.CopyFrom(ts(due))
    evt.breach_time.CopyFrom(ts(at))
    await assignment.publish(session, "SlaBreached", evt, row.lead_id)


async def _attention(
    session: AsyncSession, row: LeadRow, settings: assignment.Settings, at: datetime
) -> None:
    row.needs_attention = True
    last = aware(row.last_activity_time)
    touch = max((t for t in (aware(row.assign_time), last) if t is not None), default=at)
    evt = events_pb2.LeadNeedsAttention(
        lead=context(row),
        owner_user_id=row.owner_user_id or "",
        supervisor_user_id=row.supervisor_user_id,
        idle_days=max((at - touch).days, 0),
    )
    if last:
        evt.last_activity_time.CopyFrom(ts(last))
    await assignment.publish(session, "LeadNeedsAttention", evt, row.lead_id)


async def _recycle_warn(
    session: AsyncSession, row: LeadRow, settings: assignment.Settings, at: datetime
) -> None:
    row.recycle_warned = True
    state = watch_state(row, settings)
    evt = events_pb2.LeadRecycleWarning(lead=context(row))
    evt.recycle_time.CopyFrom(ts(state.recycle_time))
    if row.last_activity_time:
        evt.last_activity_time.CopyFrom(ts(row.last_activity_time))
    await assignment.publish(session, "LeadRecycleWarning", evt, row.lead_id)


async def _recycle(session: AsyncSession, row: LeadRow, settings: assignment.Settings, at: datetime) -> None:
    pool = pool_rules.pool_for_region(settings.pools, row.region)
    await assignment.to_pool(
        session, row, settings, pool_id=pool.pool_id, reason="RECYCLED", at=at, actor=assignment.SYSTEM
    )


APPLY: dict[str, Callable[[AsyncSession, LeadRow, assignment.Settings, datetime], Awaitable[None]]] = {
    sla.REMIND: _remind,
    sla.BREACH: _breach,
    sla.ATTENTION: _attention,
    sla.RECYCLE_WARN: _recycle_warn,
    sla.RECYCLE: _recycle,
}


async def poke(client: Client, task_queue: str, tenant: str, lead_id: str) -> None:
    """Start the lead's watch, or tell the running one to look again (signal-with-start)."""
    await client.start_workflow(
        WORKFLOW_NAME,
        WatchInput(tenant, lead_id),
        id=workflow_id(tenant, lead_id),
        task_queue=task_queue,
        start_signal=SIGNAL,
    )


def consumer(rt: Runtime) -> StreamConsumer:
    async def handle(envelope: EventEnvelope, _session: AsyncSession) -> None:
        await poke(rt.temporal, rt.settings.task_queue, envelope.tenant, envelope.subject)

    return StreamConsumer(
        rt.redis, rt.db, "leads-watch", [service_stream("leads")], handle, types=WATCHED_EVENTS, min_idle=30.0
    )


async def start_consumer(rt: Runtime) -> Callable[[], Awaitable[None]]:
    c = consumer(rt)
    task = asyncio.create_task(c.run(), name="leads-watch-consumer")

    async def stop() -> None:
        await c.stop()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return stop


def activities(rt: Runtime) -> list[Callable[..., object]]:
    acts = WatchActivities(rt.db)
    return [acts.next_timer, acts.fire]


__all__ = [
    "LeadWatchWorkflow",
    "WatchActivities",
    "activities",
    "consumer",
    "poke",
    "start_consumer",
    "workflow_id",
]
