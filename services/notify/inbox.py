"""The caller's inbox: pages, unread counts, read marks."""

from __future__ import annotations

from datetime import UTC, datetime

from kit.errors import NotFound
from kit.resources import Page, PageRequest, UnitOfWork
from salesops.notify.v1 import inbox_pb2, notify_service_pb2
from services.notify import convert
from services.notify.repositories.inbox import InboxRepository
from services.notify.store import InboxItemRow


async def unread_count(uow: UnitOfWork, user_id: str) -> inbox_pb2.UnreadCount:
    repo = InboxRepository(uow)
    counts = inbox_pb2.UnreadCount()
    for category, count in sorted(
        await repo.unread_by_category(user_id), key=lambda r: convert.category_enum(r[0])
    ):
        counts.total += count
        cat = inbox_pb2.CategoryCount(count=count)
        cat.category = convert.category_enum(category)  # type: ignore[assignment]
        counts.by_category.append(cat)
    counts.awaiting_ack = await repo.awaiting_ack(user_id)
    return counts


async def page(
    uow: UnitOfWork, user_id: str, f: notify_service_pb2.InboxFilter, categories: list[str], page: PageRequest
) -> Page[InboxItemRow]:
    """Newest first, with the number of matches."""
    return await InboxRepository(uow).page(user_id, f, categories, page)


async def get(uow: UnitOfWork, user_id: str, item_id: str) -> InboxItemRow:
    # Another user's (or tenant's) item is NOT_FOUND, never PERMISSION_DENIED: ids leak nothing.
    row = await InboxRepository(uow).owned(user_id, item_id)
    if row is None:
        raise NotFound("inbox_item", item_id)
    return row


async def set_read(uow: UnitOfWork, user_id: str, item_id: str, read: bool) -> InboxItemRow:
    row = await get(uow, user_id, item_id)
    if read and row.read_at is None:
        row.read_at = datetime.now(UTC)
    elif not read:
        row.read_at = None
    await uow.session.flush()
    return row


async def mark_all_read(uow: UnitOfWork, user_id: str, up_to: str, categories: list[str]) -> int:
    return await InboxRepository(uow).mark_all_read(user_id, up_to, categories)


async def since(uow: UnitOfWork, user_id: str, cursor: str) -> list[InboxItemRow]:
    return await InboxRepository(uow).since(user_id, cursor)
