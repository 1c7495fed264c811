"""Outbound deliveries: fan-out of platform events, replay, and starting their workflows. Never commit.

An event from any service's stream becomes one PENDING delivery row per enabled
subscription whose event types match, in the consumer's transaction (the same one
that records the event as processed). Its body (the envelope as proto3 JSON) is
fixed then, so every retry signs the same bytes. After the commit a Temporal
DeliveryWorkflow is started per row and the row marked `claimed`; rows made while
Temporal was away (still `claimed = false`) are picked up by the sweep schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from google.protobuf import json_format
from sqlalchemy.exc import SQLAlchemyError
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from ulid import ULID

from kit.db import Database
from kit.errors import FailedPrecondition, Unavailable
from kit.events import EventEnvelope
from kit.events.envelope import occurred_at
from kit.events.streams import producer_areas
from kit.resources import UnitOfWork
from salesops.integration.v1 import webhooks_pb2 as wh
from services.integration.domain import outbound
from services.integration.outbound_workflows import DeliveryRef, DeliveryWorkflow, SweepWorkflow, workflow_id
from services.integration.repositories.outbound import (
    Deliveries,
    Subscriptions,
    claim_everywhere,
    unclaimed_everywhere,
)
from services.integration.store_outbound import WebhookDeliveryRow

log = logging.getLogger("salesops.integration.deliveries")
SWEEP_SCHEDULE = "integration-webhook-delivery-sweep"
SWEEP_EVERY = timedelta(minutes=1)
UNCLAIMED_AFTER = timedelta(seconds=30)
REPLAY_LIMIT = 10_000
_STARTS = 32  # concurrent workflow starts after a batch commits
_START_RETRIES = (0.5, 2.0)  # pauses before the second and third try of a start that timed out
_START_TRANSIENT = frozenset(
    {RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.UNAVAILABLE, RPCStatusCode.RESOURCE_EXHAUSTED}
)


def _load_event_types() -> None:
    """Every service's event messages in the descriptor pool, so envelopes print with their payload."""
    for area in producer_areas():
        importlib.import_module(f"salesops.{area}.v1.events_pb2")


_load_event_types()


def body_of(envelope: EventEnvelope) -> bytes:
    """The envelope as proto3 JSON, payload expanded with "@type" (base64 when its type is unknown here)."""
    try:
        doc = json_format.MessageToDict(envelope)
    except (TypeError, KeyError):
        bare = EventEnvelope()
        bare.CopyFrom(envelope)
        bare.ClearField("payload")
        doc = json_format.MessageToDict(bare)
        doc["payload"] = {"@type": envelope.payload.type_url, "value": envelope.payload.value.hex()}
    for key in ("traceparent", "tracestate"):
        doc.pop(key, None)  # our tracing is not the partner's business
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


async def fan_out(uow: UnitOfWork, envelope: EventEnvelope, at: datetime) -> list[str]:
    """One delivery per matching subscription; the ids of those to deliver now (PENDING).

    A suspended subscription's share is kept as a dead letter straight away, so replaying
    its dead letters after enabling it catches up; a disabled one gets nothing.
    """
    if envelope.type == "integration.WebhookDeliveryFailed":
        return []  # never deliver news of our own delivery failures (a failing endpoint would feed itself)
    subs = [
        s
        for s in await Subscriptions(uow).receiving()
        if outbound.matches(s.event_types.split(), envelope.type)
    ]
    if not subs:
        return []
    body, when = body_of(envelope), occurred_at(envelope)
    rows = []
    for s in subs:
        suspended = s.state == wh.SUBSCRIPTION_STATE_SUSPENDED
        rows.append(
            WebhookDeliveryRow(
                delivery_id=str(ULID()),
                subscription_id=s.subscription_id,
                event_id=envelope.id,
                event_type=envelope.type,
                event_time=when,
                state=wh.DELIVERY_STATE_DEAD_LETTERED if suspended else wh.DELIVERY_STATE_PENDING,
                attempt_count=0,
                next_attempt_at=None if suspended else at,
                dead_letter_at=at if suspended else None,
                replay_of="",
                created_at=at,
                claimed=suspended,  # no workflow for a dead letter
                last_http_status=0,
                last_error="the subscription is suspended" if suspended else "",
                body=body,
            )
        )
    await Deliveries(uow).add_all(rows)
    return [r.delivery_id for r in rows if r.state == wh.DELIVERY_STATE_PENDING]


def _copy(row: WebhookDeliveryRow, at: datetime) -> WebhookDeliveryRow:
    return WebhookDeliveryRow(
        delivery_id=str(ULID()),
        subscription_id=row.subscription_id,
        event_id=row.event_id,
        event_type=row.event_type,
        event_time=row.event_time,
        state=wh.DELIVERY_STATE_PENDING,
        attempt_count=0,
        next_attempt_at=at,
        replay_of=row.delivery_id,
        created_at=at,
        claimed=False,
        last_http_status=0,
        last_error="",
        body=row.body,
    )


