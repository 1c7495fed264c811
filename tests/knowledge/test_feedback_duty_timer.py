"""The feedback duty's durable timer on Temporal's time-skipping server.

Reminder before the 48 h deadline, OVERDUE after it, no second duty (or timer) on a
repeat use, late feedback accepted and marked, feedback completing the workflow,
and a deadline in business time across a weekend.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import func, select
from temporalio.testing import WorkflowEnvironment

from kit.auth import Principal
from kit.db import Database
from kit.events import parse_envelope, unpack_payload
from kit.migrations import upgrade_to_head
from kit.resources import UnitOfWork
from kit.temporal import WorkerRunner, build_worker
from salesops.knowledge.v1 import events_pb2
from salesops.knowledge.v1.settings_pb2 import FeedbackPolicy, KnowledgeSettings
from salesops.knowledge.v1.usage_pb2 import CardFeedback, CardUse, FeedbackRating
from services.knowledge import cards, knowledge_settings, uses
from services.knowledge.domain import duties as rules
from services.knowledge.duty_activities import DutyActivities
from services.knowledge.duty_consumers import poke
from services.knowledge.duty_workflows import FeedbackDutyWorkflow, workflow_id
from services.knowledge.store import outbox, transactions
from services.knowledge.store_uses import FeedbackDutyRow
from tests.knowledge.helpers import card

SH = ZoneInfo("Asia/Shanghai")
FAR = datetime(2100, 1, 1, tzinfo=UTC)
ADMIN = Principal("admin", "demo", frozenset({"admin"}), "", FAR)
REP = Principal("rep-a1", "demo", frozenset({"rep"}), "east/team-a", FAR)


@dataclass
class World:
    db: Database
    env: WorkflowEnvironment
    queue: str

    async def run(self, work: Any) -> Any:
        return await transactions(self.db).run("demo", work)

    async def use(self, use_id: str, at: datetime, deal: str = "D1") -> tuple[Any, Any, bool]:
        u = CardUse(use_id=use_id, deal_id=deal, industry="manufacturing", stage_id="negotiation")
        return await self.run(lambda uow: uses.record_use(uow, REP, "C1", u, at))  # type: ignore[no-any-return]

    async def duty(self, duty_id: str) -> FeedbackDutyRow:
        async with self.db.session("demo") as s:
            row = await s.get(FeedbackDutyRow, ("demo", duty_id))
            assert row is not None
            return row

    async def skip_to(self, when: datetime) -> None:
        current = await self.env.get_current_time()
        if when > current:
            await self.env.sleep(when - current)


async def events(db: Database, event_type: str) -> list[Any]:
    async with db.system_session() as s:
        rows = (await s.execute(select(outbox.c.type, outbox.c.envelope).order_by(outbox.c.id))).all()
    return [parse_envelope(e) for t, e in rows if t == event_type]


async def due_events(db: Database, count: int, timeout: float = 30.0) -> list[events_pb2.FeedbackDue]:
    """The FeedbackDue events once `count` are there (polled; a busy machine gets a generous limit)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        found = [unpack_payload(e, events_pb2.FeedbackDue) for e in await events(db, uses.EVENT_DUE)]
        if len(found) >= count or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.1)


async def quiet(db: Database, count: int) -> None:
    """No further FeedbackDue arrives for a moment (asserting a negative: a short bounded look)."""
    await asyncio.sleep(0.5)
    assert len(await due_events(db, count + 1, timeout=0.5)) == count


@pytest.fixture
async def world(sqlite_url: str, temporal_skipping: WorkflowEnvironment) -> AsyncIterator[World]:
    db = Database(sqlite_url)
    await upgrade_to_head("knowledge", db)
    queue = f"knowledge-{uuid.uuid4().hex[:8]}"
    acts = DutyActivities(db)
    runner = WorkerRunner(
        build_worker(temporal_skipping.client, queue, workflows=[FeedbackDutyWorkflow], activities=acts.all())  # type: ignore[arg-type]
    )
    runner.start()
    w = World(db, temporal_skipping, queue)
    now = await temporal_skipping.get_current_time()

    async def publish(uow: UnitOfWork) -> None:
        await cards.create_card(uow, ADMIN, card("C1"), now)
        await cards.change_status(uow, ADMIN, "submit", "C1", "", "", now)
        await cards.change_status(uow, ADMIN, "publish", "C1", "v1", "", now)

    await w.run(publish)
    try:
        yield w
    finally:
        await runner.stop()
        await db.dispose()


