# ruff: noqa: RUF001  # expected Chinese titles use full-width punctuation.
"""Send, dedupe, recipients and the inbox over real gRPC, SQLite/PostgreSQL and Redis."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct

from salesops.common.v1 import types_pb2
from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from tests.notify.conftest import (
    ADMIN,
    OTHER_TENANT_REP,
    REP_A1,
    REP_A2,
    SERVICE,
    SUP_A,
    NotifyStack,
    auth,
)


def reminder(*users: str, dedupe: str = "", lead: str = "L1") -> N.Notification:
    values = Struct()
    values.update({"lead_name": f"ACME {lead}", "lead_id": lead})
    return N.Notification(
        category=N.NOTIFICATION_CATEGORY_SLA_REMINDER,
        recipients=[N.Recipient(user_id=u) for u in users],
        template=N.TemplateContent(variables=values),
        subject=types_pb2.ResourceRef(service="leads", kind="lead", id=lead),
        dedupe_key=dedupe,
    )


async def send(stack: NotifyStack, n: N.Notification, tok: str = SERVICE) -> M.SendNotificationResponse:
    return await stack.stub.SendNotification(M.SendNotificationRequest(notification=n), metadata=auth(tok))


async def inbox(stack: NotifyStack, tok: str, **kw: object) -> M.ListInboxItemsResponse:
    return await stack.stub.ListInboxItems(M.ListInboxItemsRequest(**kw), metadata=auth(tok))  # type: ignore[arg-type]


async def test_send_files_rendered_items_in_each_recipients_inbox(notify_any_db: NotifyStack) -> None:
    sent = await send(notify_any_db, reminder("rep-a1", "rep-a2"))
    assert sent.notification.resolved_user_ids == ["rep-a1", "rep-a2"]
    assert not sent.deduplicated
    page = await inbox(notify_any_db, REP_A1)
    assert [i.notification_id for i in page.items] == [sent.notification.notification_id]
    item = page.items[0]
    assert item.title == "线索即将超时：ACME L1" and item.locale == "zh-CN"
    assert item.subject.id == "L1" and not item.read
    assert page.unread_count.total == 1
    assert page.unread_count.by_category[0].category == N.NOTIFICATION_CATEGORY_SLA_REMINDER


async def test_same_dedupe_key_inside_window_is_delivered_once(notify_any_db: NotifyStack) -> None:
    first = await send(notify_any_db, reminder("rep-a1", dedupe="sla:L1"))
    again = await send(notify_any_db, reminder("rep-a1", dedupe="sla:L1"))
    assert again.deduplicated
    assert again.notification.notification_id == first.notification.notification_id
    other = await send(notify_any_db, reminder("rep-a1", dedupe="sla:L2", lead="L2"))
    assert not other.deduplicated
    assert (await inbox(notify_any_db, REP_A1)).total_size == 2


async def test_concurrent_sends_with_one_dedupe_key_make_one_notification(notify_any_db: NotifyStack) -> None:
    results = await asyncio.gather(
        *(send(notify_any_db, reminder("rep-a1", dedupe="race")) for _ in range(6))
    )
    assert len({r.notification.notification_id for r in results}) == 1
    assert sum(not r.deduplicated for r in results) == 1
    assert (await inbox(notify_any_db, REP_A1)).total_size == 1


async def test_dedupe_window_expiry_allows_a_new_send(notify: NotifyStack) -> None:
    n = reminder("rep-a1", dedupe="short")
    n.dedupe_window.FromSeconds(1)
    first = await send(notify, n)
    await asyncio.sleep(1.2)
    second = await send(notify, n)
    assert not second.deduplicated
    assert second.notification.notification_id != first.notification.notification_id


async def test_notification_id_makes_a_replay_idempotent(notify: NotifyStack) -> None:
    n = reminder("rep-a1")
    n.notification_id = "01JC0000000000000000000000"
    await send(notify, n)
    await send(notify, n)
    assert (await inbox(notify, REP_A1)).total_size == 1


async def test_role_in_org_unit_resolves_to_users(notify: NotifyStack) -> None:
    n = reminder()
    n.recipients.append(
        N.Recipient(org_role=N.OrgRoleTarget(role=types_pb2.ROLE_REP, org_unit_path="east/team-a"))
    )
    n.recipients.append(N.Recipient(manager=N.ManagerTarget(user_id="rep-b1", role=types_pb2.ROLE_DIRECTOR)))
    sent = await send(notify, n)
    assert sent.notification.resolved_user_ids == ["rep-a1", "rep-a2", "director-east"]


async def test_only_admins_and_services_send_and_raw_is_admin_only(notify: NotifyStack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await send(notify, reminder("rep-a2"), REP_A1)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    raw = N.Notification(
        category=N.NOTIFICATION_CATEGORY_SYSTEM,
        recipients=[N.Recipient(user_id="rep-a1")],
        raw=N.RawContent(title="Maintenance tonight", body="22:00-23:00"),
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await send(notify, raw, SERVICE)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert (await send(notify, raw, ADMIN)).notification.notification_id


async def test_bad_sends_are_invalid_argument_with_details(notify: NotifyStack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await send(notify, N.Notification(category=N.NOTIFICATION_CATEGORY_SLA_REMINDER))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    missing = reminder("rep-a1")
    missing.template.variables.Clear()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await send(notify, missing)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "lead_name" in (err.value.details() or "")
    unknown = reminder("rep-a1")
    unknown.template.variables.update({"surprise": 1})
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await send(notify, unknown)
    assert "surprise" in (err.value.details() or "")


async def test_a_user_reads_only_their_own_inbox(notify_any_db: NotifyStack) -> None:
    await send(notify_any_db, reminder("rep-a1"))
    mine = (await inbox(notify_any_db, REP_A1)).items[0]
    assert (await inbox(notify_any_db, REP_A2)).total_size == 0
    for tok in (REP_A2, SUP_A, OTHER_TENANT_REP):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await notify_any_db.stub.GetInboxItem(
                M.GetInboxItemRequest(item_id=mine.item_id), metadata=auth(tok)
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await notify_any_db.stub.MarkInboxItemRead(
                M.MarkInboxItemReadRequest(item_id=mine.item_id), metadata=auth(tok)
            )
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    # Same user id in another tenant sees an empty inbox.
    assert (await inbox(notify_any_db, OTHER_TENANT_REP)).total_size == 0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await notify_any_db.stub.GetNotification(
            M.GetNotificationRequest(notification_id=mine.notification_id), metadata=auth(OTHER_TENANT_REP)
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_mark_read_unread_and_all_read_move_the_badge(notify: NotifyStack) -> None:
    for lead in ("L1", "L2", "L3"):
        await send(notify, reminder("rep-a1", lead=lead))
    items = (await inbox(notify, REP_A1)).items
    read = await notify.stub.MarkInboxItemRead(
        M.MarkInboxItemReadRequest(item_id=items[0].item_id), metadata=auth(REP_A1)
    )
    assert read.item.read and read.unread_count.total == 2
    again = await notify.stub.MarkInboxItemRead(
        M.MarkInboxItemReadRequest(item_id=items[0].item_id), metadata=auth(REP_A1)
    )
    assert again.item.read_time == read.item.read_time  # idempotent
    unread = await notify.stub.MarkInboxItemUnread(
        M.MarkInboxItemUnreadRequest(item_id=items[0].item_id), metadata=auth(REP_A1)
    )
    assert unread.unread_count.total == 3
    # Watermark: only items up to the middle one.
    partial = await notify.stub.MarkAllInboxItemsRead(
        M.MarkAllInboxItemsReadRequest(up_to_item_id=items[1].item_id), metadata=auth(REP_A1)
    )
    assert partial.marked_count == 2 and partial.unread_count.total == 1
    rest = await notify.stub.MarkAllInboxItemsRead(M.MarkAllInboxItemsReadRequest(), metadata=auth(REP_A1))
    assert rest.marked_count == 1 and rest.unread_count.total == 0
    count = await notify.stub.GetInboxUnreadCount(M.GetInboxUnreadCountRequest(), metadata=auth(REP_A1))
    assert count.unread_count.total == 0


async def test_inbox_pages_newest_first(notify: NotifyStack) -> None:
    ids = [
        (await send(notify, reminder("rep-a1", lead=f"L{i}"))).notification.notification_id for i in range(5)
    ]
    seen: list[str] = []
    token = ""
    while True:
        page = await inbox(notify, REP_A1, page_size=2, page_token=token)
        assert page.total_size == 5
        seen += [i.notification_id for i in page.items]
        token = page.next_page_token
        if not token:
            break
    assert seen == list(reversed(ids))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await inbox(notify, REP_A1, page_token="garbage")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_english_preference_renders_english(notify: NotifyStack) -> None:
    from salesops.notify.v1 import preference_pb2

    await notify.stub.UpdatePreference(
        M.UpdatePreferenceRequest(preference=preference_pb2.Preference(user_id="me", locale="en")),
        metadata=auth(REP_A1),
    )
    await send(notify, reminder("rep-a1", "rep-a2"))
    assert (await inbox(notify, REP_A1)).items[0].title == "Lead due soon: ACME L1"
    assert (await inbox(notify, REP_A2)).items[0].title.startswith("线索即将超时")


async def test_digest_only_preference_files_quietly_and_inbox_filters(notify: NotifyStack) -> None:
    from salesops.notify.v1 import preference_pb2

    pref = preference_pb2.Preference(
        user_id="me",
        categories=[
            preference_pb2.CategoryPreference(category=N.NOTIFICATION_CATEGORY_FROZEN_DEAL, digest_only=True),
            # Ignored for critical categories: a breach still counts as unread.
            preference_pb2.CategoryPreference(category=N.NOTIFICATION_CATEGORY_SLA_BREACH, digest_only=True),
        ],
    )
    await notify.stub.UpdatePreference(M.UpdatePreferenceRequest(preference=pref), metadata=auth(REP_A1))
    frozen = N.Notification(
        category=N.NOTIFICATION_CATEGORY_FROZEN_DEAL,
        recipients=[N.Recipient(user_id="rep-a1")],
        template=N.TemplateContent(),
        subject=types_pb2.ResourceRef(service="pipeline", kind="deal", id="D1"),
    )
    frozen.template.variables.update({"deal_name": "Big deal"})
    await send(notify, frozen)
    breach = reminder("rep-a1", lead="L7")
    breach.category = N.NOTIFICATION_CATEGORY_SLA_BREACH
    breach.ack.ack_timeout.FromSeconds(3600)
    await send(notify, breach)
    page = await inbox(notify, REP_A1)
    assert page.total_size == 2 and page.unread_count.total == 1
    assert page.unread_count.by_category[0].category == N.NOTIFICATION_CATEGORY_SLA_BREACH
    acks = await inbox(notify, REP_A1, filter=M.InboxFilter(awaiting_ack_only=True))
    assert [i.category for i in acks.items] == [N.NOTIFICATION_CATEGORY_SLA_BREACH]
    urgent = await inbox(notify, REP_A1, filter=M.InboxFilter(min_priority=N.NOTIFICATION_PRIORITY_HIGH))
    assert [i.category for i in urgent.items] == [N.NOTIFICATION_CATEGORY_SLA_BREACH]
    about = await inbox(
        notify,
        REP_A1,
        filter=M.InboxFilter(subject=types_pb2.ResourceRef(service="pipeline", kind="deal", id="D1")),
    )
    assert [i.category for i in about.items] == [N.NOTIFICATION_CATEGORY_FROZEN_DEAL]
