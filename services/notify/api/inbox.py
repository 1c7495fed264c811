"""The caller's inbox and its live stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from kit.auth import Principal
from kit.grpc import context as call
from kit.resources import PageRequest, UnitOfWork
from services.notify import (
    convert,
    inbox,
    live,
)
from services.notify.api.base import ApiBase, Ctx, M
from services.notify.presenters import INBOX_ITEM

HEARTBEAT_SECONDS = 20.0


class InboxApi(ApiBase):
    async def ListInboxItems(
        self, request: M.ListInboxItemsRequest, context: Ctx
    ) -> M.ListInboxItemsResponse:
        p = call.principal()
        cats = [convert.category_key(c) for c in request.filter.categories]
        page = PageRequest.parse(request.page_size, request.page_token, default=50, maximum=200)
        async with self.tx.read(p.tenant) as uow:
            found = await inbox.page(uow, p.user_id, request.filter, cats, page)
            counts = await inbox.unread_count(uow, p.user_id)
        return M.ListInboxItemsResponse(
            items=[INBOX_ITEM.present(p, r) for r in found.items],
            next_page_token=found.next_page_token,
            total_size=found.total_size or 0,
            unread_count=counts,
        )

    async def GetInboxItem(self, request: M.GetInboxItemRequest, context: Ctx) -> M.GetInboxItemResponse:
        p = call.principal()
        async with self.tx.read(p.tenant) as uow:
            row = await inbox.get(uow, p.user_id, request.item_id)
        return M.GetInboxItemResponse(item=INBOX_ITEM.present(p, row))

    async def GetInboxUnreadCount(
        self, request: M.GetInboxUnreadCountRequest, context: Ctx
    ) -> M.GetInboxUnreadCountResponse:
        p = call.principal()
        async with self.tx.read(p.tenant) as uow:
            return M.GetInboxUnreadCountResponse(unread_count=await inbox.unread_count(uow, p.user_id))

    async def _mark(self, item_id: str, read: bool) -> tuple[Any, Any]:
        p = call.principal()

        async def work(uow: UnitOfWork) -> tuple[Any, Any]:
            row = await inbox.set_read(uow, p.user_id, item_id, read)
            item = INBOX_ITEM.present(p, row)
            counts = await inbox.unread_count(uow, p.user_id)
            events = [
                M.StreamInboxResponse(cursor=row.id, item_updated=item),
                M.StreamInboxResponse(unread_count=counts),
            ]
            uow.after_commit(lambda: self._tell(p, events))
            return item, counts

        return await self.tx.run(p.tenant, work)

    async def MarkInboxItemRead(
        self, request: M.MarkInboxItemReadRequest, context: Ctx
    ) -> M.MarkInboxItemReadResponse:
        item, counts = await self._mark(request.item_id, True)
        return M.MarkInboxItemReadResponse(item=item, unread_count=counts)

    async def MarkInboxItemUnread(
        self, request: M.MarkInboxItemUnreadRequest, context: Ctx
    ) -> M.MarkInboxItemUnreadResponse:
        item, counts = await self._mark(request.item_id, False)
        return M.MarkInboxItemUnreadResponse(item=item, unread_count=counts)

    async def MarkAllInboxItemsRead(
        self, request: M.MarkAllInboxItemsReadRequest, context: Ctx
    ) -> M.MarkAllInboxItemsReadResponse:
        p = call.principal()
        cats = [convert.category_key(c) for c in request.categories]

        async def work(uow: UnitOfWork) -> tuple[int, Any]:
            marked = await inbox.mark_all_read(uow, p.user_id, request.up_to_item_id, cats)
            counts = await inbox.unread_count(uow, p.user_id)
            uow.after_commit(lambda: self._tell(p, [M.StreamInboxResponse(unread_count=counts)]))
            return marked, counts

        marked, counts = await self.tx.run(p.tenant, work)
        return M.MarkAllInboxItemsReadResponse(marked_count=marked, unread_count=counts)

    async def _tell(self, p: Principal, events: list[M.StreamInboxResponse]) -> None:
        # The change is committed; other devices resync on their next call if this fails.
        with contextlib.suppress(Exception):
            await live.publish(self.rt.redis, [(p.tenant, p.user_id, e) for e in events])

    async def StreamInbox(
        self, request: M.StreamInboxRequest, context: Ctx
    ) -> AsyncIterator[M.StreamInboxResponse]:
        p = call.principal()
        wanted = {convert.category_key(c) for c in request.categories}
        # Subscribe first, then read the database: nothing committed in between is missed.
        async with self.hub.listen(p.tenant, p.user_id) as queue:
            async with self.tx.read(p.tenant) as uow:
                replay = (
                    await inbox.since(uow, p.user_id, request.resume_cursor) if request.resume_cursor else []
                )
                counts = await inbox.unread_count(uow, p.user_id)
            last = request.resume_cursor
            for row in replay:
                if not wanted or row.category in wanted:
                    yield M.StreamInboxResponse(cursor=row.id, item_added=INBOX_ITEM.present(p, row))
                last = row.id
            yield M.StreamInboxResponse(unread_count=counts)
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    beat = M.StreamInboxResponse()
                    beat.heartbeat.server_time.FromDatetime(datetime.now(UTC))
                    yield beat
                    continue
                event = M.StreamInboxResponse.FromString(data)
                if event.HasField("item_added"):
                    if event.cursor and last and event.cursor <= last:
                        continue  # already replayed
                    if wanted and convert.category_key(event.item_added.category) not in wanted:
                        continue
                yield event