async def test_reminder_before_the_deadline_overdue_after_and_late_feedback(world: World) -> None:
    w = world
    start = await w.env.get_current_time()
    _, duty, repeat = await w.use("U1", start)
    assert not repeat
    due = duty.due_at
    assert due == start + timedelta(hours=48)
    await poke(w.env.client, w.queue, "demo", "U1")
    # A repeat use on the same deal: recorded, no second duty, no second timer.
    _, same, repeat = await w.use("U2", start + timedelta(hours=1))
    assert repeat and same.duty_id == "U1"
    async with w.db.session("demo") as s:
        assert await s.scalar(select(func.count()).select_from(FeedbackDutyRow)) == 1
    # Nothing until 4 hours before the deadline (the default offsets: -4 h and the deadline).
    await w.skip_to(due - timedelta(hours=4, minutes=1))
    await quiet(w.db, 0)
    await w.skip_to(due - timedelta(hours=4) + timedelta(seconds=1))
    first = await due_events(w.db, 1)
    assert len(first) == 1
    assert (first[0].use_id, first[0].user_id, first[0].reminder_number, first[0].overdue) == (
        "U1",
        "rep-a1",
        1,
        False,
    )
    assert first[0].deal_id == "D1" and first[0].due_time.ToDatetime(tzinfo=UTC) == due
    assert (await w.duty("U1")).state == rules.PENDING
    # At the deadline: OVERDUE, with the event the supervisor is told by.
    await w.skip_to(due + timedelta(seconds=1))
    both = await due_events(w.db, 2)
    assert len(both) == 2 and both[1].overdue and both[1].reminder_number == 2
    assert both[1].org_path == "east/team-a"
    overdue = await w.duty("U1")
    assert overdue.state == rules.OVERDUE and overdue.reminders_sent == 2
    # Every reminder went out: the workflow completed.
    await asyncio.wait_for(w.env.client.get_workflow_handle(workflow_id("demo", "U1")).result(), 30)
    # Late feedback is accepted and marked late.
    late_at = due + timedelta(hours=2)
    fb = CardFeedback(rating=FeedbackRating.FEEDBACK_RATING_FULLY)
    _, rated = await w.run(lambda uow: uses.submit_feedback(uow, REP, "U2", fb, late_at))
    assert rated.state == rules.SUBMITTED and rated.late
    recorded = [
        unpack_payload(e, events_pb2.FeedbackRecorded) for e in await events(w.db, uses.EVENT_FEEDBACK)
    ]
    assert [(r.use_id, r.duty_use_id, r.late) for r in recorded] == [("U2", "U1", True)]


async def test_feedback_in_time_completes_the_timer(world: World) -> None:
    w = world
    start = await w.env.get_current_time()
    await w.use("F1", start)
    await poke(w.env.client, w.queue, "demo", "F1")
    await w.skip_to(start + timedelta(hours=1))
    fb = CardFeedback(rating=FeedbackRating.FEEDBACK_RATING_FULLY)
    _, rated = await w.run(lambda uow: uses.submit_feedback(uow, REP, "F1", fb, start + timedelta(hours=1)))
    assert not rated.late
    await poke(w.env.client, w.queue, "demo", "F1")  # what the consumer does on FeedbackRecorded
    await asyncio.wait_for(w.env.client.get_workflow_handle(workflow_id("demo", "F1")).result(), 30)
    await w.skip_to(start + timedelta(hours=49))
    await quiet(w.db, 0)


def next_friday_17(after: datetime) -> datetime:
    local = after.astimezone(SH)
    days = (4 - local.weekday()) % 7 or 7
    return (local + timedelta(days=days)).replace(hour=17, minute=0, second=0, microsecond=0).astimezone(UTC)


async def test_business_time_deadline_across_a_weekend(world: World) -> None:
    w = world
    policy = FeedbackPolicy(
        window=Duration(seconds=4 * 3600),
        reminder_offsets=[Duration(seconds=-3600), Duration(seconds=0)],
        business_time=True,
    )
    mask = FieldMask(paths=["feedback.window", "feedback.reminder_offsets", "feedback.business_time"])
    await w.run(lambda uow: knowledge_settings.update(uow, ADMIN, KnowledgeSettings(feedback=policy), mask))
    start = next_friday_17(await w.env.get_current_time())
    _, duty, _ = await w.use("W1", start)
    # Friday 17:00 + 4 working hours (Mon-Fri 09:00-18:00) = Monday 12:00; reminder 1 working hour before.
    due = duty.due_at
    assert due.astimezone(SH).strftime("%a %H:%M") == "Mon 12:00"
    await poke(w.env.client, w.queue, "demo", "W1")
    await w.skip_to(start + timedelta(days=2))  # Sunday 17:00: nothing yet
    await quiet(w.db, 0)
    await w.skip_to(due - timedelta(hours=1) + timedelta(seconds=1))
    first = await due_events(w.db, 1)
    assert len(first) == 1 and not first[0].overdue
    reminded = (await w.duty("W1")).reminded_at
    assert reminded is not None and uses.aware(reminded).astimezone(SH).strftime("%a %H:%M") == "Mon 11:00"
    await w.skip_to(due + timedelta(seconds=1))
    both = await due_events(w.db, 2)
    assert len(both) == 2 and both[1].overdue


async def test_a_use_logged_after_its_deadline_is_marked_overdue_once(world: World) -> None:
    w = world
    start = await w.env.get_current_time()
    u = CardUse(use_id="L1", deal_id="D1", industry="manufacturing", stage_id="negotiation")
    u.use_time.FromDatetime(start - timedelta(hours=50))  # synced two days late: both reminders are past
    await w.run(lambda uow: uses.record_use(uow, REP, "C1", u, start))
    await poke(w.env.client, w.queue, "demo", "L1")
    [only] = await due_events(w.db, 1)
    await asyncio.wait_for(w.env.client.get_workflow_handle(workflow_id("demo", "L1")).result(), 30)
    await quiet(w.db, 1)
    assert only.overdue and only.reminder_number == 2  # the overtaken 4-hours-before reminder is skipped
    duty = await w.duty("L1")
    assert duty.state == rules.OVERDUE and duty.reminders_sent == 2
