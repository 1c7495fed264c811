"""kit.events end to end on real SQLite/PostgreSQL and a real Redis: a committed event is handled
once and a rolled back one never sent, in the producer's trace and tenant, and a stop finishes the
event in flight."""

from __future__ import annotations

import asyncio

import pytest
from google.protobuf.wrappers_pb2 import StringValue
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import Database, TenantScopeError
from kit.events import EventEnvelope, emit
from tests.reliability.events_support import (
    EVENT_TYPE,
    OUTBOX,
    PROCESSED,
    SOURCE,
    Effect,
    Recorder,
    State,
    _is,
    count,
    effects,
    eventually,
    make_consumer,
    make_relay,
    pending,
    produce,
    running,
    stream_event_ids,
)


async def test_committed_event_handled_once_rolled_back_event_never_sent(db: Database, redis: Redis) -> None:
    handler = Recorder()
    consumer = make_consumer(db, redis, handler)
    async with running(make_relay(db, redis), consumer):
        committed = await produce(db, "t1", "s1")
        rolled_back = await produce(db, "t1", "s2", commit=False)
        barrier = await produce(db, "t1", "s3")
        await eventually(lambda: _is(effects(db, barrier.id), 1), what="barrier event handled")

    assert await effects(db, committed.id) == 1
    assert await effects(db, rolled_back.id) == 0
    assert await stream_event_ids(redis) == [committed.id, barrier.id]
    assert [c[0] for c in handler.calls] == [committed.id, barrier.id]
    assert await count(db, select(func.count()).select_from(State)) == 2  # s2 rolled back with its event
    assert (
        await count(db, select(func.count()).select_from(OUTBOX).where(OUTBOX.c.published_at.is_(None))) == 0
    )
    assert await count(db, select(func.count()).select_from(PROCESSED)) == 2
    assert await pending(redis) == 0


async def test_handler_runs_in_the_producers_trace(db: Database, redis: Redis) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    handler = Recorder()
    consumer = make_consumer(db, redis, handler, tracer=tracer)
    async with running(make_relay(db, redis), consumer):
        with tracer.start_as_current_span("POST /things") as request_span:
            envelope = await produce(db, "t1", "s1")
        await eventually(lambda: _is(effects(db, envelope.id), 1), what="handled")

    producer = request_span.get_span_context()
    assert envelope.traceparent.startswith(f"00-{producer.trace_id:032x}-{producer.span_id:016x}-")
    assert handler.trace_ids[envelope.id] == producer.trace_id
    [span] = [s for s in exporter.get_finished_spans() if s.kind == trace.SpanKind.CONSUMER]
    assert span.context is not None and span.context.span_id == handler.span_ids[envelope.id]
    assert span.parent is not None and span.parent.span_id == producer.span_id
    assert [link.context.span_id for link in span.links] == [producer.span_id]
    assert span.attributes is not None and span.attributes["messaging.message.id"] == envelope.id


async def test_handler_session_is_scoped_to_the_envelope_tenant(db: Database, redis: Redis) -> None:
    handler = Recorder()
    consumer = make_consumer(db, redis, handler)
    async with running(make_relay(db, redis), consumer):
        a1 = await produce(db, "tenant-a", "a1")
        a2 = await produce(db, "tenant-a", "a2")
        b1 = await produce(db, "tenant-b", "b1")
        await eventually(lambda: _is(effects(db), 3), what="three events handled")

    assert handler.tenants == {a1.id: "tenant-a", a2.id: "tenant-a", b1.id: "tenant-b"}
    async with db.system_session() as session:
        rows = {r.event_id: (r.tenant_id, r.states_seen) for r in (await session.scalars(select(Effect)))}
    # each handler saw only its tenant's state (a1 ran before a2 was committed, or after)
    assert rows[a1.id][0] == "tenant-a" and rows[a1.id][1] in {1, 2}
    assert rows[a2.id] == ("tenant-a", 2)
    assert rows[b1.id] == ("tenant-b", 1)
    async with db.system_session() as session:
        tenants = {r.id: r.tenant_id for r in await session.execute(select(OUTBOX.c.id, OUTBOX.c.tenant_id))}
    assert tenants == {a1.id: "tenant-a", a2.id: "tenant-a", b1.id: "tenant-b"}

    async with db.session("tenant-a") as session:
        with pytest.raises(TenantScopeError):
            await emit(session, EVENT_TYPE, StringValue(value="x"), source=SOURCE, tenant="tenant-b")


async def test_stop_finishes_the_event_in_flight(db: Database, redis: Redis) -> None:
    started = asyncio.Event()
    record = Recorder()

    async def slow(envelope: EventEnvelope, session: AsyncSession) -> None:
        started.set()
        await asyncio.sleep(0.3)
        await record(envelope, session)

    relay = make_relay(db, redis)
    consumer = make_consumer(db, redis, slow)
    task = asyncio.create_task(consumer.run())
    async with running(relay):
        envelope = await produce(db, "t1", "s1")
        await asyncio.wait_for(started.wait(), 5)
        await consumer.stop()  # returns once the handler has finished, committed and acked
    await task
    assert await effects(db, envelope.id) == 1
    assert await pending(redis) == 0
