"""Fold alerts to a WeCom / DingTalk group bot over its 20-a-minute cap into the bot's digest.

See domain/bot_cap.py for the rule. The digest is a summary delivery of the bot's
config with no recipient (user_id ""), HELD until a minute after it was made; the
folded deliveries stay SUPPRESSED (FOLDED) with `folded_into` naming it, so every
alert is either posted alone or listed in exactly one digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from salesops.notify.v1 import delivery_pb2
from services.notify.domain import bot_cap
from services.notify.repositories import on_session
from services.notify.repositories.sending import FanOutRepository
from services.notify.store import DeliveryRow


def clock() -> datetime:
    """The time bot posts are planned and counted on (one clock for both; tests set it)."""
    return datetime.now(UTC)


@dataclass(frozen=True)
class Busy:
    """A bot digest must wait: the bot posted its 20 in the last minute."""

    retry_after: timedelta


async def admit_post(session: AsyncSession, row: DeliveryRow, now: datetime) -> Busy | str | None:
    """At send time: None = post it now; "folded" = over the cap, folded into the bot's digest;
    Busy = a digest waits until the oldest post of the minute is a minute old.

    Planning at queue time keeps the cap when posts go out as planned; this catches the ones
    that did not (a dispatch delayed, a retry, rows held by Temporal being down). Attempts of one
    bot are serialised on its configuration row, so two can not both take the 20th place.
    """
    fan_out = FanOutRepository(on_session(session))
    await fan_out.lock_bot(row.channel_config_id)
    posted, oldest = await fan_out.bot_posted(row.channel_config_id, bot_cap.window_start(now), row.id)
    if not bot_cap.must_fold(posted):
        row.next_attempt_at = now  # counted as this minute's post from now on
        return None
    if row.is_summary:
        wait = (oldest + bot_cap.WINDOW - now) if oldest is not None else bot_cap.WINDOW
        return Busy(max(wait, timedelta(seconds=1)))
    fields = {c.key: getattr(row, c.key) for c in DeliveryRow.__table__.columns}
    row.folded_into = await digest_for(session, fields, now)
    row.status, row.suppression_reason = (
        delivery_pb2.DELIVERY_STATUS_SUPPRESSED,
        delivery_pb2.SUPPRESSION_REASON_FOLDED,
    )
    row.last_error_code, row.last_error = (
        "RATE_LIMITED",
        "the bot posted 20 in the last minute: folded into its digest",
    )
    return "folded"


async def over_cap(session: AsyncSession, config_id: str, now: datetime, planned_here: int = 0) -> bool:
    """True when the bot has its 20 posts planned in the minute up to `now` (or later)."""
    planned = await FanOutRepository(on_session(session)).bot_planned(config_id, bot_cap.window_start(now))
    return bot_cap.must_fold(planned + planned_here)


async def digest_for(session: AsyncSession, row: dict[str, Any], now: datetime) -> str:
    """The id of the bot's pending digest `row` folds into, made now if there is none to join."""
    fan_out = FanOutRepository(on_session(session))
    pending = await fan_out.pending_bot_digest(row["channel_config_id"])
    # Joining locks the digest while it is still HELD: one being sent now is not joined (its text is made).
    if pending is not None and await fan_out.hold_bot_digest(pending):
        return pending
    due = bot_cap.digest_due(now)
    digest = dict(
        row,
        id=str(ULID()),
        user_id="",
        address="",
        status=delivery_pb2.DELIVERY_STATUS_HELD,
        hold_until=due,
        next_attempt_at=due,
        is_summary=True,
        title="",
        body="",
        # A fresh delivery, whatever the folded one had been through.
        attempts=0,
        inflight_key="",
        dispatched=False,
        folded_into="",
        suppression_reason=0,
        last_error_code="",
        last_error="",
        provider_message_id="",
        resent_from="",
        queued_at=now,
        sent_at=None,
        failed_at=None,
    )
    await fan_out.insert_deliveries([digest])
    return str(digest["id"])
