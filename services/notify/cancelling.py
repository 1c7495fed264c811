"""Cancelling notifications: pending deliveries stop, escalation stops, inbox items become RESOLVED."""

from __future__ import annotations

from collections.abc import Sequence

from kit.resources import UnitOfWork
from salesops.notify.v1 import delivery_pb2, inbox_pb2, notification_pb2
from services.notify import convert
from services.notify.deliveries import PENDING
from services.notify.repositories.deliveries import DeliveryRepository
from services.notify.repositories.inbox import InboxRepository
from services.notify.repositories.notifications import NotificationRepository
from services.notify.store import InboxItemRow, NotificationRow

N = notification_pb2
OPEN_STATES = (N.NOTIFICATION_STATE_ACTIVE, N.NOTIFICATION_STATE_DISPATCHED)


async def cancel(uow: UnitOfWork, rows: Sequence[NotificationRow], reason: str) -> list[InboxItemRow]:
    """Cancel `rows` (idempotent); returns the inbox items that changed, to tell open streams."""
    live = [r for r in rows if r.state in OPEN_STATES]
    if not live:
        return []
    ids = [r.id for r in live]
    for row in live:
        n = convert.notification(row)
        n.cancel_reason = reason[:500]
        row.payload = n.SerializeToString()
        row.state = N.NOTIFICATION_STATE_CANCELLED
        if row.escalation_state == N.ESCALATION_STATE_AWAITING_ACK:
            # The escalation workflow re-checks this before every step, so it stops by itself.
            row.escalation_state = N.ESCALATION_STATE_STOPPED
    await DeliveryRepository(uow).set_status_where_pending(
        ids, PENDING, delivery_pb2.DELIVERY_STATUS_CANCELLED
    )
    items = await InboxRepository(uow).open_of(ids)
    for item in items:
        item.state = inbox_pb2.INBOX_ITEM_STATE_RESOLVED
        item.ack_required = False
    await uow.session.flush()
    return items


async def matching(
    uow: UnitOfWork,
    *,
    dedupe_key: str,
    subject_service: str,
    subject_kind: str,
    subject_id: str,
    categories: Sequence[str],
) -> list[NotificationRow]:
    """Open notifications with the dedupe key, or about the subject (optionally of some categories)."""
    return await NotificationRepository(uow).open_matching(
        OPEN_STATES,
        dedupe_key=dedupe_key,
        subject_service=subject_service,
        subject_kind=subject_kind,
        subject_id=subject_id,
        categories=categories,
    )
