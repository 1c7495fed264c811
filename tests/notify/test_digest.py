"""Daily digest: sections by the user's local day, sent once per day by the sweep workflow."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from google.protobuf.struct_pb2 import Struct
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from kit import temporal
from salesops.notify.v1 import digest_pb2
from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from services.notify import activities, digests
from services.notify.domain import digest as rules
from tests.notify.conftest import REP_A1, SERVICE, NotifyStack, auth

DAY = date(2026, 3, 2)


def _entry(
    nid: str,
    category: str,
    *,
    due: datetime | None = None,
    created: datetime | None = None,
    open_: bool = True,
    ack: bool = False,
    priority: int = 2,
) -> rules.Entry:
    return rules.Entry(
        nid, category, priority, nid, created or datetime(2026, 3, 1, 12, tzinfo=UTC), due, open_, ack
    )


def test_sections_follow_the_users_local_day() -> None:
    entries = [
        # 2026-03-02 23:30 Shanghai = 15:30 UTC: due "today" in Shanghai.
        _entry("late", "sla_reminder", due=datetime(2026, 3, 2, 15, 30, tzinfo=UTC)),
        # 2026-03-03 00:30 Shanghai: tomorrow, not today.
        _entry("tomorrow", "sla_reminder", due=datetime(2026, 3, 2, 16, 30, tzinfo=UTC)),
        _entry("closed", "sla_reminder", due=datetime(2026, 3, 2, 3, 0, tzinfo=UTC), open_=False),
        _entry("breach", "sla_breach", created=datetime(2026, 3, 1, 20, tzinfo=UTC), priority=4),
        _entry("old-breach", "sla_breach", created=datetime(2026, 2, 20, tzinfo=UTC)),
        _entry("approval", "approval_waiting"),
        _entry("ack", "dwell_alert", ack=True),
        _entry("digest", "digest", due=datetime(2026, 3, 2, 3, 0, tzinfo=UTC)),
    ]
    sections = {
        s.kind: [e.notification_id for e in s.entries] for s in rules.build(entries, DAY, "Asia/Shanghai")
    }
    assert sections == {
        rules.DUE_TODAY: ["late"],
        rules.BREACHED: ["breach"],
        rules.APPROVALS_WAITING: ["approval"],
        rules.AWAITING_ACK: ["ack"],
    }
    # The same entries seen from UTC: "late" and "tomorrow" are both on 2026-03-02.
    utc = {s.kind: [e.notification_id for e in s.entries] for s in rules.build(entries, DAY, "UTC")}
    assert utc[rules.DUE_TODAY] == ["late", "tomorrow"]


def test_due_date_waits_for_the_local_send_time() -> None:
    assert rules.due_date(datetime(2026, 3, 2, 0, 0, tzinfo=UTC), "Asia/Shanghai") is None  # 08:00 local
    assert rules.due_date(datetime(2026, 3, 2, 0, 30, tzinfo=UTC), "Asia/Shanghai") == DAY  # 08:30 local
    assert (
        rules.due_date(datetime(2026, 3, 2, 0, 30, tzinfo=UTC), "Europe/Berlin", time(2, 0)) is None
    )  # 01:30
    many = [_entry(f"n{i:02d}", "approval_waiting") for i in range(25)]
    [section] = rules.build(many, DAY, "UTC")
    assert len(section.entries) == 20 and section.total == 25


async def _send(
    stack: NotifyStack, category: int, variables: dict[str, object], due: datetime | None = None
) -> None:
    values = Struct()
    values.update(variables)
    n = N.Notification(
        category=category,  # type: ignore[arg-type]
        recipients=[N.Recipient(user_id="rep-a1")],
        template=N.TemplateContent(variables=values),
    )
    if due is not None:
        n.due_time.FromDatetime(due)
    await stack.stub.SendNotification(M.SendNotificationRequest(notification=n), metadata=auth(SERVICE))


async def test_sweep_sends_each_due_digest_once(
    notify: NotifyStack, temporal_skipping: WorkflowEnvironment
) -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    local_today = datetime.now(shanghai).date()
    due_local = datetime.combine(local_today, time(23, 0), tzinfo=shanghai)
    await _send(
        notify, N.NOTIFICATION_CATEGORY_SLA_REMINDER, {"lead_name": "ACME"}, due_local.astimezone(UTC)
    )
    await _send(notify, N.NOTIFICATION_CATEGORY_SLA_BREACH, {"lead_name": "Slow Co"})
    await _send(notify, N.NOTIFICATION_CATEGORY_APPROVAL_WAITING, {"deal_name": "Big deal"})

    preview = await notify.stub.PreviewDigest(M.PreviewDigestRequest(user_id="me"), metadata=auth(REP_A1))
    kinds = [s.kind for s in preview.digest.sections]
    assert kinds == [
        digest_pb2.DIGEST_SECTION_KIND_DUE_TODAY,
        digest_pb2.DIGEST_SECTION_KIND_BREACHED,
        digest_pb2.DIGEST_SECTION_KIND_APPROVALS_WAITING,
    ]
    assert preview.digest.time_zone == "Asia/Shanghai" and preview.digest.scheduled_time.seconds > 0

    # Sweep at 09:00 Shanghai today: rep-a1 has items; the others' digests are empty and skipped.
    sweep_at = datetime.combine(local_today, time(9, 0), tzinfo=shanghai)
    acts = activities.DigestActivities(notify.rt.db, notify.rt.redis)
    queue = notify.rt.settings.task_queue
    async with temporal.build_worker(
        temporal_skipping.client, queue, workflows=[digests.DigestSweepWorkflow], activities=acts.all()
    ):
        for expected in (1, 0):  # the second sweep the same day sends nothing
            sent = await temporal_skipping.client.execute_workflow(
                digests.DigestSweepWorkflow.run,
                digests.SweepRequest(now=sweep_at.isoformat()),
                id=f"sweep-{uuid.uuid4()}",
                task_queue=queue,
            )
            assert sent == expected
        # Before 08:30 local nothing is due.
        early = digests.SweepRequest(now=(sweep_at - timedelta(hours=2)).isoformat())
        assert await ActivityEnvironment().run(acts.sweep, early) == 0
    page = await notify.stub.ListInboxItems(
        M.ListInboxItemsRequest(filter=M.InboxFilter(categories=[N.NOTIFICATION_CATEGORY_DIGEST])),
        metadata=auth(REP_A1),
    )
    assert page.total_size == 1
    assert page.items[0].body.startswith("今日到期 1 项，已超时 1 项，待审批 1 项")  # noqa: RUF001
