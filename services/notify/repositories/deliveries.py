"""External deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select, update

from kit.db import Database
from kit.resources import Page, PageRequest, Repository, Sort, query_key
from salesops.notify.v1 import delivery_pb2, notify_service_pb2
from services.notify import convert
from services.notify.store import DeliveryRow, NotificationRow


class DeliveryRepository(Repository[DeliveryRow]):
    model = DeliveryRow
    resource = "notify.Delivery"
    key = ("id",)

    async def page(
        self, notification_id: str, f: notify_service_pb2.DeliveryFilter, page: PageRequest
    ) -> Page[DeliveryRow]:
        """Deliveries of one notification, or of all with "-"; newest first."""
        where: list[ColumnElement[bool]] = []
        if notification_id != "-":
            where.append(DeliveryRow.notification_id == notification_id)
        if f.statuses:
            where.append(DeliveryRow.status.in_(list(f.statuses)))
        if f.channels:
            where.append(DeliveryRow.channel.in_(list(f.channels)))
        if f.categories:
            categories = [convert.category_key(c) for c in f.categories]
            about = select(NotificationRow.id).where(NotificationRow.category.in_(categories))
            where.append(DeliveryRow.notification_id.in_(about))
        if f.recipient_user_id:
            where.append(DeliveryRow.user_id == f.recipient_user_id)
        if f.channel_config_id:
            where.append(DeliveryRow.channel_config_id == f.channel_config_id)
        if f.HasField("queue_time_start"):
            where.append(
                DeliveryRow.queued_at >= convert.request_time(f.queue_time_start, "filter.queue_time_start")
            )
        if f.HasField("queue_time_end"):
            where.append(
                DeliveryRow.queued_at < convert.request_time(f.queue_time_end, "filter.queue_time_end")
            )
        return await self.list(
            where, [Sort(DeliveryRow.id, descending=True)], page, query_key(notification_id, f), count=True
        )

    async def set_status_where_pending(
        self, notification_ids: Sequence[str], pending: Sequence[int], status: int
    ) -> None:
        await self.session.execute(
            update(DeliveryRow)
            .where(
                DeliveryRow.notification_id.in_(list(notification_ids)), DeliveryRow.status.in_(list(pending))
            )
            .values(status=status)
            .execution_options(synchronize_session=False)
        )

    async def set_outcome(
        self, delivery_id: str, values: dict[str, Any], *, if_pending: Sequence[int] = ()
    ) -> bool:
        """Write an attempt's outcome; with `if_pending`, only while the delivery is still pending."""
        stmt = update(DeliveryRow).where(DeliveryRow.id == delivery_id)
        if if_pending:
            stmt = stmt.where(DeliveryRow.status.in_(list(if_pending)))
        result: Any = await self.session.execute(
            stmt.values(**values).execution_options(synchronize_session=False)
        )
        return int(result.rowcount) == 1

    async def folded_by_category(self, summary_id: str) -> dict[str, int]:
        """How many deliveries were folded into a summary delivery, by notification category."""
        rows = await self.session.execute(
            select(NotificationRow.category, func.count())
            .join(DeliveryRow, DeliveryRow.notification_id == NotificationRow.id)
            .where(DeliveryRow.folded_into == summary_id)
            .group_by(NotificationRow.category)
        )
        return {str(category): int(n) for category, n in rows.all()}

    async def folded_titles(self, summary_id: str, limit: int) -> tuple[list[str], int]:
        """The first `limit` titles folded into a summary (oldest first) and how many there are."""
        where = DeliveryRow.folded_into == summary_id
        titles = await self.session.scalars(
            select(DeliveryRow.title)
            .where(where)
            .order_by(DeliveryRow.queued_at, DeliveryRow.id)
            .limit(limit)
        )
        total = await self.session.scalar(select(func.count()).select_from(DeliveryRow).where(where))
        return list(titles), int(total or 0)

    async def close_bot_digest(self, digest_id: str) -> None:
        """A bot digest about to be sent takes no more folds (waits for a fold holding it to commit)."""
        await self.session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id == digest_id, DeliveryRow.status == delivery_pb2.DELIVERY_STATUS_HELD)
            .values(status=delivery_pb2.DELIVERY_STATUS_QUEUED)
            .execution_options(synchronize_session=False)
        )

    async def mark_dispatched(self, delivery_ids: Sequence[str]) -> None:
        await self.session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id.in_(list(delivery_ids)))
            .values(dispatched=True)
            .execution_options(synchronize_session=False)
        )

    async def count_by_status(self, notification_id: str) -> list[tuple[int, int]]:
        """(status, count) of a notification's deliveries, summaries left out."""
        rows = await self.session.execute(
            select(DeliveryRow.status, func.count())
            .where(DeliveryRow.notification_id == notification_id, DeliveryRow.is_summary.is_(False))
            .group_by(DeliveryRow.status)
        )
        return [(int(s), int(c)) for s, c in rows.all()]

    async def of_notification(self, notification_id: str, delivery_id: str) -> DeliveryRow | None:
        """The delivery, if it belongs to the notification ("-": to any)."""
        row = await self.find(delivery_id)
        if row is None or (notification_id != "-" and row.notification_id != notification_id):
            return None
        return row

    async def by_provider_id(self, provider_message_id: str, channel: int) -> DeliveryRow | None:
        row = await self.session.scalar(
            select(DeliveryRow).where(
                DeliveryRow.provider_message_id == provider_message_id, DeliveryRow.channel == channel
            )
        )
        return row


async def due_everywhere(db: Database, pending: Sequence[int], limit: int) -> list[tuple[str, str, Any]]:
    """(delivery id, tenant, hold until) of due deliveries no workflow owns yet, in every tenant."""
    async with db.system_session() as s:
        rows = await s.execute(
            select(DeliveryRow.id, DeliveryRow.tenant_id, DeliveryRow.hold_until)
            .where(DeliveryRow.dispatched.is_(False), DeliveryRow.status.in_(list(pending)))
            .order_by(DeliveryRow.id)
            .limit(limit)
        )
        return [(i, t, h) for i, t, h in rows]