async def _enabled(uow: UnitOfWork, sid: str) -> None:
    sub = await Subscriptions(uow).get(sid)
    if sub.state != wh.SUBSCRIPTION_STATE_ENABLED:
        raise FailedPrecondition(
            f"subscription {sid} is not enabled; enable it before replaying",
            reason="SUBSCRIPTION_NOT_ENABLED",
        )


async def replay_one(uow: UnitOfWork, delivery_id: str, at: datetime) -> WebhookDeliveryRow:
    """A new PENDING delivery of the same event (same webhook-id), linked to the original (a final one)."""
    repo = Deliveries(uow)
    row = await repo.get(delivery_id)
    if row.state in (wh.DELIVERY_STATE_PENDING, wh.DELIVERY_STATE_RETRY_SCHEDULED):
        raise FailedPrecondition(f"delivery {delivery_id} is still being delivered", reason="DELIVERY_OPEN")
    await _enabled(uow, row.subscription_id)
    copy = _copy(row, at)
    await repo.add(copy)
    return copy


async def replay_dead_letters(
    uow: UnitOfWork,
    sid: str,
    event_types: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    at: datetime,
) -> tuple[list[WebhookDeliveryRow], bool]:
    """New deliveries of the subscription's dead letters not replayed before, oldest first; truncated?"""
    await _enabled(uow, sid)
    repo = Deliveries(uow)
    found = await repo.dead_letters(sid, event_types, since, until, REPLAY_LIMIT + 1)
    copies = [_copy(r, at) for r in found[:REPLAY_LIMIT]]
    await repo.add_all(copies)
    return copies, len(found) > REPLAY_LIMIT


async def start(client: Client, task_queue: str, tenant: str, delivery_id: str) -> bool:
    """Start the delivery's workflow; False when it already runs (or ran).

    Eager: when this process runs the worker too (role "all") and it has a free slot, the server
    hands the first workflow task straight back in the answer, skipping the task queue (less work for
    Temporal per delivery, and the delivery is not queued behind later ones); otherwise a normal start.
    """
    try:
        await client.start_workflow(
            DeliveryWorkflow.run,
            DeliveryRef(tenant, delivery_id),
            id=workflow_id(tenant, delivery_id),
            task_queue=task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            request_eager_start=True,
        )
    except WorkflowAlreadyStartedError:
        return False
    return True


async def start_all(
    client: Client, task_queue: str, refs: Sequence[tuple[str, str]], db: Database | None = None
) -> int:
    """Start workflows for (tenant, delivery id) pairs, a few at a time; failures are left to the sweep.

    With `db`, the rows whose workflow now runs (started here, or already running) are marked
    claimed in one statement, so the sweep leaves them alone while they wait their turn in a burst.
    """
    gate = asyncio.Semaphore(_STARTS)
    started = 0
    running: list[tuple[str, str]] = []

    async def one(tenant: str, delivery_id: str) -> None:
        nonlocal started
        async with gate:
            for pause in (*_START_RETRIES, None):
                try:
                    started += await start(client, task_queue, tenant, delivery_id)
                    running.append((tenant, delivery_id))
                    return
                except RPCError as exc:
                    # A busy server times a start out now and then: try again shortly (a start that did
                    # land meanwhile answers "already started"), rather than leave it a minute to the sweep.
                    if pause is None or exc.status not in _START_TRANSIENT:
                        log.warning(
                            "delivery %s not started now (%s); the sweep will", delivery_id, exc.status
                        )
                        return
                except RuntimeError as exc:  # not connected: the sweep starts it later
                    log.warning(
                        "delivery %s not started now (%s); the sweep will", delivery_id, type(exc).__name__
                    )
                    return
                await asyncio.sleep(pause)

    await asyncio.gather(*(one(t, d) for t, d in refs))
    if db is not None and running:
        try:
            async with db.system_session() as session:
                await claim_everywhere(session, running)
                await session.commit()
        except (SQLAlchemyError, Unavailable) as exc:  # the sweep's starts then answer "already started"
            log.warning("%d started deliveries not marked claimed (%s)", len(running), type(exc).__name__)
    return started


async def sweep(db: Database, client: Client, task_queue: str, now: datetime, limit: int = 5000) -> int:
    """Start workflows for PENDING rows nobody claimed for a while (made while Temporal was away)."""
    async with db.system_session() as session:
        refs = await unclaimed_everywhere(session, now - UNCLAIMED_AFTER, limit)
    return await start_all(client, task_queue, refs, db)


async def ensure_sweep_schedule(client: Client, task_queue: str) -> None:
    """The Temporal schedule that runs the sweep every minute (idempotent)."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            SweepWorkflow.run, id=f"{SWEEP_SCHEDULE}-run", task_queue=task_queue
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=SWEEP_EVERY)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )
    with contextlib.suppress(ScheduleAlreadyRunningError):
        await client.create_schedule(SWEEP_SCHEDULE, schedule)
