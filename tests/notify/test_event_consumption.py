"""Other services' events become inbox items: real outbox, relay, Redis Streams and consumer group."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import MetaData, func, select

from kit.db import Database
from kit.events import OutboxRelay, emit, outbox_table, service_stream
from kit.runtime import build_consumer
from salesops.leads.v1 import events_pb2 as leads_events
from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from salesops.pipeline.v1 import events_pb2 as pipeline_events
from services.notify import consumers
from services.notify.app import SPEC
from services.notify.store import InboxItemRow
from tests.notify.conftest import REP_A1, SUP_A, TENANT, NotifyStack, auth

PRODUCER_META = MetaData()
PRODUCER_OUTBOX = outbox_table(PRODUCER_META)


async def _publish(tmp_path: Path, redis: object, service: str, events: list[tuple[str, object]]) -> None:
    """Emit events through a producer's outbox and let its relay publish them to the service stream."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / (service + '.db')}")
    async with db.engine.begin() as conn:
        await conn.run_sync(PRODUCER_META.create_all)
    async with db.session(TENANT) as s:
        for event_type, payload in events:
            await emit(s, event_type, payload, source=service, table=PRODUCER_OUTBOX)  # type: ignore[arg-type]
        await s.commit()
    relay = OutboxRelay(db, redis, service_stream(service), table=PRODUCER_OUTBOX, poll_interval=0.05)  # type: ignore[arg-type]
    task = asyncio.create_task(relay.run())
    for _ in range(200):
        if relay.published >= len(events):
            break
        await asyncio.sleep(0.02)
    await relay.stop()
    await task
    await db.dispose()


async def _wait_items(stack: NotifyStack, count: int) -> int:
    for _ in range(300):
        async with stack.rt.db.system_session() as s:
            n = await s.scalar(select(func.count()).select_from(InboxItemRow)) or 0
        if n >= count:
            return n
        await asyncio.sleep(0.02)
    return n


def _lead(lead_id: str) -> leads_events.LeadContext:
    return leads_events.LeadContext(
        lead_id=lead_id, display_name=f"ACME {lead_id}", owner_user_id="rep-a1", supervisor_user_id="sup-a"
    )


async def test_sla_events_reach_owner_and_supervisor_once(notify: NotifyStack, tmp_path: Path) -> None:
    due = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)
    reminder = leads_events.SlaReminderDue(
        lead=_lead("L1"), owner_user_id="rep-a1", supervisor_user_id="sup-a"
    )
    reminder.due_time.FromDatetime(due)
    breach = leads_events.SlaBreached(
        lead=_lead("L1"), owner_user_id="rep-a1", supervisor_user_id="sup-a", escalate=True
    )
    breach.due_time.FromDatetime(due)
    quiet_breach = leads_events.SlaBreached(
        lead=_lead("L2"), owner_user_id="rep-a1", supervisor_user_id="sup-a"
    )
    quiet_breach.due_time.FromDatetime(due + timedelta(hours=1))
    events = [
        ("leads.SlaReminderDue", reminder),
        # The producer re-emitted the same reminder (new event id): dedupe keeps one item.
        ("leads.SlaReminderDue", reminder),
        ("leads.SlaBreached", breach),
        ("leads.SlaBreached", quiet_breach),
        ("leads.LeadCreated", leads_events.LeadCreated(lead=_lead("L3"))),  # not for notify: ignored
    ]
    consumer = build_consumer(notify.rt, SPEC, consumers.CONSUMER, block=0.05)
    task = asyncio.create_task(consumer.run())
    try:
        await _publish(tmp_path, notify.rt.redis, "leads", events)
        assert await _wait_items(notify, 4) == 4
        call = notify.stub.StreamInbox(M.StreamInboxRequest(), metadata=auth(SUP_A))
        await asyncio.wait_for(call.read(), 2)
        frozen = pipeline_events.DealFrozen(
            deal=pipeline_events.DealContext(deal_id="D1", title="Big deal", owner_user_id="sup-a")
        )
        await _publish(tmp_path, notify.rt.redis, "pipeline", [("pipeline.DealFrozen", frozen)])
        live = await asyncio.wait_for(call.read(), 2)  # consumed events also reach open streams
        assert live.item_added.category == N.NOTIFICATION_CATEGORY_FROZEN_DEAL
        call.cancel()
    finally:
        await consumer.stop()
        await task
    rep = await notify.stub.ListInboxItems(M.ListInboxItemsRequest(), metadata=auth(REP_A1))
    assert sorted(N.NotificationCategory.Name(i.category) for i in rep.items) == [
        "NOTIFICATION_CATEGORY_SLA_BREACH",
        "NOTIFICATION_CATEGORY_SLA_BREACH",
        "NOTIFICATION_CATEGORY_SLA_REMINDER",
    ]
    reminder_item = next(i for i in rep.items if i.category == N.NOTIFICATION_CATEGORY_SLA_REMINDER)
    assert reminder_item.subject.id == "L1" and reminder_item.title == "线索即将超时：ACME L1"  # noqa: RUF001
    assert reminder_item.due_time.ToDatetime(tzinfo=UTC) == due
    sup = await notify.stub.ListInboxItems(M.ListInboxItemsRequest(), metadata=auth(SUP_A))
    # Only the escalating breach reaches the supervisor, plus their own frozen deal.
    assert sorted((N.NotificationCategory.Name(i.category), i.subject.id) for i in sup.items) == [
        ("NOTIFICATION_CATEGORY_FROZEN_DEAL", "D1"),
        ("NOTIFICATION_CATEGORY_SLA_BREACH", "L1"),
    ]
    got = await notify.stub.GetNotification(
        M.GetNotificationRequest(notification_id=reminder_item.notification_id), metadata=auth(REP_A1)
    )
    assert got.notification.source.event_type == "leads.SlaReminderDue"


