"""The caller's inbox: pages, unread counts, read marks. Every query is the owner's own rows."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.errors import NotFound
from kit.resources import Page, PageRequest, UnitOfWork
from salesops.notify.v1 import inbox_pb2, notify_service_pb2
from services.notify import convert
from services.notify.repositories.notifications import InboxRepository
from services.notify.store import InboxItemRow

OPEN = inbox_pb2.INBOX_ITEM_STATE_OPEN
inbox_filter = notify_service_pb2.InboxFilter


def _mine(user_id: str):  # type: ignore[no-untyped-def]
    return InboxItemRow.user_id == user_id


async def unread_count(session: AsyncSession, user_id: str) -> inbox_pb2.UnreadCount:
    rows = await session.execute(
        select(InboxItemRow.category, func.count())
        .where(_mine(user_id), InboxItemRow.read_at.is_(None), InboxItemRow.counts_unread.is_(True))
        .where(InboxItemRow.state == OPEN)
        .group_by(InboxItemRow.category)
    )
    counts = inbox_pb2.UnreadCount()
    for category, count in sorted(rows, key=lambda r: convert.category_enum(r[0])):
        counts.total += count
        cat = inbox_pb2.CategoryCount(count=count)
        cat.category = convert.category_enum(category)  # type: ignore[assignment]
        counts.by_category.append(cat)
    counts.awaiting_ack = (
        await session.scalar(
            select(func.count()).where(
                _mine(user_id), InboxItemRow.ack_required.is_(True), InboxItemRow.state == OPEN
            )
        )
        or 0
    )
    return counts


async def page(
    uow: UnitOfWork, user_id: str, f: inbox_filter, categories: list[str], page: PageRequest
) -> Page[InboxItemRow]:
    """Newest first, with the number of matches."""
    return await InboxRepository(uow).page(user_id, f, categories, page)


async def get(session: AsyncSession, user_id: str, item_id: str) -> InboxItemRow:
    # Another user's (or tenant's) item is NOT_FOUND, never PERMISSION_DENIED: ids leak nothing.
    row = await session.scalar(select(InboxItemRow).where(InboxItemRow.id == item_id, _mine(user_id)))
    if row is None:
        raise NotFound("inbox_item", item_id)
    return row


async def set_read(session: AsyncSession, user_id: str, item_id: str, read: bool) -> InboxItemRow:
    row = await get(session, user_id, item_id)
    if read and row.read_at is None:
        row.read_at = datetime.now(UTC)
    elif not read:
        row.read_at = None
    await session.flush()
    return row


async def mark_all_read(session: AsyncSession, user_id: str, up_to: str, categories: list[str]) -> int:
    where = [_mine(user_id), InboxItemRow.read_at.is_(None)]
    if up_to:
        where.append(InboxItemRow.id <= up_to)
    if categories:
        where.append(InboxItemRow.category.in_(categories))
    result = await session.execute(
        update(InboxItemRow)
        .where(*where)
        .values(read_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def since(session: AsyncSession, user_id: str, cursor: str, limit: int = 500) -> list[InboxItemRow]:
    """Items after `cursor`, oldest first: the replay of a resumed stream."""
    query = (
        select(InboxItemRow)
        .where(_mine(user_id), InboxItemRow.id > cursor)
        .order_by(InboxItemRow.id)
        .limit(limit)
    )
    return list(await session.scalars(query))
