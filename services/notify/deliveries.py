"""Delivery tracking: external deliveries run as Temporal workflows whose attempts are activities.

A delivery row is the truth; a DeliveryWorkflow (id `delivery-<id>`) owns it once
started: it waits out quiet hours with a durable timer, attempts the send as an
activity retried with exponential back-off, and marks permanent failures FAILED
(visible, re-sendable). The dispatcher loop starts workflows for due rows nobody
owns yet, so rows queued while Temporal was down are picked up later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError
from ulid import ULID

from kit.db import Database
from kit.errors import FailedPrecondition, NotFound
from kit.resources import Transactions, UnitOfWork
from salesops.notify.v1 import delivery_pb2
from salesops.notify.v1 import notification_pb2 as N
from services.notify import convert, escalation, events, store
from services.notify.channels.base import Message
from services.notify.domain import bot_cap, rate_limit
from services.notify.domain.templates import BUILT_INS, render
from services.notify.presenters import DELIVERY
from services.notify.repositories import on_session
from services.notify.repositories.deliveries import DeliveryRepository, due_everywhere
from services.notify.repositories.inbox import InboxRepository
from services.notify.repositories.notifications import NotificationRepository
from services.notify.store import DeliveryRow
from services.notify.workflows import DeliveryRef, DeliveryWorkflow

log = logging.getLogger("salesops.notify.deliveries")
D = delivery_pb2
PENDING = (D.DELIVERY_STATUS_QUEUED, D.DELIVERY_STATUS_HELD, D.DELIVERY_STATUS_RETRYING)
# Adapters that hand the idempotency key to the provider (SMS OutId, e-mail Message-ID, webhook
# header): an attempt left in doubt by a crash is sent again under the same key. The group bots
# have no such field: an in-doubt attempt there is not repeated but FAILED (IN_DOUBT), re-sendable.
KEYED_CHANNELS = frozenset({N.CHANNEL_SMS, N.CHANNEL_EMAIL, N.CHANNEL_WEBHOOK})
IN_DOUBT = "IN_DOUBT"


async def fill_counts(uow: UnitOfWork, n: Any) -> None:
    """Deliveries of `n` by status; in-app reads count as READ."""
    counts = n.delivery_counts
    for status, count in await DeliveryRepository(uow).count_by_status(n.notification_id):
        if status in PENDING:
            counts.pending += count
        elif status == D.DELIVERY_STATUS_SENT:
            counts.sent += count
        elif status == D.DELIVERY_STATUS_DELIVERED:
            counts.delivered += count
        elif status == D.DELIVERY_STATUS_READ:
            counts.read += count
        elif status == D.DELIVERY_STATUS_FAILED:
            counts.failed += count
        else:
            counts.suppressed += count
    counts.read += await InboxRepository(uow).read_count(n.notification_id)


async def resend(uow: UnitOfWork, notification_id: str, delivery_id: str, *, force: bool) -> DeliveryRow:
    """A new QUEUED delivery copying a FAILED one (or any, with force); the dispatcher sends it."""
    repo = DeliveryRepository(uow)
    row = await repo.of_notification(notification_id, delivery_id)
    if row is None:
        raise NotFound("delivery", delivery_id)
    if row.status != D.DELIVERY_STATUS_FAILED and not force:
        raise FailedPrecondition(f"delivery {delivery_id} is not FAILED (use force to resend anyway)")
    now = datetime.now(UTC)
    copy = DeliveryRow(
        id=str(ULID()),
        notification_id=row.notification_id,
        user_id=row.user_id,
        channel=row.channel,
        channel_config_id=row.channel_config_id,
        address=row.address,
        status=D.DELIVERY_STATUS_QUEUED,
        attempts=0,
        title=row.title,
        body=row.body,
        locale=row.locale,
        next_attempt_at=now,
        resent_from=row.id,
        queued_at=now,
        dispatched=False,
    )
    return await repo.add(copy)


async def summary_message(session: AsyncSession, row: DeliveryRow) -> Message:
    """The text of a summary delivery: how many were folded into it, by category, in the recipient's locale."""
    repo = DeliveryRepository(on_session(session))
    counts = await repo.folded_by_category(row.id)
    locale = row.locale if ("summary", row.locale) in BUILT_INS else "zh-CN"
    values = {"count": sum(counts.values()), "detail": rate_limit.summary_detail(counts, locale)}
    if bot_cap.is_bot(row.channel) and not row.user_id:
        # A group bot's digest lists the alerts it stands for, so the group misses none of them.
        titles, total = await repo.folded_titles(row.id, bot_cap.DIGEST_LINES)
        values = {"count": total, "detail": bot_cap.digest_lines(titles, total, locale)}
    rendered = render(BUILT_INS[("summary", locale)], values)
    row.title, row.body = rendered.title, rendered.body
    return Message(row.id, row.notification_id, "summary", row.address, rendered.title, rendered.body)


