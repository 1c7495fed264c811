"""One attempt of an outbound delivery: prepare (a short read), post (no transaction open), record (a transaction).

Prepare finds the delivery still open and its subscription enabled (else the
delivery ends CANCELLED or, for a suspended one, DEAD_LETTERED without a call)
and signs the fixed body with every live secret; it only reads, unless the
delivery has to end (the row was marked claimed when its workflow started).
The post goes through kit.net.SafeClient: the endpoint is resolved and checked
again now (a name that moved to a private address is refused), pinned, and no
redirect is followed. Record keeps the attempt (status, latency, error, the
answer's first KiB), and applies domain/outbound.decide: success, a retry after
the scheduled wait (or Retry-After), or a dead letter, with 410 Gone and 5 days
of failure suspending the subscription and telling its owner
(integration.WebhookDeliveryFailed, which notify turns into an inbox item).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx

from kit.net import Blocked, SafeClient, Unresolved
from kit.resources import UnitOfWork
from salesops.integration.v1 import events_pb2 as ev
from salesops.integration.v1 import webhooks_pb2 as wh
from services.integration import subscriptions
from services.integration.domain import outbound
from services.integration.domain.outbound_signing import signature_header
from services.integration.outbound_workflows import AttemptStep
from services.integration.repositories.outbound import OPEN, Attempts, Deliveries, Subscriptions
from services.integration.store_outbound import WebhookAttemptRow, WebhookDeliveryRow, WebhookSubscriptionRow


@dataclass(frozen=True)
class Prepared:
    url: str
    headers: dict[str, str]
    body: bytes
    timeout: float
    attempt: int


@dataclass(frozen=True)
class Answered:
    started_at: datetime
    duration_ms: int
    status: int = 0
    error: str = ""
    excerpt: str = ""
    retry_after: str = ""


def _state_name(state: int) -> str:
    return wh.DeliveryState.Name(state)  # type: ignore[arg-type]


def headers_for(
    sub: WebhookSubscriptionRow, delivery: WebhookDeliveryRow, at: datetime, signed_at: int
) -> dict[str, str]:
    msg = wh.WebhookSubscription.FromString(sub.body)
    signature = signature_header(
        subscriptions.live_secrets(sub, at), delivery.event_id, signed_at, delivery.body
    )
    return {
        **dict(msg.headers),
        "content-type": "application/json",
        "webhook-id": delivery.event_id,
        "webhook-timestamp": str(signed_at),
        "webhook-signature": signature,
        "x-salesops-event-type": delivery.event_type,
        "x-salesops-delivery-id": delivery.delivery_id,
    }


def _timeout(sub: WebhookSubscriptionRow) -> float:
    msg = wh.WebhookSubscription.FromString(sub.body)
    return msg.timeout.ToTimedelta().total_seconds() if msg.HasField("timeout") else 10.0


async def prepare(uow: UnitOfWork, delivery_id: str, at: datetime) -> Prepared | AttemptStep | None:
    """What to post, or the step that ends the workflow (already final, cancelled, suspended).

    Meant to run read-only first (no writer turn, nothing to commit: the usual case); None when
    the delivery must change (cancelled, dead-lettered) and the unit of work cannot write: run it
    again in a writable one.
    """
    delivery = await Deliveries(uow).find(delivery_id)
    if delivery is None:
        return AttemptStep(done=True, state="MISSING")
    if delivery.state not in OPEN:
        return AttemptStep(done=True, state=_state_name(delivery.state))
    sub = await Subscriptions(uow).find(delivery.subscription_id)
    if sub is None or sub.state == wh.SUBSCRIPTION_STATE_DISABLED:
        if not uow.writable:
            return None
        delivery.state, delivery.next_attempt_at = wh.DELIVERY_STATE_CANCELLED, None
        return AttemptStep(done=True, state=_state_name(delivery.state))
    if sub.state == wh.SUBSCRIPTION_STATE_SUSPENDED:
        if not uow.writable:
            return None
        # Kept for replay once the subscription is enabled again.
        delivery.state, delivery.next_attempt_at = wh.DELIVERY_STATE_DEAD_LETTERED, None
        delivery.dead_letter_at, delivery.last_error = at, "the subscription is suspended"
        return AttemptStep(done=True, state=_state_name(delivery.state))
    # The signature's timestamp is the wall clock: the receiver checks it against its own.
    signed_at = int(datetime.now(UTC).timestamp())
    return Prepared(
        url=sub.endpoint_url,
        headers=headers_for(sub, delivery, at, signed_at),
        body=delivery.body,
        timeout=_timeout(sub),
        attempt=delivery.attempt_count + 1,
    )


async def post(client: SafeClient, p: Prepared, at: datetime) -> Answered:
    """One POST; the answer's status, first KiB and Retry-After, or why there was none."""
    started = time.monotonic()

    def done(**kw: object) -> Answered:
        return Answered(started_at=at, duration_ms=int((time.monotonic() - started) * 1000), **kw)  # type: ignore[arg-type]

    try:
        async with asyncio.timeout(p.timeout):
            async with client.stream(
                "POST", p.url, headers=p.headers, content=p.body, timeout=p.timeout
            ) as r:
                head = bytearray()
                async for chunk in r.aiter_bytes():
                    head += chunk
                    if len(head) >= outbound.EXCERPT_LIMIT:
                        break
                return done(
                    status=r.status_code,
                    excerpt=outbound.excerpt(bytes(head)),
                    retry_after=r.headers.get("retry-after", ""),
                )
    except Unresolved:
        return done(error="the endpoint's host does not resolve")
    except Blocked as exc:
        return done(error=f"refused by the outbound policy: {exc.reason}")
    except (TimeoutError, httpx.TimeoutException):
        return done(error="timeout")
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError):
        return done(error="connection failed")


