"""SendNotification: validate, dedupe, resolve recipients, render, file inbox items, queue deliveries.

Everything a send writes (notification, dedupe key, inbox items, deliveries)
commits in one transaction; the live stream is told after the commit, and
external deliveries are picked up by the dispatcher from their rows, so a
crash after the commit loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import redis.asyncio as aioredis
from google.protobuf.json_format import MessageToDict
from sqlalchemy.ext.asyncio import AsyncSession
from ulid import ULID

from kit.db import Database
from kit.errors import FieldViolation, InvalidArgument, NotFound
from kit.resources import Transactions
from salesops.notify.v1 import delivery_pb2, notification_pb2, notify_service_pb2
from services.notify import (
    bot_folding,
    convert,
    directory,
    escalation_policies,
    live,
    preferences,
    read_memo,
    store,
    template_store,
    tenant_settings,
)
from services.notify.directory import address_for, resolve
from services.notify.domain import bot_cap, categories, rate_limit
from services.notify.domain.notifications import EXTERNAL_CHANNELS, validate
from services.notify.domain.quiet_hours import hold_until
from services.notify.domain.templates import TemplateError, check_variables, context, render
from services.notify.presenters import INBOX_ITEM
from services.notify.repositories import on_session
from services.notify.repositories.notifications import NotificationRepository
from services.notify.repositories.sending import DedupeRepository, FanOutRepository

log = logging.getLogger("salesops.notify.send")

N = notification_pb2
ACTIVE = N.NOTIFICATION_STATE_ACTIVE


@dataclass
class SendOutcome:
    notification: notification_pb2.Notification
    deduplicated: bool
    inbox_items: list[dict[str, Any]]
    delivery_ids: list[str]


def _now() -> datetime:
    return datetime.now(UTC)


class Sender:
    def __init__(self, db: Database, redis: aioredis.Redis, *, clock: Callable[[], datetime] = _now) -> None:
        self.db = db
        self.redis = redis
        self.clock = clock
        self.tx = Transactions(db, source="notify", outbox=store.outbox)

    async def send(
        self,
        tenant: str,
        n: notification_pb2.Notification,
        *,
        is_admin: bool = False,
        source: notification_pb2.NotificationSource | None = None,
        session: AsyncSession | None = None,
    ) -> SendOutcome:
        """Send `n`. With `session` (an event consumer's), the caller commits and publishes."""
        validate(n, is_admin=is_admin)
        if session is not None:
            return await self._send(session, n, source)
        outcome = await self.tx.run(tenant, lambda uow: self._send(uow.session, n, source))
        await self.announce(tenant, outcome)
        return outcome

    async def announce(self, tenant: str, outcome: SendOutcome, watching: set[str] | None = None) -> None:
        """Tell open streams about new items (after the commit; a lost publish is replayed on resume).

        `watching`: the tenant's users with a stream open, when the caller has just asked (the event
        consumer asks once per tenant for a read's sends instead of once per send)."""
        if outcome.deduplicated or not outcome.inbox_items:
            return
        try:
            if watching is None:
                watching = await live.online_users(self.redis, tenant)
            events = []
            for row in outcome.inbox_items:
                if row["user_id"] not in watching:
                    continue  # no open stream: the item waits in the inbox (and in a resumed stream's replay)
                item = INBOX_ITEM.for_owner(SimpleNamespace(**row), outcome.notification.escalation.state)
                events.append(
                    (
                        tenant,
                        row["user_id"],
                        notify_service_pb2.StreamInboxResponse(cursor=row["id"], item_added=item),
                    )
                )
            await live.publish(self.redis, events)
        except Exception:  # the items are committed; streams catch up on resume
            log.warning(
                "live publish failed for notification %s", outcome.notification.notification_id, exc_info=True
            )

    async def _existing(
        self, session: AsyncSession, notification_id: str
    ) -> notification_pb2.Notification | None:
        row = await NotificationRepository(on_session(session)).find(notification_id)
        return None if row is None else convert.notification(row)

    async def _claim_dedupe(self, session: AsyncSession, key: str, nid: str, window: timedelta) -> str | None:
        """Claim `key` for `nid`; returns the live holder's notification id when another has it."""
        now = self.clock()
        repo = DedupeRepository(on_session(session))
        for _ in range(3):
            settled, holder = await repo.claim(key, nid, now, window)
            if settled:
                return holder
        raise InvalidArgument.field("notification.dedupe_key", "contended; retry")

    async def _send(
        self,
        session: AsyncSession,
        n: notification_pb2.Notification,
        source: notification_pb2.NotificationSource | None,
    ) -> SendOutcome:
        tenant = session.info["tenant"]
        convert.check_request_times(n)
        if n.notification_id:
            existing = await self._existing(session, n.notification_id)
            if existing is not None:
                return SendOutcome(existing, False, [], [])
        nid = n.notification_id or str(ULID())
        category = convert.category_key(n.category)
        tenant_defaults = await tenant_settings.load_defaults(session)
        now = self.clock()
        if n.dedupe_key:
            window = (
                n.dedupe_window.ToTimedelta()
                if n.HasField("dedupe_window")
                else tenant_defaults.dedupe_for(category)
            )
            holder = await self._claim_dedupe(session, n.dedupe_key, nid, window)
            if holder is not None:
                first = await self._existing(session, holder)
                if first is None:
                    raise NotFound("notification", holder)
                return SendOutcome(first, True, [], [])

        accepted = notification_pb2.Notification()
        accepted.CopyFrom(n)
        accepted.notification_id = nid
        accepted.priority = n.priority or tenant_defaults.priority_for(category)  # type: ignore[assignment]
        accepted.state = ACTIVE
        if source is not None:
            accepted.source.CopyFrom(source)
        accepted.audit.create_time.FromDatetime(now)
        users = await resolve(session, n.recipients)
        accepted.resolved_user_ids[:] = users

        ack_deadline: datetime | None = None
        if n.HasField("ack") and not n.ack.escalation_policy_id:
            n = _with_policy(n, tenant_defaults.escalation_policy.get(category, ""))
        if n.HasField("ack") and n.ack.escalation_policy_id:
            try:
                await escalation_policies.get(on_session(session), n.ack.escalation_policy_id)
            except NotFound:
                raise InvalidArgument.field(
                    "notification.ack.escalation_policy_id", "no such policy"
                ) from None
        if n.HasField("ack"):
            timeout = (
                n.ack.ack_timeout.ToTimedelta() if n.ack.HasField("ack_timeout") else timedelta(hours=24)
            )
            ack_deadline = now + timeout
            accepted.escalation.state = N.ESCALATION_STATE_AWAITING_ACK
            accepted.escalation.escalation_policy_id = n.ack.escalation_policy_id or "default"
            accepted.escalation.next_escalation_time.FromDatetime(ack_deadline)
        else:
            accepted.escalation.state = N.ESCALATION_STATE_NOT_REQUIRED

        items, deliveries = await self.fan_out(session, accepted, users, level=0, ack_deadline=ack_deadline)
        # One Core INSERT, not an ORM object and its flush (a burst of reminders: one per event).
        await NotificationRepository(on_session(session)).insert(
            {
                "id": nid,
                "tenant_id": tenant,
                "category": category,
                "priority": accepted.priority,
                "dedupe_key": n.dedupe_key,
                "state": ACTIVE,
                "escalation_state": accepted.escalation.state,
                "source_service": accepted.source.service,
                "payload": accepted.SerializeToString(),
                "created_at": now,
            }
        )
        return SendOutcome(accepted, False, items, [d["id"] for d in deliveries])

    async def fan_out(
        self,
        session: AsyncSession,
        n: notification_pb2.Notification,
        users: Sequence[str],
        *,
        level: int,
        ack_deadline: datetime | None,
        escalated_from: Sequence[str] = (),
        channels: Sequence[int] = (),
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Render and insert inbox items (and external deliveries) for `users`; returns the rows."""
        tenant = session.info["tenant"]
        category = convert.category_key(n.category)
        now = self.clock()
        prefs = await preferences.load(session, users)
        subs = await directory.subscribers(session, users)
        tenant_defaults = await tenant_settings.load_defaults(session)
        critical = categories.is_critical(category, n.priority, tenant_defaults.critical)
        digest_mode = n.delivery_mode == N.DELIVERY_MODE_DIGEST and not critical
        mandatory = list(tenant_defaults.mandatory_channels.get(category, ()))
        specs: dict[tuple[str, str], Any] = {}
        rendered_once: dict[tuple[str, str, str, str], tuple[str, str]] = {}
        variables = MessageToDict(n.template.variables) if n.WhichOneof("content") == "template" else {}
        due = convert.aware(n.due_time.ToDatetime(tzinfo=UTC)) if n.HasField("due_time") else None
        subject = n.subject
        items: list[dict[str, Any]] = []
        deliveries: list[dict[str, Any]] = []
        configs = await read_memo.once(
            session, "enabled_configs", FanOutRepository(on_session(session)).enabled_configs
        )
        bot_posts: dict[str, int] = {}  # posts admitted to each group bot by this fan-out, not yet inserted
        for user in users:
            eff = preferences.effective(prefs.get(user), tenant_defaults)
            # The user's "digest only" files it quietly, like a DIGEST-mode send (never for critical ones).
            quiet_digest = digest_mode or (category in eff.digest_only and not critical)
            sub = subs.get(user)
            name = sub.display_name if sub is not None else user
            if n.WhichOneof("content") == "raw":
                title, body, locale = n.raw.title, n.raw.body, eff.locale
            else:
                locale = n.template.locale or eff.locale
                key = n.template.template_key or category
                if (key, locale) not in specs:
                    spec = await template_store.find(session, key, locale)
                    if spec is None:
                        raise NotFound("template", f"{key}/{locale}")
                    if spec.category and spec.category != category:
                        raise InvalidArgument.field(
                            "notification.template.template_key", f"renders {spec.category}, not {category}"
                        )
                    try:
                        check_variables(spec, variables)
                    except TemplateError as exc:
                        raise InvalidArgument(str(exc), _violations(exc)) from None
                    specs[(key, locale)] = spec
                spec = specs[(key, locale)]
                # Most templates do not name the recipient: render once per locale and zone, not per user.
                personal = "recipient" in spec.title or "recipient" in spec.body
                cache_key = (key, locale, eff.time_zone, user if personal else "")
                if cache_key not in rendered_once:
                    values = context(
                        variables,
                        recipient_name=name,
                        due_time=due,
                        now=now,
                        action_url=n.action_url,
                        subject={"service": subject.service, "kind": subject.kind, "id": subject.id},
                    )
                    try:
                        rendered = render(spec, values, time_zone=eff.time_zone)
                    except TemplateError as exc:  # e.g. variables that make it render too large
                        raise InvalidArgument(str(exc), _violations(exc)) from None
                    rendered_once[cache_key] = (rendered.title, rendered.body)
                title, body = rendered_once[cache_key]
            item_id = str(ULID())
            items.append(
                {
                    "id": item_id,
                    "tenant_id": tenant,
                    "user_id": user,
                    "notification_id": n.notification_id,
                    "category": category,
                    "priority": n.priority,
                    "title": title[:200],
                    "body": body,
                    "locale": locale,
                    "subject_service": subject.service,
                    "subject_kind": subject.kind,
                    "subject_id": subject.id,
                    "action_url": n.action_url,
                    "due_time": due,
                    "read_at": None,
                    "counts_unread": not quiet_digest,
                    "ack_required": ack_deadline is not None,
                    "ack_deadline": ack_deadline,
                    "escalation_level": level,
                    "escalated_from": ",".join(escalated_from),
                    "state": 1,
                    "created_at": now,
                }
            )
            if quiet_digest or (category in eff.inbox_only and not channels and not mandatory):
                continue
            if category in eff.inbox_only and not channels:
                wanted = mandatory  # the tenant's mandatory channels survive a user's "inbox only"
            else:
                wanted = (
                    list(channels)
                    or list(n.channels)
                    or list(eff.channels.get(category, ()))
                    or list(tenant_defaults.default_channels.get(category, ()))
                ) + mandatory
            for channel in dict.fromkeys(c for c in wanted if c in EXTERNAL_CHANNELS):
                config_id = configs.get(channel, "")
                address = address_for(sub, channel)
                row = {
                    "id": str(ULID()),
                    "tenant_id": tenant,
                    "notification_id": n.notification_id,
                    "user_id": user,
                    "channel": channel,
                    "channel_config_id": config_id,
                    "address": address,
                    "status": delivery_pb2.DELIVERY_STATUS_QUEUED,
                    "attempts": 0,
                    "title": title[:200],
                    "body": body,
                    "locale": locale,
                    "hold_until": None,
                    "next_attempt_at": now,
                    "last_error_code": "",
                    "last_error": "",
                    "provider_message_id": "",
                    "resent_from": "",
                    "dispatched": False,
                    "queued_at": now,
                    "is_summary": False,
                    "folded_into": "",
                    "suppression_reason": 0,
                }
                if not config_id or not address:
                    row["status"] = delivery_pb2.DELIVERY_STATUS_SUPPRESSED
                    row["suppression_reason"] = (
                        delivery_pb2.SUPPRESSION_REASON_CHANNEL_DISABLED
                        if not config_id
                        else delivery_pb2.SUPPRESSION_REASON_NO_ADDRESS
                    )
                    row["last_error_code"] = "CHANNEL_DISABLED" if not config_id else "NO_ADDRESS"
                else:
                    summary = await self._fold(
                        session,
                        row,
                        prefs.get(user),
                        tenant_defaults.limit,
                        critical=critical,
                        now=now,
                        bot_posts=bot_posts,
                    )
                    if summary is not None:
                        row["status"] = delivery_pb2.DELIVERY_STATUS_SUPPRESSED
                        row["suppression_reason"] = delivery_pb2.SUPPRESSION_REASON_FOLDED
                        row["folded_into"] = summary
                    else:
                        held = hold_until(now, eff.quiet, eff.time_zone, critical=critical)
                        if held is not None:
                            row["status"] = delivery_pb2.DELIVERY_STATUS_HELD
                            row["hold_until"] = row["next_attempt_at"] = held
                        if bot_cap.is_bot(channel):
                            bot_posts[config_id] = bot_posts.get(config_id, 0) + 1
                deliveries.append(row)
        fan_out = FanOutRepository(on_session(session))
        await fan_out.insert_items(items)
        await fan_out.insert_deliveries(deliveries)
        return items, deliveries

    async def _fold(
        self,
        session: AsyncSession,
        row: dict[str, Any],
        pref: Any,
        tenant_limit: rate_limit.Limit,
        *,
        critical: bool,
        now: datetime,
        bot_posts: dict[str, int] | None = None,
    ) -> str | None:
        """The summary delivery `row` folds into when the recipient's channel is over its limit, else None.

        A group bot also has its platform's cap (bot_cap): over it, or over the recipient's limit,
        the alert folds into the bot's digest, critical or not (the bot would refuse it anyway).
        """
        if bot_cap.is_bot(row["channel"]):
            config_id = row["channel_config_id"]
            capped = await bot_folding.over_cap(session, config_id, now, (bot_posts or {}).get(config_id, 0))
            if capped or (not critical and await self._over_limit(session, row, pref, tenant_limit, now)):
                return await bot_folding.digest_for(session, row, now)
            return None
        requested = pref.rate_limit if pref is not None and pref.HasField("rate_limit") else None
        limit = rate_limit.effective(
            tenant_limit,
            requested.max_deliveries if requested is not None else 0,
            requested.window.ToTimedelta()
            if requested is not None and requested.HasField("window")
            else None,
        )
        if critical or limit.max_deliveries == 0:
            return None
        fan_out = FanOutRepository(on_session(session))
        count, oldest = await fan_out.recent(row["user_id"], row["channel"], now - limit.window)
        if not rate_limit.must_fold(limit, count, critical=critical):
            return None
        pending = await fan_out.held_summary(row["user_id"], row["channel"])
        if pending is not None:
            return pending
        due = rate_limit.summary_due(convert.aware(oldest) if oldest else now, limit)
        summary = dict(
            row,
            id=str(ULID()),
            status=delivery_pb2.DELIVERY_STATUS_HELD,
            hold_until=due,
            next_attempt_at=due,
            is_summary=True,
            title="",
            body="",
        )
        await fan_out.insert_deliveries([summary])
        return str(summary["id"])

    async def _over_limit(
        self,
        session: AsyncSession,
        row: dict[str, Any],
        pref: Any,
        tenant_limit: rate_limit.Limit,
        now: datetime,
    ) -> bool:
        """The recipient's own limit on the channel (for bots, whose folding target is the bot's digest)."""
        requested = pref.rate_limit if pref is not None and pref.HasField("rate_limit") else None
        limit = rate_limit.effective(
            tenant_limit,
            requested.max_deliveries if requested is not None else 0,
            requested.window.ToTimedelta()
            if requested is not None and requested.HasField("window")
            else None,
        )
        if limit.max_deliveries == 0:
            return False
        count, _ = await FanOutRepository(on_session(session)).recent(
            row["user_id"], row["channel"], now - limit.window
        )
        return rate_limit.must_fold(limit, count, critical=False)


def _violations(exc: TemplateError) -> list[Any]:
    return [FieldViolation(f, d) for f, d in exc.problems]


def _with_policy(n: notification_pb2.Notification, policy_id: str) -> notification_pb2.Notification:
    """`n` with the category's escalation policy named, when the tenant set one."""
    if not policy_id:
        return n
    out = notification_pb2.Notification()
    out.CopyFrom(n)
    out.ack.escalation_policy_id = policy_id
    return out
