"""Notification use cases beside sending: read, list, cancel."""

from __future__ import annotations

from kit.auth import Principal
from kit.errors import NotFound
from kit.resources import Page, PageRequest, UnitOfWork
from salesops.notify.v1 import notification_pb2, notify_service_pb2
from services.notify import cancelling, convert, deliveries
from services.notify.repositories.notifications import NotificationRepository
from services.notify.store import InboxItemRow, NotificationRow


async def get(uow: UnitOfWork, viewer: Principal, notification_id: str) -> notification_pb2.Notification:
    """With delivery counts. Recipients (original or reached by escalation) may read it;
    to anyone else it does not exist."""
    repo = NotificationRepository(uow)
    row = await repo.get(notification_id)
    if not (viewer.is_admin or viewer.is_service) and not await repo.addressed_to(row.id, viewer.user_id):
        raise NotFound("notification", notification_id)
    n = convert.notification(row)
    await deliveries.fill_counts(uow, n)
    return n


async def listing(
    uow: UnitOfWork, f: notify_service_pb2.NotificationFilter, page: PageRequest
) -> Page[NotificationRow]:
    return await NotificationRepository(uow).page(f, page)


async def cancel(
    uow: UnitOfWork, notification_id: str, reason: str
) -> tuple[notification_pb2.Notification, list[InboxItemRow]]:
    row = await NotificationRepository(uow).get(notification_id)
    items = await cancelling.cancel(uow, [row], reason)
    return convert.notification(row), items


async def cancel_matching(
    uow: UnitOfWork, request: notify_service_pb2.CancelMatchingNotificationsRequest
) -> tuple[list[str], list[InboxItemRow]]:
    rows = await cancelling.matching(
        uow,
        dedupe_key=request.dedupe_key,
        subject_service=request.subject.service,
        subject_kind=request.subject.kind,
        subject_id=request.subject.id,
        categories=[convert.category_key(c) for c in request.categories],
    )
    items = await cancelling.cancel(uow, rows, request.reason)
    return [r.id for r in rows], items
