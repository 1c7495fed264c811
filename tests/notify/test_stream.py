"""StreamInbox: a notification reaches an open stream within 1 s of Send; resume replays."""

from __future__ import annotations

import asyncio
import time

from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from tests.notify.conftest import REP_A1, REP_A2, NotifyStack, auth
from tests.notify.test_send_inbox import reminder, send


async def _next(call: object, timeout: float = 2.0) -> M.StreamInboxResponse:
    return await asyncio.wait_for(call.read(), timeout)  # type: ignore[attr-defined]


async def test_stream_receives_a_notification_within_one_second(notify: NotifyStack) -> None:
    call = notify.stub.StreamInbox(M.StreamInboxRequest(), metadata=auth(REP_A1))
    other = notify.stub.StreamInbox(M.StreamInboxRequest(), metadata=auth(REP_A2))
    first = await _next(call)
    assert first.HasField("unread_count") and first.unread_count.total == 0
    await _next(other)
    started = time.perf_counter()
    sent = await send(notify, reminder("rep-a1"))
    event = await _next(call, timeout=1.0)
    elapsed = time.perf_counter() - started
    assert event.HasField("item_added")
    assert event.item_added.notification_id == sent.notification.notification_id
    assert event.cursor == event.item_added.item_id
    assert elapsed < 1.0
    # Nothing for rep-a2: their stream only sees their own inbox.
    try:
        leaked = await asyncio.wait_for(other.read(), 0.3)
    except TimeoutError:
        leaked = None
    assert leaked is None
    # Reading the item elsewhere updates the open stream (item and badge).
    await notify.stub.MarkInboxItemRead(
        M.MarkInboxItemReadRequest(item_id=event.item_added.item_id), metadata=auth(REP_A1)
    )
    updated = await _next(call)
    assert updated.HasField("item_updated") and updated.item_updated.read
    badge = await _next(call)
    assert badge.unread_count.total == 0
    call.cancel()
    other.cancel()


async def test_resume_cursor_replays_what_was_missed(notify: NotifyStack) -> None:
    first = await send(notify, reminder("rep-a1", lead="L1"))
    page = await notify.stub.ListInboxItems(M.ListInboxItemsRequest(), metadata=auth(REP_A1))
    cursor = page.items[0].item_id
    missed = [await send(notify, reminder("rep-a1", lead=f"M{i}")) for i in range(3)]
    call = notify.stub.StreamInbox(M.StreamInboxRequest(resume_cursor=cursor), metadata=auth(REP_A1))
    replayed = [await _next(call) for _ in range(3)]
    assert [e.item_added.notification_id for e in replayed] == [
        m.notification.notification_id for m in missed
    ]
    assert first.notification.notification_id not in [e.item_added.notification_id for e in replayed]
    badge = await _next(call)
    assert badge.unread_count.total == 4
    call.cancel()


async def test_category_filter(notify: NotifyStack) -> None:
    call = notify.stub.StreamInbox(
        M.StreamInboxRequest(categories=[N.NOTIFICATION_CATEGORY_FROZEN_DEAL]), metadata=auth(REP_A1)
    )
    await _next(call)
    await send(notify, reminder("rep-a1"))
    frozen = N.Notification(
        category=N.NOTIFICATION_CATEGORY_FROZEN_DEAL,
        recipients=[N.Recipient(user_id="rep-a1")],
        template=N.TemplateContent(),
    )
    frozen.template.variables.update({"deal_name": "Big deal"})
    await send(notify, frozen)
    event = await _next(call)
    assert event.item_added.category == N.NOTIFICATION_CATEGORY_FROZEN_DEAL
    call.cancel()


async def test_presence_tracks_open_streams(notify: NotifyStack) -> None:
    from services.notify import live

    assert await live.online_users(notify.rt.redis, "demo") == set()
    first = notify.stub.StreamInbox(M.StreamInboxRequest(), metadata=auth(REP_A1))
    second = notify.stub.StreamInbox(M.StreamInboxRequest(), metadata=auth(REP_A1))  # a second device
    await _next(first)
    await _next(second)
    assert await live.online_users(notify.rt.redis, "demo") == {"rep-a1"}
    first.cancel()
    for _ in range(100):
        members = await notify.rt.redis.zcard(live.ONLINE + "demo")
        if members == 1:
            break
        await asyncio.sleep(0.02)
    assert await live.online_users(notify.rt.redis, "demo") == {"rep-a1"}  # the other device still watches
    sent = await send(notify, reminder("rep-a1"))
    event = await _next(second, timeout=1.0)
    assert event.item_added.notification_id == sent.notification.notification_id
    second.cancel()
    for _ in range(100):
        if not await live.online_users(notify.rt.redis, "demo"):
            break
        await asyncio.sleep(0.02)
    assert await live.online_users(notify.rt.redis, "demo") == set()