async def expired(uow: UnitOfWork, notification_id: str) -> bool:
    note = await NotificationRepository(uow).find(notification_id)
    if note is None:
        return False
    n = convert.notification(note)
    return n.HasField("expire_time") and n.expire_time.ToDatetime(tzinfo=UTC) <= datetime.now(UTC)


async def announce_failure(uow: UnitOfWork, delivery_id: str, at: datetime) -> None:
    """DeliveryFailed, in the transaction that marks the delivery FAILED."""
    row = await DeliveryRepository(uow).find(delivery_id)
    note = None if row is None else await NotificationRepository(uow).find(row.notification_id)
    if row is not None and note is not None:
        await events.delivery_failed(uow.session, convert.notification(note), DELIVERY.for_event(row), at)


# Receipts only move a delivery forward: SENT -> DELIVERED -> READ (or SENT -> FAILED, a bounce).
_FORWARD = {
    D.DELIVERY_STATUS_DELIVERED: (D.DELIVERY_STATUS_SENT,),
    D.DELIVERY_STATUS_READ: (D.DELIVERY_STATUS_SENT, D.DELIVERY_STATUS_DELIVERED),
    D.DELIVERY_STATUS_FAILED: (D.DELIVERY_STATUS_SENT,),
}


async def record_receipts(uow: UnitOfWork, receipts: Sequence[D.DeliveryReceipt]) -> tuple[int, list[str]]:
    repo = DeliveryRepository(uow)
    matched, unmatched = 0, []
    for receipt in receipts:
        row = await repo.by_provider_id(receipt.provider_message_id, receipt.channel)
        if row is None:
            unmatched.append(receipt.provider_message_id)
            continue
        matched += 1
        if row.status in _FORWARD.get(receipt.status, ()):
            row.status = receipt.status
            if receipt.status == D.DELIVERY_STATUS_FAILED:
                row.failed_at = datetime.now(UTC)
                row.last_error_code = receipt.error.code or "BOUNCED"
                row.last_error = receipt.error.message
    await uow.session.flush()
    return matched, unmatched


async def start_due(db: Database, client: object, task_queue: str, *, limit: int = 200) -> int:
    """Start a DeliveryWorkflow for every due delivery no workflow owns yet. Idempotent on workflow id."""
    assert isinstance(client, Client)
    started: dict[str, list[str]] = {}
    for delivery_id, tenant, held in await due_everywhere(db, PENDING, limit):
        ref = DeliveryRef(tenant, delivery_id, convert.aware(held).isoformat() if held else "")
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await client.start_workflow(
                DeliveryWorkflow.run, ref, id=f"delivery-{tenant}-{delivery_id}", task_queue=task_queue
            )
        started.setdefault(tenant, []).append(delivery_id)
    tx = Transactions(db, source="notify", outbox=store.outbox)
    for tenant, ids in started.items():  # ids are unique per tenant only
        await tx.run(tenant, lambda uow, ids=ids: DeliveryRepository(uow).mark_dispatched(ids))  # type: ignore[misc]
    return sum(len(ids) for ids in started.values())


class Dispatcher:
    """Worker-side loop: due deliveries and pending escalations -> Temporal workflows."""

    def __init__(self, db: Database, client: object, task_queue: str, interval: float = 1.0) -> None:
        self.db, self.client, self.task_queue, self.interval = db, client, task_queue, interval
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await start_due(self.db, self.client, self.task_queue)
                await escalation.start_pending(self.db, self.client, self.task_queue)
            except Exception:
                log.warning("dispatcher pass failed; retrying", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    async def stop(self) -> None:
        self._stop.set()
