"""Temporal activities of notify: all the I/O its workflows (workflows.py) ask for.

Deliveries (one recorded attempt per call), escalation steps, and the daily digest sweep
(which also tells tenant admins about business-calendar gaps). Each activity opens its
own tenant session; one tenant's failure in the sweep never stops another's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import redis.asyncio as aioredis
from sqlalchemy import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from kit.calendar import BusinessCalendar, calendar_from_env
from kit.db import Database
from kit.resources import Transactions, UnitOfWork
from salesops.notify.v1 import delivery_pb2
from services.notify import (
    calendar_notice,
    delivery_attempts,
    digests,
    escalation,
    preferences,
    sending,
    store,
    tenant_settings,
)
from services.notify.channels.base import Adapter, SendError
from services.notify.domain import digest as rules
from services.notify.store import SubscriberRow
from services.notify.workflows import DeliveryRef, StepRequest, SweepRequest

log = logging.getLogger("salesops.notify.activities")
D = delivery_pb2


class DeliveryActivities:
    def __init__(self, db: Database, adapters: Mapping[int, Adapter]) -> None:
        self.db = db
        self.adapters = adapters
        self.tx = Transactions(db, source="notify", outbox=store.outbox)

    @activity.defn(name="notify.attempt_delivery")
    async def attempt(self, ref: DeliveryRef) -> str:
        """One attempt, recorded (committed) before it is sent; see delivery_attempts.

        Transient failures raise (Temporal retries with back-off); permanent ones do not retry.
        """
        plan = await self.tx.run(ref.tenant, lambda uow: delivery_attempts.begin(uow, ref.delivery_id))
        if isinstance(plan, str):
            return plan
        adapter = self.adapters.get(plan.channel)
        try:
            if plan.config is None or adapter is None:
                raise SendError("CHANNEL_DISABLED", "no enabled channel configuration", permanent=True)
            provider_id = await adapter.send(plan.config, plan.message, idempotency_key=plan.key)
        except SendError as exc:
            error = exc
            await self.tx.run(ref.tenant, lambda uow: delivery_attempts.failed(uow, ref.delivery_id, error))
            raise ApplicationError(str(exc), exc.code, non_retryable=exc.permanent) from None
        await self.tx.run(ref.tenant, lambda uow: delivery_attempts.sent(uow, ref.delivery_id, provider_id))
        return "sent"

    @activity.defn(name="notify.give_up_delivery")
    async def give_up(self, ref: DeliveryRef) -> None:
        """Retries exhausted: the delivery is FAILED, visible and re-sendable."""
        await self.tx.run(ref.tenant, lambda uow: delivery_attempts.give_up(uow, ref.delivery_id))

    def all(self) -> list[object]:
        return [self.attempt, self.give_up]


class EscalationActivities:
    def __init__(self, db: Database, redis: aioredis.Redis) -> None:
        self.sender = sending.Sender(db, redis)
        self.tx = Transactions(db, source="notify", outbox=store.outbox)

    @activity.defn(name="notify.escalate")
    async def escalate(self, step: StepRequest) -> list[str]:
        """Notify the next level; returns its users ([] = nobody: still awaiting, or chain over)."""

        async def work(uow: UnitOfWork) -> list[str]:
            users, outcome = await escalation.escalate(uow, self.sender, step)
            if outcome is not None:
                uow.after_commit(lambda: self.sender.announce(step.tenant, outcome))
            return users

        return await self.tx.run(step.tenant, work)

    @activity.defn(name="notify.exhaust_escalation")
    async def exhaust(self, ref: StepRequest) -> None:
        await self.tx.run(ref.tenant, lambda uow: escalation.exhaust(uow, ref.notification_id))

    def all(self) -> list[object]:
        return [self.escalate, self.exhaust]


class DigestActivities:
    def __init__(self, db: Database, redis: aioredis.Redis, calendar: BusinessCalendar | None = None) -> None:
        self.db = db
        self.sender = sending.Sender(db, redis)
        self.calendar = calendar or calendar_from_env()

    @activity.defn(name="notify.send_due_digests")
    async def sweep(self, request: SweepRequest) -> int:
        """Send the digest of every user whose local send time has passed today; returns how many went out."""
        now = datetime.fromisoformat(request.now) if request.now else datetime.now(UTC)
        async with self.db.system_session() as s:
            people = (
                await s.execute(
                    select(SubscriberRow.tenant_id, SubscriberRow.user_id, SubscriberRow.roles).where(
                        SubscriberRow.active.is_(True)
                    )
                )
            ).all()
        sent = 0
        failed: dict[str, int] = {}
        for tenant, user_id, roles in people:
            activity.heartbeat(sent)
            try:
                sent += await self._one(tenant, user_id, roles, now)
            except Exception:
                # One tenant's broken template or settings must not stop everyone's digests.
                failed[tenant] = failed.get(tenant, 0) + 1
                log.exception("digest of user %s in tenant %s failed; the sweep goes on", user_id, tenant)
        for tenant, count in failed.items():
            log.error("digest sweep: %d digest(s) of tenant %s failed", count, tenant)
        admins: dict[str, list[str]] = {}
        for tenant, user_id, roles in people:
            admins.setdefault(tenant, [])
            if "admin" in roles.split(","):
                admins[tenant].append(user_id)
        for tenant, users in admins.items():
            try:
                await self._calendar_notice(tenant, users, now)
            except Exception:  # one tenant's trouble never stops another's notices or digests
                log.exception("business calendar notice for tenant %s failed", tenant)
        if people and sum(failed.values()) == len(people):
            raise RuntimeError("every digest failed")  # nothing works (e.g. the database): let Temporal retry
        return sent

    async def _calendar_notice(self, tenant: str, admins: list[str], now: datetime) -> None:
        """The calendar coverage warning to the tenant's admins, once per year (dedupe key)."""
        async with self.db.session(tenant) as s:
            zone = (await tenant_settings.load_defaults(s)).time_zone
            outcomes = await calendar_notice.tell_admins(
                self.sender, s, tenant, admins, now.astimezone(ZoneInfo(zone)).date(), self.calendar
            )
            await s.commit()
        for outcome in outcomes:
            await self.sender.announce(tenant, outcome)

    async def _one(self, tenant: str, user_id: str, roles: str, now: datetime) -> int:
        """Send one user's digest if it is due; 1 when one went out."""
        async with self.db.session(tenant) as s:
            pref = (await preferences.load(s, [user_id])).get(user_id)
            cfg = digests.settings_for(pref, set(roles.split(",")), await tenant_settings.load_defaults(s))
            day = rules.due_date(now, cfg.time_zone, cfg.send_time) if cfg.enabled else None
            if day is None:
                return 0
            sections = rules.build(await digests.entries(s, user_id, day), day, cfg.time_zone)
            if not sections and cfg.skip_when_empty:
                return 0
            outcome = await self.sender.send(
                tenant, digests.digest_notification(user_id, day, sections), session=s
            )
            await s.commit()
        await self.sender.announce(tenant, outcome)
        return 0 if outcome.deduplicated else 1

    def all(self) -> list[object]:
        return [self.sweep]
