"""Notifications and the inbox items they were filed as."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, insert, select, update

from kit.db import Database
from kit.resources import Page, PageRequest, Repository, Sort, query_key
from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2
from services.notify import convert
from services.notify.store import InboxItemRow, NotificationRow

NOTIFICATIONS: Table = NotificationRow.__table__  # type: ignore[assignment]


class NotificationRepository(Repository[NotificationRow]):
    model = NotificationRow
    resource = "notify.Notification"
    key = ("id",)

    async def insert(self, row: dict[str, Any]) -> None:
        """A new notification (its column values, tenant included), written now: one Core INSERT on the
        table, without an ORM object's unit of work (the columns not given take their defaults)."""
        await self.session.execute(insert(NOTIFICATIONS), row)

    async def addressed_to(self, notification_id: str, user_id: str) -> bool:
        """True when the user has an inbox item of it (an original recipient or reached by escalation)."""
        found = await self.session.scalar(
            select(InboxItemRow.id).where(
                InboxItemRow.notification_id == notification_id, InboxItemRow.user_id == user_id
            )
        )
        return found is not None

    async def page(
        self, f: notify_service_pb2.NotificationFilter, page: PageRequest
    ) -> Page[NotificationRow]:
        """Newest first (ULIDs sort by creation)."""
        where: list[ColumnElement[bool]] = []
        if f.categories:
            where.append(NotificationRow.category.in_([convert.category_key(c) for c in f.categories]))
        if f.states:
            where.append(NotificationRow.state.in_(list(f.states)))
        if f.escalation_states:
            where.append(NotificationRow.escalation_state.in_(list(f.escalation_states)))
        if f.dedupe_key:
            where.append(NotificationRow.dedupe_key == f.dedupe_key)
        if f.source_service:
            where.append(NotificationRow.source_service == f.source_service)
        if f.HasField("create_time_start"):
            where.append(NotificationRow.created_at >= f.create_time_start.ToDatetime(tzinfo=UTC))
        if f.HasField("create_time_end"):
            where.append(NotificationRow.created_at < f.create_time_end.ToDatetime(tzinfo=UTC))
        return await self.list(
            where, [Sort(NotificationRow.id, descending=True)], page, query_key(f), count=True
        )

    async def open_matching(
        self,
        open_states: Sequence[int],
        *,
        dedupe_key: str,
        subject_service: str,
        subject_kind: str,
        subject_id: str,
        categories: Sequence[str],
    ) -> list[NotificationRow]:
        """Open notifications with the dedupe key, or about the subject (optionally of some categories)."""
        query = select(NotificationRow).where(NotificationRow.state.in_(list(open_states)))
        if dedupe_key:
            query = query.where(NotificationRow.dedupe_key == dedupe_key)
        if categories:
            query = query.where(NotificationRow.category.in_(list(categories)))
        if subject_id:
            # Inbox items carry the subject as columns; notifications keep it inside the payload.
            about = select(InboxItemRow.notification_id).where(
                InboxItemRow.subject_id == subject_id, InboxItemRow.subject_kind == subject_kind
            )
            if subject_service:
                about = about.where(InboxItemRow.subject_service == subject_service)
            query = query.where(NotificationRow.id.in_(about))
        return list(await self.session.scalars(query.limit(1000)))

    async def acknowledge_if_awaiting(self, notification_id: str, user_id: str, at: datetime) -> bool:
        """Compare-and-set: True for the one acknowledgement that ends the wait."""
        result: Any = await self.session.execute(
            update(NotificationRow)
            .where(
                NotificationRow.id == notification_id,
                NotificationRow.escalation_state == N.ESCALATION_STATE_AWAITING_ACK,
            )
            .values(escalation_state=N.ESCALATION_STATE_ACKNOWLEDGED, acknowledged_by=user_id, ack_at=at)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount) == 1

    async def locked(self, notification_id: str) -> NotificationRow | None:
        """The row, locked for the rest of the transaction (one escalation step at a time)."""
        row = await self.session.scalar(
            select(NotificationRow).where(NotificationRow.id == notification_id).with_for_update()
        )
        return row

    async def exhaust_if_awaiting(self, notification_id: str) -> bool:
        result: Any = await self.session.execute(
            update(NotificationRow)
            .where(
                NotificationRow.id == notification_id,
                NotificationRow.escalation_state == N.ESCALATION_STATE_AWAITING_ACK,
            )
            .values(escalation_state=N.ESCALATION_STATE_EXHAUSTED)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount) == 1


async def awaiting_unstarted_everywhere(db: Database, limit: int = 100) -> list[tuple[str, str]]:
    """(tenant, notification id) of notifications awaiting acknowledgement whose chain is not running yet."""
    async with db.system_session() as s:
        rows = await s.execute(
            select(NotificationRow.tenant_id, NotificationRow.id)
            .where(
                NotificationRow.escalation_state == N.ESCALATION_STATE_AWAITING_ACK,
                NotificationRow.escalation_started.is_(False),
            )
            .limit(limit)
        )
        return [(t, i) for t, i in rows]