def test_translate_approval_waiting_targets_every_approver() -> None:
    from kit.events import new_envelope

    waiting = pipeline_events.ApprovalStepWaiting(
        approval=pipeline_events.ApprovalContext(approval_id="A1", title="Discount 30%", deal_id="D1"),
        step_key="finance",
        step_display_name="Finance",
        approver_user_ids=["fin-1", "fin-2"],
    )
    env = new_envelope("pipeline.ApprovalStepWaiting", TENANT, waiting, source="pipeline")
    [n] = consumers.translate(env)
    assert [r.user_id for r in n.recipients] == ["fin-1", "fin-2"]
    assert n.category == N.NOTIFICATION_CATEGORY_APPROVAL_WAITING
    assert n.dedupe_key == "approval:A1:finance:"
    assert n.subject.kind == "approval"


def test_translate_idle_dwell_and_feedback() -> None:
    from kit.events import new_envelope
    from salesops.common.v1 import types_pb2
    from salesops.knowledge.v1 import events_pb2 as knowledge_events

    approval = pipeline_events.ApprovalContext(approval_id="A1", title="Discount", deal_id="D1")
    remind = pipeline_events.ApprovalStepIdle(
        approval=approval,
        step_key="fin",
        action=pipeline_events.IDLE_ACTION_REMIND,
        approver_user_ids=["fin-1"],
        escalate_to_user_ids=["cfo"],
        reminder_count=1,
    )
    [n] = consumers.translate(new_envelope("pipeline.ApprovalStepIdle", TENANT, remind, source="pipeline"))
    assert [r.user_id for r in n.recipients] == ["fin-1"]
    assert list(n.channels) == [N.CHANNEL_SMS, N.CHANNEL_WECOM_BOT]
    remind.action = pipeline_events.IDLE_ACTION_ESCALATE
    [up] = consumers.translate(new_envelope("pipeline.ApprovalStepIdle", TENANT, remind, source="pipeline"))
    assert [r.user_id for r in up.recipients] == ["cfo"] and up.dedupe_key != n.dedupe_key
    dwell = pipeline_events.DealDwellExceeded(
        deal=pipeline_events.DealContext(
            deal_id="D2", title="Big", owner_user_id="rep-a1", supervisor_user_id="sup-a"
        ),
        stage_id="negotiation",
    )
    [d] = consumers.translate(new_envelope("pipeline.DealDwellExceeded", TENANT, dwell, source="pipeline"))
    assert [r.user_id for r in d.recipients] == ["rep-a1", "sup-a"]
    assert d.category == N.NOTIFICATION_CATEGORY_DWELL_ALERT
    due = knowledge_events.FeedbackDue(
        use_id="U1", user_id="rep-a1", card_id="C1", card_title="Cold call", deal_id="D3"
    )
    [f] = consumers.translate(new_envelope("knowledge.FeedbackDue", TENANT, due, source="knowledge"))
    assert (
        f.category == N.NOTIFICATION_CATEGORY_FEEDBACK_DUE
        and f.subject.kind == "deal"
        and f.subject.id == "D3"
    )
    # Overdue: the rep is reminded again and the rep's supervisor is told, once per duty.
    due.overdue, due.reminder_number = True, 2
    rep, sup = consumers.translate(new_envelope("knowledge.FeedbackDue", TENANT, due, source="knowledge"))
    assert [r.user_id for r in rep.recipients] == ["rep-a1"] and rep.dedupe_key != f.dedupe_key
    assert sup.category == N.NOTIFICATION_CATEGORY_ANOMALY and sup.dedupe_key == "feedback_overdue:U1"
    [target] = sup.recipients
    assert target.manager.user_id == "rep-a1" and target.manager.role == types_pb2.ROLE_SUPERVISOR


