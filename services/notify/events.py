"""The events notify publishes (through its outbox, in the transaction of the change)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from kit.events import emit
from salesops.notify.v1 import delivery_pb2, events_pb2, notification_pb2
from services.notify import store

SOURCE = "notify"


async def acknowledged(
    session: AsyncSession,
    n: notification_pb2.Notification,
    user_id: str,
    level: int,
    channel: int,
    at: datetime,
) -> None:
    event = events_pb2.NotificationAcknowledged(
        notification_id=n.notification_id,
        category=n.category,
        subject=n.subject,
        dedupe_key=n.dedupe_key,
        acknowledged_by=user_id,
        escalation_level=level,
        ack_channel=channel,  # type: ignore[arg-type]
    )
    event.ack_time.FromDatetime(at)
    await emit(
        session,
        "notify.NotificationAcknowledged",
        event,
        source=SOURCE,
        subject=n.notification_id,
        table=store.outbox,
    )


async def escalated(
    session: AsyncSession,
    n: notification_pb2.Notification,
    level: int,
    unacknowledged: Sequence[str],
    to: Sequence[str],
    next_time: datetime,
    at: datetime,
) -> None:
    event = events_pb2.EscalationTriggered(
        notification_id=n.notification_id,
        category=n.category,
        subject=n.subject,
        dedupe_key=n.dedupe_key,
        escalation_policy_id=n.escalation.escalation_policy_id or "default",
        from_level=level - 1,
        to_level=level,
        unacknowledged_user_ids=list(unacknowledged),
        escalated_to_user_ids=list(to),
    )
    event.next_escalation_time.FromDatetime(next_time)
    event.escalate_time.FromDatetime(at)
    await emit(
        session,
        "notify.EscalationTriggered",
        event,
        source=SOURCE,
        subject=n.notification_id,
        table=store.outbox,
    )


async def exhausted(
    session: AsyncSession, n: notification_pb2.Notification, level: int, notified: Sequence[str], at: datetime
) -> None:
    event = events_pb2.EscalationExhausted(
        notification_id=n.notification_id,
        category=n.category,
        subject=n.subject,
        dedupe_key=n.dedupe_key,
        escalation_policy_id=n.escalation.escalation_policy_id or "default",
        last_level=level,
        notified_user_ids=list(notified),
    )
    event.exhaust_time.FromDatetime(at)
    await emit(
        session,
        "notify.EscalationExhausted",
        event,
        source=SOURCE,
        subject=n.notification_id,
        table=store.outbox,
    )


async def delivery_failed(
    session: AsyncSession, n: notification_pb2.Notification, delivery: delivery_pb2.Delivery, at: datetime
) -> None:
    event = events_pb2.DeliveryFailed(
        delivery_id=delivery.delivery_id,
        notification_id=n.notification_id,
        category=n.category,
        priority=n.priority,
        subject=n.subject,
        dedupe_key=n.dedupe_key,
        recipient_user_id=delivery.recipient_user_id,
        channel=delivery.channel,
        channel_config_id=delivery.channel_config_id,
        error=delivery.last_error,
        attempt_count=delivery.attempt_count,
    )
    event.fail_time.FromDatetime(at)
    await emit(
        session,
        "notify.DeliveryFailed",
        event,
        source=SOURCE,
        subject=delivery.delivery_id,
        table=store.outbox,
    )
