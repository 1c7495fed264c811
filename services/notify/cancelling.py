"""Cancelling notifications: pending deliveries stop, escalation stops, inbox items become RESOLVED."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from salesops.notify.v1 import delivery_pb2, inbox_pb2, notification_pb2
from services.notify.deliveries import PENDING
from services.notify.sending import stored
from services.notify.store import DeliveryRow, InboxItemRow, NotificationRow

N = notification_pb2
OPEN_STATES = (N.NOTIFICATION_STATE_ACTIVE, N.NOTIFICATION_STATE_DISPATCHED)


async def cancel(session: AsyncSession, rows: Sequence[NotificationRow], reason: str) -> list[InboxItemRow]:
    """Cancel `rows` (idempotent); returns the inbox items that changed, to tell open streams."""
    live = [r for r in rows if r.state in OPEN_STATES]
    if not live:
        return []
    ids = [r.id for r in live]
    for row in live:
        n = stored(row)
        n.cancel_reason = reason[:500]
        row.payload = n.SerializeToString()
        row.state = N.NOTIFICATION_STATE_CANCELLED
        if row.escalation_state == N.ESCALATION_STATE_AWAITING_ACK:
            # The escalation workflow re-checks this before every step, so it stops by itself.
            row.escalation_state = N.ESCALATION_STATE_STOPPED
    await session.execute(
        update(DeliveryRow)
        .where(DeliveryRow.notification_id.in_(ids), DeliveryRow.status.in_(PENDING))
        .values(status=delivery_pb2.DELIVERY_STATUS_CANCELLED)
        .execution_options(synchronize_session=False)
    )
    items = list(
        await session.scalars(
            select(InboxItemRow).where(
                InboxItemRow.notification_id.in_(ids), InboxItemRow.state == inbox_pb2.INBOX_ITEM_STATE_OPEN
            )
        )
    )
    for item in items:
        item.state = inbox_pb2.INBOX_ITEM_STATE_RESOLVED
        item.ack_required = False
    await session.flush()
    return items


async def matching(
    session: AsyncSession,
    *,
    dedupe_key: str,
    subject_service: str,
    subject_kind: str,
    subject_id: str,
    categories: Sequence[str],
) -> list[NotificationRow]:
    """Open notifications with the dedupe key, or about the subject (optionally of some categories)."""
    query = select(NotificationRow).where(NotificationRow.state.in_(OPEN_STATES))
    if dedupe_key:
        query = query.where(NotificationRow.dedupe_key == dedupe_key)
    if categories:
        query = query.where(NotificationRow.category.in_(categories))
    if subject_id:
        # Inbox items carry the subject as columns; notifications keep it inside the payload.
        about = select(InboxItemRow.notification_id).where(
            InboxItemRow.subject_id == subject_id, InboxItemRow.subject_kind == subject_kind
        )
        if subject_service:
            about = about.where(InboxItemRow.subject_service == subject_service)
        query = query.where(NotificationRow.id.in_(about))
    return list(await session.scalars(query.limit(1000)))