async def test_first_response_resolves_the_leads_sla_items(notify: NotifyStack, tmp_path: Path) -> None:
    from salesops.notify.v1 import inbox_pb2

    due = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)
    reminder = leads_events.SlaReminderDue(
        lead=_lead("L1"), owner_user_id="rep-a1", supervisor_user_id="sup-a"
    )
    reminder.due_time.FromDatetime(due)
    other = leads_events.SlaReminderDue(lead=_lead("L2"), owner_user_id="rep-a1", supervisor_user_id="sup-a")
    other.due_time.FromDatetime(due)
    consumer = build_consumer(notify.rt, SPEC, consumers.CONSUMER, block=0.05)
    task = asyncio.create_task(consumer.run())
    try:
        await _publish(
            tmp_path,
            notify.rt.redis,
            "leads",
            [("leads.SlaReminderDue", reminder), ("leads.SlaReminderDue", other)],
        )
        assert await _wait_items(notify, 2) == 2
        call = notify.stub.StreamInbox(M.StreamInboxRequest(), metadata=auth(REP_A1))
        await asyncio.wait_for(call.read(), 2)
        answered = leads_events.FirstResponseRecorded(
            lead=_lead("L1"), responder_user_id="rep-a1", within_sla=True
        )
        await _publish(tmp_path, notify.rt.redis, "leads", [("leads.FirstResponseRecorded", answered)])
        update = await asyncio.wait_for(call.read(), 2)
        assert update.item_updated.subject.id == "L1"
        assert update.item_updated.state == inbox_pb2.INBOX_ITEM_STATE_RESOLVED
        call.cancel()
    finally:
        await consumer.stop()
        await task
    page = await notify.stub.ListInboxItems(M.ListInboxItemsRequest(), metadata=auth(REP_A1))
    states = {i.subject.id: i.state for i in page.items}
    assert states == {"L1": inbox_pb2.INBOX_ITEM_STATE_RESOLVED, "L2": inbox_pb2.INBOX_ITEM_STATE_OPEN}


def test_translate_assignment_and_approval_outcome() -> None:
    from kit.events import new_envelope

    assigned = leads_events.LeadAssigned(lead=_lead("L5"), actor_user_id="sup-a", decision_id="dec-1")
    [n] = consumers.translate(new_envelope("leads.LeadAssigned", TENANT, assigned, source="leads"))
    assert [r.user_id for r in n.recipients] == [
        "rep-a1"
    ] and n.category == N.NOTIFICATION_CATEGORY_LEAD_ASSIGNED
    claimed = leads_events.LeadAssigned(lead=_lead("L5"), actor_user_id="rep-a1")
    assert consumers.translate(new_envelope("leads.LeadAssigned", TENANT, claimed, source="leads")) == []
    from salesops.pipeline.v1 import approval_pb2

    done = pipeline_events.ApprovalCompleted(
        approval=pipeline_events.ApprovalContext(
            approval_id="A1", title="Discount", requester_user_id="rep-a2"
        ),
        outcome=approval_pb2.APPROVAL_STATE_REJECTED,
    )
    env = new_envelope("pipeline.ApprovalCompleted", TENANT, done, source="pipeline")
    [decided] = consumers.translate(env)
    assert [r.user_id for r in decided.recipients] == ["rep-a2"]
    assert decided.template.variables["decision"] == "rejected"
    [moot] = consumers.resolutions(env)
    assert (moot.kind, moot.id, moot.categories) == ("approval", "A1", ("approval_waiting",))
