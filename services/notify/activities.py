"""Temporal activities of notify: all the I/O its workflows (workflows.py) ask for.

Deliveries (one recorded attempt per call), escalation steps, and the daily digest sweep
(which also tells tenant admins about business-calendar gaps). Each activity opens its
own tenant session; one tenant's failure in the sweep never stops another's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

import redis.asyncio as aioredis
from temporalio import activity
from temporalio.exceptions import ApplicationError

from kit.calendar import BusinessCalendar, calendar_from_env
from kit.db import Database
from kit.resources import Transactions, UnitOfWork
from salesops.notify.v1 import delivery_pb2
from services.notify import (
    bot_folding,
    calendar_notice,
    delivery_attempts,
    digests,
    escalation,
    sending,
    store,
)
from services.notify.channels.base import Adapter, SendError
from services.notify.domain import bot_cap
from services.notify.repositories.subscribers import active_everywhere
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
        if isinstance(plan, bot_folding.Busy):  # a group bot's digest waits out the bot's minute
            raise ApplicationError(
                "the bot posted 20 in the last minute", "BOT_BUSY", next_retry_delay=plan.retry_after
            )
        adapter = self.adapters.get(plan.channel)
        try:
            if plan.config is None or adapter is None:
                raise SendError("CHANNEL_DISABLED", "no enabled channel configuration", permanent=True)
            provider_id = await adapter.send(plan.config, plan.message, idempotency_key=plan.key)
        except SendError as exc:
            error = exc
            limited = exc.provider_code in bot_cap.RATE_LIMITED_CODES
            if limited and await self.tx.run(
                ref.tenant, lambda uow: delivery_attempts.fold_rate_limited(uow, ref.delivery_id)
            ):
                return "folded"  # the group bot's cap: listed in its digest instead
            await self.tx.run(ref.tenant, lambda uow: delivery_attempts.failed(uow, ref.delivery_id, error))
            delay = bot_cap.RATE_LIMITED_RETRY if limited else None
            raise ApplicationError(
                str(exc), exc.code, non_retryable=exc.permanent, next_retry_delay=delay
            ) from None
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
        self.tx = Transactions(db, source="notify", outbox=store.outbox)
        self.calendar = calendar or calendar_from_env()

    @activity.defn(name="notify.send_due_digests")
    async def sweep(self, request: SweepRequest) -> int:
        """Send the digest of every user whose local send time has passed today; returns how many went out.

        Each digest (and each tenant's calendar notice) is its own unit of work: one tenant's
        broken template or settings is logged and never stops everyone else's.
        """
        now = datetime.fromisoformat(request.now) if request.now else datetime.now(UTC)
        people = await active_everywhere(self.db)
        sent = 0
        failed: dict[str, int] = {}
        for tenant, user_id, roles in people:
            activity.heartbeat(sent)
            try:
                sent += await self.tx.run(tenant, self._digest_of(user_id, roles, now))
            except Exception:
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
                await self.tx.run(tenant, self._calendar_notice(users, now))
            except Exception:
                log.exception("business calendar notice for tenant %s failed", tenant)
        if people and sum(failed.values()) == len(people):
            raise RuntimeError("every digest failed")  # nothing works (e.g. the database): let Temporal retry
        return sent

    def _announced(self, uow: UnitOfWork, outcome: sending.SendOutcome) -> None:
        uow.after_commit(lambda: self.sender.announce(uow.tenant, outcome))

    def _digest_of(self, user_id: str, roles: str, now: datetime) -> Callable[[UnitOfWork], Awaitable[int]]:
        async def work(uow: UnitOfWork) -> int:
            outcome = await digests.send_due(uow, self.sender, user_id, roles, now)
            if outcome is None:
                return 0
            self._announced(uow, outcome)
            return 0 if outcome.deduplicated else 1

        return work

    def _calendar_notice(self, admins: list[str], now: datetime) -> Callable[[UnitOfWork], Awaitable[None]]:
        async def work(uow: UnitOfWork) -> None:
            for outcome in await calendar_notice.tell_admins(self.sender, uow, admins, now, self.calendar):
                self._announced(uow, outcome)

        return work

    def all(self) -> list[object]:
        return [self.sweep]
