"""The writes and reads of a send: dedupe keys, batched inbox and delivery inserts, rate-limit windows."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from kit.resources import Repository
from salesops.notify.v1 import delivery_pb2
from services.notify import convert
from services.notify.store import ChannelConfigRow, DedupeRow, DeliveryRow, InboxItemRow

BATCH = 1000
ITEMS: Table = InboxItemRow.__table__  # type: ignore[assignment]
DELIVERIES: Table = DeliveryRow.__table__  # type: ignore[assignment]
DEDUPE: Table = DedupeRow.__table__  # type: ignore[assignment]
# Built once, its values parameters of each execution: a statement built per send (an ORM INSERT with
# .values()) paid its construction, the ORM's bulk step and its cache key every time.
_CLAIM = {
    "sqlite": sqlite_insert(DEDUPE).on_conflict_do_nothing(),
    "postgresql": pg_insert(DEDUPE).on_conflict_do_nothing(),
}


class DedupeRepository(Repository[DedupeRow]):
    model = DedupeRow
    resource = "notify.DedupeKey"
    key = ("dedupe_key",)

    async def claim(
        self, key: str, notification_id: str, now: datetime, window: timedelta
    ) -> tuple[bool, str | None]:
        """One compare-and-set round: (settled, live holder). (True, None): claimed for
        `notification_id`; (True, id): another notification holds it; (False, None): lost a race.

        On SQLite and PostgreSQL a new key is one INSERT .. ON CONFLICT DO NOTHING (a burst of
        reminders: one statement each instead of a read, a savepoint, the insert and its release)."""
        claim = _CLAIM.get(self.session.get_bind().dialect.name)
        if claim is not None:
            values = {
                "tenant_id": self.session.info["tenant"],
                "dedupe_key": key,
                "notification_id": notification_id,
                "expires_at": now + window,
            }
            result: Any = await self.session.execute(claim, values)
            if result.rowcount == 1:
                return True, None
        row = await self.find(key)
        if row is None:
            try:
                async with self.session.begin_nested():
                    self.session.add(
                        DedupeRow(dedupe_key=key, notification_id=notification_id, expires_at=now + window)
                    )
                return True, None
            except IntegrityError:
                return False, None  # a concurrent send claimed it first
        if convert.aware(row.expires_at) > now:
            return True, row.notification_id
        # Expired: take it over with compare-and-set on the old expiry.
        result = await self.session.execute(
            update(DedupeRow)
            .where(DedupeRow.id == row.id, DedupeRow.expires_at == row.expires_at)
            .values(notification_id=notification_id, expires_at=now + window)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1, None


class FanOutRepository(Repository[DeliveryRow]):
    """Batched Core inserts (one INSERT per 1,000 rows, not one per ORM object) and the windows they check."""

    model = DeliveryRow
    resource = "notify.Delivery"
    key = ("id",)

    # On the tables, not the mapped classes: an ORM bulk INSERT of dicts runs SQLAlchemy's bulk
    # persistence (each dict's keys matched to the mapper's attributes) for the same statement. The
    # rows name every column by its column name and carry their tenant.
    async def insert_items(self, items: list[dict[str, Any]]) -> None:
        for start in range(0, len(items), BATCH):
            await self.session.execute(insert(ITEMS), items[start : start + BATCH])

    async def insert_deliveries(self, rows: list[dict[str, Any]]) -> None:
        for start in range(0, len(rows), BATCH):
            await self.session.execute(insert(DELIVERIES), rows[start : start + BATCH])

    async def recent(self, user_id: str, channel: int, since: datetime) -> tuple[int, datetime | None]:
        """How many deliveries a recipient got on a channel since `since` (folded ones aside), and the oldest."""
        count, oldest = (
            await self.session.execute(
                select(func.count(), func.min(DeliveryRow.queued_at)).where(
                    DeliveryRow.user_id == user_id,
                    DeliveryRow.channel == channel,
                    DeliveryRow.queued_at > since,
                    DeliveryRow.is_summary.is_(False),
                    DeliveryRow.status != delivery_pb2.DELIVERY_STATUS_SUPPRESSED,
                )
            )
        ).one()
        return int(count), oldest

    async def held_summary(self, user_id: str, channel: int) -> str | None:
        found = await self.session.scalar(
            select(DeliveryRow.id).where(
                DeliveryRow.user_id == user_id,
                DeliveryRow.channel == channel,
                DeliveryRow.is_summary.is_(True),
                DeliveryRow.status == delivery_pb2.DELIVERY_STATUS_HELD,
            )
        )
        return None if found is None else str(found)

    async def enabled_configs(self) -> dict[int, str]:
        """Channel -> the tenant's enabled config for it (the oldest when several)."""
        rows = await self.session.execute(
            select(ChannelConfigRow.channel, ChannelConfigRow.id)
            .where(ChannelConfigRow.enabled.is_(True))
            .order_by(ChannelConfigRow.id.desc())
        )
        return {channel: cid for channel, cid in rows}

    async def bot_planned(self, config_id: str, since: datetime) -> int:
        """Posts of a group bot planned after `since` (sent, pending or failed; digests included).

        Folded, cancelled and suppressed ones never post. Served by the (status, next_attempt_at) index.
        """
        posting = [
            s
            for s in delivery_pb2.DeliveryStatus.values()
            if s
            not in (
                delivery_pb2.DELIVERY_STATUS_UNSPECIFIED,
                delivery_pb2.DELIVERY_STATUS_SUPPRESSED,
                delivery_pb2.DELIVERY_STATUS_CANCELLED,
            )
        ]
        found = await self.session.scalar(
            select(func.count()).where(
                DeliveryRow.status.in_(posting),
                DeliveryRow.next_attempt_at > since,
                DeliveryRow.channel_config_id == config_id,
            )
        )
        return int(found or 0)

    async def pending_bot_digest(self, config_id: str) -> str | None:
        found = await self.session.scalar(
            select(DeliveryRow.id).where(
                DeliveryRow.channel_config_id == config_id,
                DeliveryRow.user_id == "",
                DeliveryRow.is_summary.is_(True),
                DeliveryRow.status == delivery_pb2.DELIVERY_STATUS_HELD,
            )
        )
        return None if found is None else str(found)

    async def hold_bot_digest(self, digest_id: str) -> bool:
        """Lock a bot digest still HELD (a no-op write); False once its send has begun."""
        result: Any = await self.session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id == digest_id, DeliveryRow.status == delivery_pb2.DELIVERY_STATUS_HELD)
            .values(hold_until=DeliveryRow.hold_until)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount) == 1

    async def lock_bot(self, config_id: str) -> None:
        """Serialise a group bot's send attempts on its configuration row (PostgreSQL row lock)."""
        await self.session.execute(
            select(ChannelConfigRow.id).where(ChannelConfigRow.id == config_id).with_for_update()
        )

    async def bot_posted(self, config_id: str, since: datetime, but: str) -> tuple[int, datetime | None]:
        """Posts a group bot made (or is making) after `since`, `but` aside, and the oldest one's time."""
        posted = (
            delivery_pb2.DELIVERY_STATUS_SENT,
            delivery_pb2.DELIVERY_STATUS_DELIVERED,
            delivery_pb2.DELIVERY_STATUS_READ,
        )
        count, oldest = (
            await self.session.execute(
                select(func.count(), func.min(DeliveryRow.next_attempt_at)).where(
                    DeliveryRow.channel_config_id == config_id,
                    DeliveryRow.next_attempt_at > since,
                    DeliveryRow.id != but,
                    or_(DeliveryRow.status.in_(posted), DeliveryRow.inflight_key != ""),
                )
            )
        ).one()
        return int(count), None if oldest is None else convert.aware(oldest)
