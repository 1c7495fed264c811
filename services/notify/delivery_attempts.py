"""One delivery attempt, recorded before it is sent (the use cases behind the delivery activities).

`begin` commits the attempt and its idempotency key (`<delivery id>:<attempt>`) before the
provider is called; a crash between the send and its outcome leaves the key in the row, so
the retry finds the attempt in doubt instead of blindly sending a second SMS: channels whose
provider takes the key get the same attempt again under the same key, the others are FAILED
(IN_DOUBT), visible and re-sendable.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from kit.resources import UnitOfWork
from salesops.notify.v1 import channel_config_pb2, delivery_pb2
from services.notify import bot_folding, deliveries
from services.notify.channels.base import Message, SendError
from services.notify.domain import bot_cap
from services.notify.repositories.configuration import ChannelConfigRepository
from services.notify.repositories.deliveries import DeliveryRepository
from services.notify.repositories.notifications import NotificationRepository
from services.notify.store import DeliveryRow

D = delivery_pb2


@dataclass(frozen=True)
class Attempt:
    """What to send, recorded: the channel, its configuration (None: disabled), the key."""

    channel: int
    config: channel_config_pb2.ChannelConfig | None
    message: Message
    key: str


async def begin(uow: UnitOfWork, delivery_id: str) -> Attempt | bot_folding.Busy | str:
    """The attempt to make, or why there is none ("skipped", "expired", "in_doubt", "folded"),
    or how long a group bot's digest must wait (Busy)."""
    now = datetime.now(UTC)
    row = await DeliveryRepository(uow).find(delivery_id)
    if row is None or row.status not in deliveries.PENDING:
        return "skipped"  # cancelled, or a previous attempt already succeeded
    if await deliveries.expired(uow, row.notification_id):
        # A reminder after its deadline is noise: expire_time drops what has not gone out yet.
        row.status = D.DELIVERY_STATUS_CANCELLED
        return "expired"
    in_doubt = row.inflight_key
    if in_doubt and row.channel not in deliveries.KEYED_CHANNELS:
        row.status, row.failed_at, row.inflight_key = D.DELIVERY_STATUS_FAILED, now, ""
        row.last_error_code = deliveries.IN_DOUBT
        row.last_error = "an earlier attempt may have been sent: check before resending"
        await uow.session.flush()
        await deliveries.announce_failure(uow, row.id, now)
        return "in_doubt"
    if bot_cap.is_bot(row.channel) and row.channel_config_id:
        # The bot's 20 a minute, kept at send time too (bot_folding.admit_post).
        admitted = await bot_folding.admit_post(uow.session, row, bot_folding.clock())
        if admitted is not None:
            await uow.session.flush()
            return admitted
    if not in_doubt:
        row.attempts += 1
    row.inflight_key = in_doubt or f"{row.id}:{row.attempts}"
    config = await ChannelConfigRepository(uow).enabled(row.channel_config_id)
    note = await NotificationRepository(uow).find(row.notification_id)
    message = Message(
        row.id, row.notification_id, note.category if note else "", row.address, row.title, row.body
    )
    if row.is_summary:
        if bot_cap.is_bot(row.channel) and not row.user_id:
            await DeliveryRepository(uow).close_bot_digest(row.id)
        message = await deliveries.summary_message(uow.session, row)
    payload = channel_config_pb2.ChannelConfig.FromString(config.payload) if config is not None else None
    return Attempt(row.channel, payload, message, row.inflight_key)


async def sent(uow: UnitOfWork, delivery_id: str, provider_id: str) -> None:
    await DeliveryRepository(uow).set_outcome(
        delivery_id,
        {
            "status": D.DELIVERY_STATUS_SENT,
            "sent_at": datetime.now(UTC),
            "provider_message_id": provider_id,
            "inflight_key": "",
            "last_error_code": "",
            "last_error": "",
        },
    )


async def failed(uow: UnitOfWork, delivery_id: str, exc: SendError) -> None:
    now = datetime.now(UTC)
    values: dict[str, object] = {
        "inflight_key": "",  # the attempt's outcome is known: not in doubt
        "last_error_code": exc.code,
        "last_error": exc.message[:1000],
        "status": D.DELIVERY_STATUS_FAILED if exc.permanent else D.DELIVERY_STATUS_RETRYING,
    }
    if exc.permanent:
        values["failed_at"] = now
    await DeliveryRepository(uow).set_outcome(delivery_id, values)
    if exc.permanent:
        await deliveries.announce_failure(uow, delivery_id, now)


async def fold_rate_limited(uow: UnitOfWork, delivery_id: str) -> bool:
    """The bot refused an alert as over its cap: it folds into the bot's digest (True), never fails.

    A digest itself is not folded (False): it is retried later (bot_cap.RATE_LIMITED_RETRY).
    """
    row = await DeliveryRepository(uow).find(delivery_id)
    if row is None or row.is_summary or not bot_cap.is_bot(row.channel):
        return False
    fields = {c.key: getattr(row, c.key) for c in DeliveryRow.__table__.columns}
    digest = await bot_folding.digest_for(uow.session, fields, bot_folding.clock())
    values = {
        "status": D.DELIVERY_STATUS_SUPPRESSED,
        "suppression_reason": D.SUPPRESSION_REASON_FOLDED,
        "folded_into": digest,
        "inflight_key": "",
        "last_error_code": "RATE_LIMITED",
        "last_error": "the bot is over its 20 messages a minute: folded into its digest",
    }
    await DeliveryRepository(uow).set_outcome(delivery_id, values)
    return True


async def give_up(uow: UnitOfWork, delivery_id: str) -> None:
    """Retries exhausted: the delivery is FAILED, visible and re-sendable."""
    now = datetime.now(UTC)
    values = {"status": D.DELIVERY_STATUS_FAILED, "failed_at": now}
    if await DeliveryRepository(uow).set_outcome(delivery_id, values, if_pending=deliveries.PENDING):
        await deliveries.announce_failure(uow, delivery_id, now)
