"""A user's inbox items: every query is the owner's own rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update

from kit.resources import Page, PageRequest, Repository, Sort, query_key
from salesops.notify.v1 import inbox_pb2, notify_service_pb2
from services.notify.store import InboxItemRow

OPEN = inbox_pb2.INBOX_ITEM_STATE_OPEN


def _mine(user_id: str) -> ColumnElement[bool]:
    return InboxItemRow.user_id == user_id


class InboxRepository(Repository[InboxItemRow]):
    model = InboxItemRow
    resource = "notify.InboxItem"
    key = ("id",)

    async def page(
        self, user_id: str, f: notify_service_pb2.InboxFilter, categories: list[str], page: PageRequest
    ) -> Page[InboxItemRow]:
        """One user's items, newest first."""
        where: list[ColumnElement[bool]] = [_mine(user_id)]
        if f.unread_only:
            where += [InboxItemRow.read_at.is_(None), InboxItemRow.counts_unread.is_(True)]
        if f.awaiting_ack_only:
            where += [InboxItemRow.ack_required.is_(True), InboxItemRow.state == OPEN]
        if f.min_priority:
            where.append(InboxItemRow.priority >= f.min_priority)
        if f.states:
            where.append(InboxItemRow.state.in_(list(f.states)))
        if f.subject.id:
            where += [InboxItemRow.subject_id == f.subject.id, InboxItemRow.subject_kind == f.subject.kind]
        if categories:
            where.append(InboxItemRow.category.in_(categories))
        return await self.list(
            where, [Sort(InboxItemRow.id, descending=True)], page, query_key(user_id, f), count=True
        )

    async def owned(self, user_id: str, item_id: str) -> InboxItemRow | None:
        row = await self.session.scalar(
            select(InboxItemRow).where(InboxItemRow.id == item_id, _mine(user_id))
        )
        return row

    async def unread_by_category(self, user_id: str) -> list[tuple[str, int]]:
        rows = await self.session.execute(
            select(InboxItemRow.category, func.count())
            .where(_mine(user_id), InboxItemRow.read_at.is_(None), InboxItemRow.counts_unread.is_(True))
            .where(InboxItemRow.state == OPEN)
            .group_by(InboxItemRow.category)
        )
        return [(str(c), int(n)) for c, n in rows]

    async def awaiting_ack(self, user_id: str) -> int:
        found = await self.session.scalar(
            select(func.count()).where(
                _mine(user_id), InboxItemRow.ack_required.is_(True), InboxItemRow.state == OPEN
            )
        )
        return int(found or 0)

    async def mark_all_read(self, user_id: str, up_to: str, categories: list[str]) -> int:
        where = [_mine(user_id), InboxItemRow.read_at.is_(None)]
        if up_to:
            where.append(InboxItemRow.id <= up_to)
        if categories:
            where.append(InboxItemRow.category.in_(categories))
        result: Any = await self.session.execute(
            update(InboxItemRow)
            .where(*where)
            .values(read_at=datetime.now(UTC))
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)

    async def since(self, user_id: str, cursor: str, limit: int = 500) -> list[InboxItemRow]:
        """Items after `cursor`, oldest first: the replay of a resumed stream."""
        query = select(InboxItemRow).where(_mine(user_id), InboxItemRow.id > cursor).order_by(InboxItemRow.id)
        return list(await self.session.scalars(query.limit(limit)))

    async def open_of(self, notification_ids: list[str]) -> list[InboxItemRow]:
        """Every user's open items of these notifications."""
        query = select(InboxItemRow).where(
            InboxItemRow.notification_id.in_(notification_ids), InboxItemRow.state == OPEN
        )
        return list(await self.session.scalars(query))

    async def ack_no_longer_required(self, notification_id: str) -> None:
        await self.session.execute(
            update(InboxItemRow)
            .where(InboxItemRow.notification_id == notification_id)
            .values(ack_required=False)
            .execution_options(synchronize_session=False)
        )

    async def users_of(self, notification_id: str, level: int | None = None) -> list[str]:
        """Users with an item of the notification (at one escalation level, if given)."""
        query = select(InboxItemRow.user_id).where(InboxItemRow.notification_id == notification_id)
        if level is not None:
            query = query.where(InboxItemRow.escalation_level == level)
        return list(await self.session.scalars(query))

    async def recent(self, user_id: str, since: datetime) -> list[InboxItemRow]:
        """A user's items created, or due, since `since` (what a digest is made of)."""
        query = select(InboxItemRow).where(
            _mine(user_id), or_(InboxItemRow.created_at >= since, InboxItemRow.due_time >= since)
        )
        return list(await self.session.scalars(query))

    async def read_count(self, notification_id: str) -> int:
        """How many recipients have read their item of the notification."""
        found = await self.session.scalar(
            select(func.count()).where(
                InboxItemRow.notification_id == notification_id, InboxItemRow.read_at.is_not(None)
            )
        )
        return int(found or 0)