def _max_attempts(sub: WebhookSubscriptionRow) -> int:
    return wh.WebhookSubscription.FromString(sub.body).retry_policy.max_attempts or outbound.MAX_ATTEMPTS


async def record(
    uow: UnitOfWork,
    delivery_id: str,
    attempt: int,
    answer: Answered,
    at: datetime,
    rng: random.Random | None = None,
) -> AttemptStep:
    """Keep the attempt and move the delivery (and its subscription's health) on."""
    delivery = await Deliveries(uow).get(delivery_id)
    after = outbound.retry_after(answer.retry_after, at) if answer.retry_after else None
    await Attempts(uow).add(
        WebhookAttemptRow(
            delivery_id=delivery_id,
            attempt_number=attempt,
            started_at=answer.started_at,
            duration_ms=answer.duration_ms,
            http_status=answer.status,
            error=answer.error[:500],
            response_excerpt=answer.excerpt,
            retry_after_seconds=int(after.total_seconds()) if after is not None else 0,
        )
    )
    delivery.attempt_count = attempt
    delivery.last_http_status, delivery.last_error = answer.status, answer.error[:500]
    if delivery.state not in OPEN:  # disabled or deleted while the call ran: its state stays
        return AttemptStep(done=True, state=_state_name(delivery.state))
    if outbound.succeeded(answer.status):
        # The usual case needs nothing of the subscription but to mark it healthy: one UPDATE, no read.
        delivery.state, delivery.delivered_at, delivery.next_attempt_at = (
            wh.DELIVERY_STATE_SUCCEEDED,
            at,
            None,
        )
        await Subscriptions(uow).healthy(delivery.subscription_id, at)
        return AttemptStep(done=True, state=_state_name(delivery.state))
    sub = await Subscriptions(uow).find(delivery.subscription_id)
    decision = outbound.decide(
        attempt=attempt,
        max_attempts=_max_attempts(sub) if sub is not None else outbound.MAX_ATTEMPTS,
        status=answer.status,
        after=after,
        failing_since=outbound.aware(sub.failing_since) if sub is not None else None,
        now=at,
        rng=rng,
    )
    if sub is not None:
        sub.last_failure_at = at
        sub.failing_since = sub.failing_since or at
    if decision.outcome is outbound.Outcome.RETRY:
        delivery.state = wh.DELIVERY_STATE_RETRY_SCHEDULED
        delivery.next_attempt_at = at + decision.wait
        return AttemptStep(
            done=False, wait_seconds=decision.wait.total_seconds(), state=_state_name(delivery.state)
        )
    delivery.state, delivery.dead_letter_at, delivery.next_attempt_at = (
        wh.DELIVERY_STATE_DEAD_LETTERED,
        at,
        None,
    )
    if sub is not None:
        sub.consecutive_failures += 1
        if decision.suspend:
            sub.state, sub.state_reason = wh.SUBSCRIPTION_STATE_SUSPENDED, decision.suspend
            sub.version += 1
        await _announce(uow, delivery, sub, bool(decision.suspend), at)
    return AttemptStep(done=True, state=_state_name(delivery.state))


async def _announce(
    uow: UnitOfWork, delivery: WebhookDeliveryRow, sub: WebhookSubscriptionRow, suspended: bool, at: datetime
) -> None:
    failed = ev.WebhookDeliveryFailed(
        delivery_id=delivery.delivery_id,
        subscription_id=sub.subscription_id,
        subscription_name=sub.display_name,
        endpoint_host=urlsplit(sub.endpoint_url).hostname or "",
        owner_user_id=sub.owner_user_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        attempt_count=delivery.attempt_count,
        last_http_status=delivery.last_http_status,
        last_error=delivery.last_error,
        subscription_suspended=suspended,
    )
    failed.dead_letter_time.FromDatetime(at)
    await uow.emit("integration.WebhookDeliveryFailed", failed, subject=sub.subscription_id)


def wait_of(step: AttemptStep) -> timedelta:
    return timedelta(seconds=step.wait_seconds)
