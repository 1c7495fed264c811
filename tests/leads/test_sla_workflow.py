"""The lead watch on Temporal's time-skipping server: reminder, breach with reassignment, contact, restart, weekend."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from temporalio.testing import WorkflowEnvironment

from kit.auth import Principal
from kit.db import Database
from kit.errors import FailedPrecondition
from kit.events import unpack_payload
from kit.migrations import upgrade_to_head
from kit.resources import UnitOfWork
from kit.temporal import WorkerRunner, build_worker
from salesops.leads.v1 import activity_pb2, enums_pb2, events_pb2
from services.leads import activities, assignment, closing, consumers, followups, intake, workflows
from services.leads.app import SPEC
from services.leads.store import LeadRow, transactions
from tests.leads.helpers import events, hot_lead

SH = ZoneInfo("Asia/Shanghai")
FAR = datetime(2100, 1, 1, tzinfo=UTC)
ADMIN = Principal("admin", "demo", frozenset({"admin"}), "", FAR)
SUP_A = Principal("sup-a", "demo", frozenset({"supervisor"}), "east/team-a", FAR)


def rep(user: str) -> Principal:
    return Principal(user, "demo", frozenset({"rep"}), "east/team-a", FAR)


async def configure_core(db: Database) -> None:
    """Team A reps, routing every east lead to team A (least loaded), through the same code the API uses."""
    from salesops.leads.v1 import policies_pb2, routing_pb2
    from services.leads import policies
    from services.leads.store import RepRow

    async def work(uow: UnitOfWork) -> None:
        rules = policies_pb2.RoutingRules(fallback_pool_id="fallback")
        r = rules.rules.add(
            rule_id="east",
            team_path="east/team-a",
            enabled=True,
            allow_outside_working_hours=True,
            strategy=enums_pb2.ROUTING_STRATEGY_LEAST_LOADED,
        )
        r.match.regions.append("east/*")
        await policies.save(uow, policies.ROUTING, rules, ["rules", "fallback_pool_id"], "admin")
        for n in (1, 2):
            body = routing_pb2.RepProfile(
                display_name=f"Rep A{n}",
                supervisor_user_id="sup-a",
                accepting_leads=True,
                capacity=20,
                weight=1,
            )
            from services.leads.convert import to_dict

            uow.session.add(
                RepRow(
                    user_id=f"rep-a{n}",
                    team_path="east/team-a",
                    body=to_dict(body),
                    updated_at=datetime.now(UTC),
                )
            )

    await transactions(db).run("demo", work)


@pytest.fixture
async def world(
    sqlite_url: str, temporal_skipping: WorkflowEnvironment
) -> AsyncIterator[tuple[Database, WorkflowEnvironment, str]]:
    db = Database(sqlite_url)
    await upgrade_to_head("leads", db)
    await configure_core(db)
    queue = f"leads-{uuid.uuid4().hex[:8]}"
    acts = activities.WatchActivities(db)
    runner = WorkerRunner(
        build_worker(
            temporal_skipping.client,
            queue,
            workflows=[workflows.LeadWatchWorkflow],
            activities=[acts.next_timer, acts.fire],
            options=SPEC.worker_options,  # the worker the service runs
        )
    )
    runner.start()
    try:
        yield db, temporal_skipping, queue
    finally:
        await runner.stop()
        await db.dispose()


def next_friday_1750(after: datetime) -> datetime:
    local = after.astimezone(SH)
    days = (4 - local.weekday()) % 7 or 7
    return (local + timedelta(days=days)).replace(hour=17, minute=50, second=0, microsecond=0).astimezone(UTC)


async def create_at(db: Database, lead_id: str, at: datetime, phone: str) -> LeadRow:
    res = await transactions(db).run(
        "demo", lambda uow: intake.create(uow, ADMIN, hot_lead(lead_id, phone=phone), at)
    )
    assert res.row.owner_user_id
    return res.row


async def skip_to(env: WorkflowEnvironment, when: datetime) -> None:
    current = await env.get_current_time()
    if when > current:
        await env.sleep(when - current)


async def wait_events(
    db: Database, event_type: str, count: int, timeout: float = 15.0
) -> list[events_pb2.SlaBreached] | list:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = await events(db, event_type)
        if len(found) >= count or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.1)


async def test_weekend_reminder_then_breach_reassigns_to_the_next_rep(
    world: tuple[Database, WorkflowEnvironment, str],
) -> None:
    db, env, queue = world
    start = next_friday_1750(await env.get_current_time())
    row = await create_at(db, "W1", start, "13800000031")
    due, reminder = row.sla_due, row.sla_reminder
    assert due is not None and reminder is not None
    # Friday 17:50 + 1 business hour = Monday 09:50; the reminder 30 minutes before, Monday 09:20.
    assert due.astimezone(SH).strftime("%a %H:%M") == "Mon 09:50"
    assert reminder.astimezone(SH).strftime("%a %H:%M") == "Mon 09:20"
    first_owner = row.owner_user_id
    await consumers.poke(env.client, queue, "demo", "W1")
    await skip_to(env, start + timedelta(days=1))  # Saturday: nothing yet
    await asyncio.sleep(0.5)
    assert await events(db, "leads.SlaReminderDue") == []
    await skip_to(env, reminder - timedelta(minutes=1))  # one minute before: still nothing
    await asyncio.sleep(0.5)
    assert await events(db, "leads.SlaReminderDue") == []
    await skip_to(env, reminder + timedelta(seconds=1))
    reminders = await wait_events(db, "leads.SlaReminderDue", 1)
    assert len(reminders) == 1
    rem = unpack_payload(reminders[0][1], events_pb2.SlaReminderDue)
    assert rem.owner_user_id == first_owner and rem.supervisor_user_id == "sup-a"
    assert rem.due_time.ToDatetime(tzinfo=UTC) == due
    assert await events(db, "leads.SlaBreached") == []
    await skip_to(env, due + timedelta(seconds=1))
    breaches = await wait_events(db, "leads.SlaBreached", 1)
    assert len(breaches) == 1
    b = unpack_payload(breaches[0][1], events_pb2.SlaBreached)
    assert b.escalate and b.supervisor_user_id == "sup-a" and b.owner_user_id == first_owner
    assert b.action == enums_pb2.SLA_BREACH_ACTION_REASSIGN_NEXT_REP
    assert b.new_owner_user_id and b.new_owner_user_id != first_owner
    async with db.session("demo") as s:
        moved = await s.get(LeadRow, ("demo", "W1"))
        assert moved is not None
        assert moved.owner_user_id == b.new_owner_user_id and moved.assignment_reason == "SLA_REASSIGN"
        assert moved.sla_state == "PENDING" and moved.sla_reassignments == 1
        new_due = moved.sla_due
    assert (
        new_due is not None and new_due.replace(tzinfo=UTC) > due.replace(tzinfo=UTC)
        if new_due.tzinfo is None
        else new_due > due
    )
    # The second owner breaches too: max one reassignment, then the lead returns to the pool.
    await skip_to(env, (new_due if new_due.tzinfo else new_due.replace(tzinfo=UTC)) + timedelta(seconds=1))
    breaches = await wait_events(db, "leads.SlaBreached", 2)
    second = unpack_payload(breaches[1][1], events_pb2.SlaBreached)
    assert second.action == enums_pb2.SLA_BREACH_ACTION_RETURN_TO_POOL
    async with db.session("demo") as s:
        pooled = await s.get(LeadRow, ("demo", "W1"))
        assert (
            pooled is not None and pooled.owner_user_id is None and pooled.pool_entry_reason == "SLA_BREACH"
        )


async def test_contact_cancels_the_clock(world: tuple[Database, WorkflowEnvironment, str]) -> None:
    db, env, queue = world
    start = next_friday_1750(await env.get_current_time())
    row = await create_at(db, "C1", start, "13800000032")
    await consumers.poke(env.client, queue, "demo", "C1")
    await skip_to(env, start + timedelta(hours=2))
    owner = row.owner_user_id or ""
    act = activity_pb2.Activity(
        activity_type=enums_pb2.ACTIVITY_TYPE_CALL,
        outcome=enums_pb2.ACTIVITY_OUTCOME_REACHED,
        next_step=activity_pb2.NextStep(action="demo", due_date={"year": 2030, "month": 1, "day": 1}),
    )
    act.occur_time.FromDatetime(start + timedelta(minutes=5))
    await transactions(db).run(
        "demo",
        lambda uow: followups.create_activity(uow, rep(owner), "C1", act, start + timedelta(minutes=5)),
    )
    await consumers.poke(env.client, queue, "demo", "C1")  # what the event consumer does for ActivityLogged
    assert row.sla_due is not None
    await skip_to(env, row.sla_due + timedelta(hours=1))
    await asyncio.sleep(1.0)
    assert await events(db, "leads.SlaReminderDue") == []
    assert await events(db, "leads.SlaBreached") == []
    # No follow-up for 3 days after the call: the supervisor board.
    await skip_to(env, start + timedelta(minutes=5, days=3, seconds=1))
    attention = await wait_events(db, "leads.LeadNeedsAttention", 1)
    assert len(attention) == 1
    item = unpack_payload(attention[0][1], events_pb2.LeadNeedsAttention)
    assert item.supervisor_user_id == "sup-a" and item.owner_user_id == owner and item.idle_days == 3


async def test_manual_reassignment_restarts_the_clock(
    world: tuple[Database, WorkflowEnvironment, str],
) -> None:
    db, env, queue = world
    start = next_friday_1750(await env.get_current_time())
    row = await create_at(db, "R1", start, "13800000033")
    await consumers.poke(env.client, queue, "demo", "R1")
    # Monday 09:10: before the 09:20 reminder, the supervisor reassigns.
    assert row.sla_due is not None
    monday_0910 = row.sla_due - timedelta(minutes=40)
    await skip_to(env, monday_0910)
    other = "rep-a2" if row.owner_user_id == "rep-a1" else "rep-a1"
    moved, _ = await transactions(db).run(
        "demo",
        lambda uow: assignment.assign(
            uow, SUP_A, "R1", monday_0910, assignee=other, reason="customer asked", override=False, etag=""
        ),
    )
    new_due, new_reminder = moved.sla_due, moved.sla_reminder
    assert new_due == monday_0910 + timedelta(hours=1) and new_reminder == monday_0910 + timedelta(minutes=30)
    await consumers.poke(env.client, queue, "demo", "R1")
    await skip_to(env, row.sla_due + timedelta(minutes=1))  # the old deadline passes quietly
    await asyncio.sleep(1.0)
    assert await events(db, "leads.SlaBreached") == []
    await skip_to(env, new_reminder + timedelta(seconds=1))
    reminders = await wait_events(db, "leads.SlaReminderDue", 1)
    assert [unpack_payload(e, events_pb2.SlaReminderDue).owner_user_id for _, e in reminders] == [other]


async def test_no_follow_up_warns_then_recycles_and_converted_leads_never_do(
    world: tuple[Database, WorkflowEnvironment, str],
) -> None:
    db, env, queue = world
    from salesops.leads.v1 import policies_pb2
    from services.leads import policies

    async def settings(uow: UnitOfWork) -> None:
        pools = policies_pb2.PoolRules()
        p = pools.pools.add(pool_id="default", reclaim_cooldown_days=5)
        p.recycle_rules.add(
            grade=enums_pb2.LEAD_GRADE_A, enabled=True, recycle_after_days=7, warn_before_days=2
        )
        await policies.save(uow, policies.POOL, pools, ["pools"], "admin")
        # No first-response SLA and no board here, so only the recycle clock runs.
        no_sla = policies_pb2.SlaPolicies(attention_after_days=0)
        await policies.save(uow, policies.SLA, no_sla, ["policies", "attention_after_days"], "admin")

    await transactions(db).run("demo", settings)
    start = next_friday_1750(await env.get_current_time())
    row = await create_at(db, "N1", start, "13800000061")
    kept = await create_at(db, "N2", start, "13800000062")
    owner = row.owner_user_id or ""
    await transactions(db).run(
        "demo",
        lambda uow: closing.convert(
            uow,
            rep(kept.owner_user_id or ""),
            "N2",
            start,
            opportunity_id="",
            name="",
            note="",
            etag="",
            request=None,
        ),
    )
    for lead_id in ("N1", "N2"):
        await consumers.poke(env.client, queue, "demo", lead_id)
    await skip_to(env, start + timedelta(days=5, seconds=1))  # K = 2 days before N = 7
    warnings = await wait_events(db, "leads.LeadRecycleWarning", 1)
    assert [e.subject for _, e in warnings] == ["N1"]
    assert await events(db, "leads.LeadRecycled") == []
    await skip_to(env, start + timedelta(days=7, seconds=1))
    recycled = await wait_events(db, "leads.LeadRecycled", 1)
    assert [e.subject for _, e in recycled] == ["N1"]
    payload = unpack_payload(recycled[0][1], events_pb2.LeadRecycled)
    assert payload.previous_owner_user_id == owner and payload.reclaim_allowed_time.seconds
    async with db.session("demo") as s:
        n1 = await s.get(LeadRow, ("demo", "N1"))
        n2 = await s.get(LeadRow, ("demo", "N2"))
        assert n1 is not None and n1.status == "IN_POOL" and n1.pool_entry_reason == "RECYCLED"
        assert n2 is not None and n2.status == "CONVERTED" and n2.owner_user_id
    with pytest.raises(FailedPrecondition) as refused:  # the old owner is in the re-claim cooldown
        await transactions(db).run(
            "demo", lambda uow: assignment.claim(uow, rep(owner), "N1", start + timedelta(days=8))
        )
    assert refused.value.violations[0].type == "RECLAIM_COOLDOWN"
