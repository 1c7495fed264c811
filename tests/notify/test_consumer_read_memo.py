"""The event consumer's transaction reads a tenant's defaults once (read_memo.READ_MEMO); a
settings change committed before it is seen by the next consumer transaction at once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event, select

from kit.events import new_envelope
from kit.events.claims import claim_event
from salesops.leads.v1 import events_pb2 as leads_events
from salesops.notify.v1 import notify_service_pb2 as M
from salesops.notify.v1 import settings_pb2
from services.notify import consumers, read_memo, sending, store, tenant_settings
from services.notify.store import InboxItemRow, NotificationRow
from tests.notify.conftest import ADMIN, TENANT, NotifyStack, auth


async def test_memo_is_one_transactions_and_a_committed_change_is_seen_by_the_next(
    notify: NotifyStack,
) -> None:
    db = notify.rt.db
    tenant = TENANT
    async with db.session(tenant) as session:
        session.info[read_memo.READ_MEMO] = {}
        before = await tenant_settings.load_defaults(session)
        assert await tenant_settings.load_defaults(session) is before  # read once per transaction
    change = settings_pb2.NotifySettings(default_locale="en", default_time_zone="UTC", etag="0")
    await notify.stub.UpdateNotifySettings(
        M.UpdateNotifySettingsRequest(settings=change), metadata=auth(ADMIN)
    )
    async with db.session(tenant) as session:  # the consumer's next transaction: a new memo
        session.info[read_memo.READ_MEMO] = {}
        after = await tenant_settings.load_defaults(session)
    assert (before.locale, after.locale) != ("en", "en") and after.locale == "en" and after.time_zone == "UTC"
    async with db.session(tenant) as session:  # sessions without the memo read each time
        assert await tenant_settings.load_defaults(session) is not await tenant_settings.load_defaults(
            session
        )


async def test_a_burst_in_one_transaction_reads_each_owner_once_and_files_each_reminder_once(
    notify: NotifyStack,
) -> None:
    """The consumer's transaction (read_memo) reads a recipient's subscriber row and preferences once
    however many of its reminders it applies; each reminder still files one inbox item, and a
    re-emitted one (same dedupe key, new event id) none."""
    db = notify.rt.db
    handler = consumers.EventNotifier(sending.Sender(db, notify.rt.redis))
    due = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)
    owners = ["rep-a1", "rep-a2"]
    reminders = []
    for i in range(10):
        e = leads_events.SlaReminderDue(
            lead=leads_events.LeadContext(lead_id=f"B{i}", display_name=f"Lead {i}"),
            owner_user_id=owners[i % 2],
        )
        e.due_time.FromDatetime(due)
        reminders.append(e)
    envelopes = [
        new_envelope("leads.SlaReminderDue", TENANT, e, source="leads") for e in [*reminders, reminders[0]]
    ]
    reads: list[str] = []

    def count(conn, cursor, statement, *rest) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().startswith("SELECT") and (
            "FROM notify_subscribers" in statement or "FROM notify_preferences" in statement
        ):
            reads.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with db.session(TENANT) as session:
            for env in envelopes:
                assert await claim_event(session, store.processed_events, "notify", env.id)
                await handler(env, session)
            await session.commit()
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    await handler.before_ack()
    assert len(reads) == 4  # subscribers and preferences, once for each of the two owners
    async with db.system_session() as s:
        items = (
            await s.execute(
                select(InboxItemRow.user_id, InboxItemRow.subject_id).where(
                    InboxItemRow.category == "sla_reminder"
                )
            )
        ).all()
    assert sorted(items) == sorted((owners[i % 2], f"B{i}") for i in range(10))
    # The notifications are Core INSERTs (no ORM object): one per reminder, with their tenant and the
    # columns a send does not set at their defaults, each item pointing at its notification.
    async with db.system_session() as s:
        rows = (
            await s.execute(
                select(
                    NotificationRow.id,
                    NotificationRow.tenant_id,
                    NotificationRow.escalation_level,
                    NotificationRow.acknowledged_by,
                    NotificationRow.ack_at,
                    NotificationRow.escalation_started,
                ).where(NotificationRow.category == "sla_reminder")
            )
        ).all()
        item_of = set((await s.scalars(select(InboxItemRow.notification_id))).all())
    assert len(rows) == 10 and {r.id for r in rows} == item_of
    assert {
        (r.tenant_id, r.escalation_level, r.acknowledged_by, r.ack_at, r.escalation_started) for r in rows
    } == {(TENANT, 0, "", None, False)}
