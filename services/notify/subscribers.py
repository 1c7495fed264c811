"""Subscriber directory use cases (directory sync and admin edits)."""

from __future__ import annotations

from datetime import UTC, datetime

from kit.errors import InvalidArgument, NotFound
from kit.resources import Page, PageRequest, UnitOfWork
from salesops.notify.v1 import notify_service_pb2, subscriber_pb2
from services.notify import convert
from services.notify.repositories.subscribers import SubscriberRepository
from services.notify.store import SubscriberRow

BATCH_MAX = 1_000


def _fill(row: SubscriberRow, sub: subscriber_pb2.Subscriber) -> None:
    row.display_name = sub.display_name
    row.org_unit_path = sub.org_unit_path.strip("/")
    row.roles = ",".join(convert.role_name(r) for r in sub.roles)
    row.active = sub.active
    row.phone, row.email = sub.phone, sub.email
    row.wecom_user_id, row.dingtalk_user_id = sub.wecom_user_id, sub.dingtalk_user_id
    row.updated_at = datetime.now(UTC)


async def _save(
    uow: UnitOfWork, sub: subscriber_pb2.Subscriber, *, etag: str, create: bool
) -> tuple[SubscriberRow, bool]:
    repo = SubscriberRepository(uow)
    row = await repo.find(sub.user_id)
    if row is None:
        if not create:
            raise NotFound("subscriber", sub.user_id)
        row = SubscriberRow(user_id=sub.user_id, version=1)
        _fill(row, sub)
        return await repo.add(row), True
    _fill(row, sub)
    return await repo.update_if_etag(row, etag), False


async def upsert_many(uow: UnitOfWork, subs: list[subscriber_pb2.Subscriber]) -> list[tuple[str, bool]]:
    """(user id, created) per subscriber; any invalid one fails the batch."""
    if len(subs) > BATCH_MAX:
        raise InvalidArgument.field("subscribers", f"at most {BATCH_MAX} per batch")
    out = []
    for sub in subs:
        if not sub.user_id or not sub.display_name:
            raise InvalidArgument.field("subscribers.user_id", "user_id and display_name are required")
        _, created = await _save(uow, sub, etag="", create=True)
        out.append((sub.user_id, created))
    return out


async def update(uow: UnitOfWork, sub: subscriber_pb2.Subscriber, *, allow_missing: bool) -> SubscriberRow:
    if not sub.user_id or not sub.display_name:
        raise InvalidArgument.field("subscriber", "user_id and display_name are required")
    row, _ = await _save(uow, sub, etag=sub.etag, create=allow_missing)
    return row


async def get(uow: UnitOfWork, user_id: str) -> SubscriberRow:
    return await SubscriberRepository(uow).get(user_id)


async def delete(uow: UnitOfWork, user_id: str) -> None:
    repo = SubscriberRepository(uow)
    await repo.delete_if_etag(await repo.get(user_id), "")


async def listing(
    uow: UnitOfWork, request: notify_service_pb2.ListSubscribersRequest, page: PageRequest
) -> Page[SubscriberRow]:
    role = convert.role_name(request.role) if request.role else ""
    return await SubscriberRepository(uow).page(request, role, page)
