"""kit.events end to end on real SQLite/PostgreSQL and a real Redis: nothing lost, effects once.

The crash tests run the relay or a consumer as a separate process (this module
run with `python -m tests.reliability.test_events <role> ...`) and SIGKILL it at
the worst moment, announced on stdout by the fault-injection hooks:
`OutboxRelay(after_xadd=...)` (events XADDed, rows not yet marked published) and
`StreamConsumer(before_ack=...)` (effects committed, XACK not sent), or from
inside the handler (effect written, transaction not committed).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.wrappers_pb2 import StringValue
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis
from sqlalchemy import Integer, MetaData, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.db import Database, TenantScoped, TenantScopeError
from kit.events import (
    Delivery,
    EventEnvelope,
    OutboxRelay,
    StreamConsumer,
    dead_letters,
    dlq_stream,
    emit,
    outbox_table,
    processed_events_table,
    replay_dead_letters,
    service_stream,
    unpack_payload,
)
from kit.events.relay import trim_read_entries

REPO = Path(__file__).resolve().parents[2]
SOURCE = "testsvc"
STREAM = service_stream(SOURCE)
GROUP = "testgroup"
EVENT_TYPE = "testsvc.thing.changed"


class Base(DeclarativeBase):
    metadata = MetaData()


OUTBOX = outbox_table(Base.metadata)
PROCESSED = processed_events_table(Base.metadata)


class State(TenantScoped, Base):
    """The producer's state: a row changed in the same transaction as the event."""

    __tablename__ = "state"
    id: Mapped[str] = mapped_column(String(26), primary_key=True)


class Effect(TenantScoped, Base):
    """The consumer's effect: one row per handler run (no unique key, so doubles would show)."""

    __tablename__ = "effect"
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(26), index=True)
    states_seen: Mapped[int] = mapped_column(Integer)


# -- helpers ------------------------------------------------------------------


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.02)


async def produce(db: Database, tenant: str, subject: str, *, commit: bool = True) -> EventEnvelope:
    """One state change and its event in one transaction."""
    async with db.session(tenant) as session:
        session.add(State(id=subject))
        envelope = await emit(session, EVENT_TYPE, StringValue(value=subject), source=SOURCE, subject=subject)
        if commit:
            await session.commit()
    return envelope


async def count(db: Database, stmt: Any) -> int:
    async with db.system_session() as session:
        return int(await session.scalar(stmt) or 0)


async def effects(db: Database, event_id: str | None = None) -> int:
    stmt = select(func.count()).select_from(Effect)
    if event_id is not None:
        stmt = stmt.where(Effect.event_id == event_id)
    return await count(db, stmt)


async def stream_event_ids(redis: Redis, stream: str = STREAM) -> list[str]:
    return [f[b"id"].decode() for _, f in await redis.xrange(stream)]


async def pending(redis: Redis, group: str = GROUP) -> int:
    info = await redis.xpending(STREAM, group)
    return int(info["pending"])


@dataclass
class Recorder:
    """A handler that applies an effect and remembers what it saw."""

    poison: set[str] = field(default_factory=set)
    calls: list[tuple[str, str]] = field(default_factory=list)
    tenants: dict[str, str] = field(default_factory=dict)
    trace_ids: dict[str, int] = field(default_factory=dict)
    span_ids: dict[str, int] = field(default_factory=dict)

    async def __call__(self, envelope: EventEnvelope, session: AsyncSession) -> None:
        subject = unpack_payload(envelope, StringValue).value
        self.calls.append((envelope.id, subject))
        if subject in self.poison:
            raise ValueError(f"poison {subject}")
        ctx = trace.get_current_span().get_span_context()
        self.trace_ids[envelope.id] = ctx.trace_id
        self.span_ids[envelope.id] = ctx.span_id
        self.tenants[envelope.id] = str(session.info.get("tenant"))
        seen = len((await session.execute(select(State))).scalars().all())
        session.add(Effect(event_id=envelope.id, states_seen=seen))


@contextlib.asynccontextmanager
async def running(*workers: OutboxRelay | StreamConsumer) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield
    finally:
        for w in workers:
            await asyncio.wait_for(w.stop(), 10)
        for t in tasks:
            await t


def make_relay(db: Database, redis: Redis, **kw: Any) -> OutboxRelay:
    return OutboxRelay(db, redis, STREAM, table=OUTBOX, poll_interval=0.05, **kw)


def make_consumer(db: Database, redis: Redis, handler: Any, **kw: Any) -> StreamConsumer:
    kw.setdefault("min_idle", 0.3)
    kw.setdefault("claim_interval", 0.1)
    kw.setdefault("retry_delay", 0.02)
    kw.setdefault("block", 0.2)
    return StreamConsumer(redis, db, GROUP, [STREAM], handler, processed_table=PROCESSED, **kw)


async def open_db(url: str) -> Database:
    db = Database(url)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    return db


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = await open_db(database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


# -- child processes for the crash tests ------------------------------------


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.reliability.test_events",
        *args,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )


async def _await_marker(proc: asyncio.subprocess.Process, marker: str, timeout: float = 20.0) -> str:
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode()
        if not line:
            raise AssertionError(f"child exited ({await proc.wait()}) before printing {marker}")
        if line.startswith(marker):
            return line.strip()


async def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGKILL)
    await proc.wait()


async def _hang(marker: str) -> None:
    print(marker, flush=True)
    await asyncio.Event().wait()  # until SIGKILL


async def _child(role: str, db_url: str, redis_url: str, mode: str = "") -> None:
    db = Database(db_url)
    redis = Redis.from_url(redis_url)
    if role == "relay":

        async def after_xadd(ids: Sequence[str]) -> None:
            await _hang("XADDED " + ",".join(ids))

        await make_relay(db, redis, after_xadd=after_xadd).run()
    elif role == "consumer":

        async def before_ack(done: Sequence[Delivery]) -> None:
            await _hang("BEFORE_ACK")

        async def handler(envelope: EventEnvelope, session: AsyncSession) -> None:
            await Recorder()(envelope, session)
            if mode == "mid_handler":
                await session.flush()  # the effect is written, the transaction not committed
                await _hang("IN_HANDLER")

        consumer = make_consumer(
            db, redis, handler, name="doomed", before_ack=before_ack if mode == "before_ack" else None
        )
        await consumer.run()


# -- 1. commit -> once; rollback -> nothing ---------------------------------


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


async def _is(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def _true(value: bool) -> bool:
    return value


# -- 2. relay killed between XADD and marking published ----------------------


async def test_relay_killed_after_xadd_resends_and_effect_applies_once(
    db: Database, redis: Redis, database_url: str, redis_url: str
) -> None:
    envelope = await produce(db, "t1", "s1")
    child = await _spawn("relay", database_url, redis_url)
    try:
        marker = await _await_marker(child, "XADDED")
    finally:
        await _kill(child)
    assert child.returncode == -signal.SIGKILL
    assert marker == f"XADDED {envelope.id}"
    assert await stream_event_ids(redis) == [envelope.id]  # it reached Redis ...
    unpublished = select(func.count()).select_from(OUTBOX).where(OUTBOX.c.published_at.is_(None))
    assert await count(db, unpublished) == 1  # ... but the outbox never heard of it

    handler = Recorder()
    consumer = make_consumer(db, redis, handler)
    relay = make_relay(db, redis)
    async with running(relay, consumer):
        await eventually(lambda: _is(count(db, unpublished), 0), what="restarted relay publishes")
        await eventually(lambda: _is(pending(redis), 0), what="both copies acknowledged")
        await eventually(lambda: _ready(consumer), what="consumer saw both copies")

    assert await stream_event_ids(redis) == [envelope.id, envelope.id]  # sent twice
    assert await effects(db, envelope.id) == 1  # applied once
    assert (consumer.handled, consumer.skipped) == (1, 1)


async def _ready(consumer: StreamConsumer) -> bool:
    return consumer.handled + consumer.skipped >= 2


# -- 3. consumer killed before XACK ------------------------------------------


@pytest.mark.parametrize("mode", ["mid_handler", "before_ack"])
async def test_consumer_killed_before_ack_is_reclaimed_and_effect_applies_once(
    db: Database, redis: Redis, database_url: str, redis_url: str, mode: str
) -> None:
    relay = make_relay(db, redis)
    async with running(relay):
        envelope = await produce(db, "t1", "s1")
        await eventually(lambda: _is(relay_backlog(relay), 0), what="published")

    child = await _spawn("consumer", database_url, redis_url, mode)
    try:
        await _await_marker(child, "IN_HANDLER" if mode == "mid_handler" else "BEFORE_ACK")
    finally:
        await _kill(child)
    assert child.returncode == -signal.SIGKILL
    [entry] = await redis.xpending_range(STREAM, GROUP, "-", "+", 10)
    assert entry["consumer"] == b"doomed"
    # mid-handler: the transaction died with the process; before-ack: it had committed.
    assert await effects(db, envelope.id) == (1 if mode == "before_ack" else 0)

    rescuer = make_consumer(db, redis, Recorder(), name="rescuer")
    async with running(rescuer):
        await eventually(lambda: _is(pending(redis), 0), what="reclaimed and acknowledged")

    assert await effects(db, envelope.id) == 1
    if mode == "before_ack":
        assert (rescuer.handled, rescuer.skipped) == (0, 1)
    else:
        assert (rescuer.handled, rescuer.skipped) == (1, 0)


async def relay_backlog(relay: OutboxRelay) -> int:
    return await relay.backlog()


# -- 4. poison event -> DLQ after N tries; replay -----------------------------


async def test_poison_event_is_dead_lettered_others_flow_and_replay_moves_it_back(
    db: Database, redis: Redis
) -> None:
    handler = Recorder(poison={"bad"})
    consumer = make_consumer(db, redis, handler)  # max_deliveries: the default, 5
    async with running(make_relay(db, redis), consumer):
        bad = await produce(db, "t1", "bad")
        good = [await produce(db, "t1", f"good{i}") for i in range(3)]
        for g in good:
            await eventually(lambda g=g: _is(effects(db, g.id), 1), what="good events behind the poison")
        await eventually(lambda: _is(redis.xlen(dlq_stream(GROUP)), 1), what="poison dead-lettered")
        assert await pending(redis) == 0

        [letter] = await dead_letters(redis, GROUP)
        assert letter.event_id == bad.id
        assert letter.stream == STREAM
        assert letter.entry_id == (await redis.xrange(STREAM, count=1))[0][0].decode()
        assert letter.group == GROUP
        assert letter.deliveries == 5
        assert "ValueError: poison bad" in letter.error
        assert [c for c in handler.calls if c[0] == bad.id] == [(bad.id, "bad")] * 5
        assert await effects(db, bad.id) == 0

        handler.poison.clear()  # the bug is fixed; replay
        assert await replay_dead_letters(redis, GROUP) == 1
        assert await redis.xlen(dlq_stream(GROUP)) == 0
        await eventually(lambda: _is(effects(db, bad.id), 1), what="replayed event handled")
    assert await stream_event_ids(redis) == [bad.id, *(g.id for g in good), bad.id]
    assert consumer.dead_lettered == 1


# -- 5. trace context ----------------------------------------------------------


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


# -- 6. tenants ------------------------------------------------------------------


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


# -- graceful stop ----------------------------------------------------------------


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


# -- relay: several instances, notify latency ---------------------------


async def test_two_relays_publish_every_event(db: Database, redis: Redis) -> None:
    async with db.session("t1") as session:
        ids = [
            (await emit(session, EVENT_TYPE, StringValue(value=str(i)), source=SOURCE, subject=str(i))).id
            for i in range(300)
        ]
        await session.commit()
    relays = [make_relay(db, redis, batch_size=50), make_relay(db, redis, batch_size=50)]
    async with running(*relays):
        await eventually(lambda: _is(relays[0].backlog(), 0), what="all published")
    sent = await stream_event_ids(redis)
    assert set(sent) == set(ids)
    if not db.is_sqlite:  # SKIP LOCKED: no row is taken by both
        assert len(sent) == len(ids)
        assert sum(r.published for r in relays) == len(ids)


async def test_commit_wakes_the_relay_without_waiting_for_the_poll(db: Database, redis: Redis) -> None:
    relay = OutboxRelay(db, redis, STREAM, table=OUTBOX, poll_interval=30.0)
    async with running(relay):
        await asyncio.sleep(0.1)  # the relay is asleep now, for 30 s
        envelope = await produce(db, "t1", "s1")
        await eventually(lambda: _is(redis.xlen(STREAM), 1), timeout=2.0, what="published on commit")
    assert await stream_event_ids(redis) == [envelope.id]


async def test_an_idle_relay_polls_less_and_a_commit_still_wakes_it_at_once(
    db: Database, redis: Redis
) -> None:
    """Each empty poll doubles the next poll timeout (up to idle_interval); a local commit ends
    the sleep at once, and the poll after a publish is back at poll_interval."""
    relay = OutboxRelay(db, redis, STREAM, table=OUTBOX, poll_interval=0.01, idle_interval=5.0)
    polls = 0
    sleeps: list[tuple[float, bool]] = []  # (timeout, ended by a wake-up)
    asleep: list[float] = []  # the timeout of the sleep in progress
    woke_publish: list[int] = []  # index in `sleeps` of the sleep that ended right before a publishing poll
    publish_once, sleep = relay.publish_once, relay._sleep

    async def counted() -> int:
        nonlocal polls
        polls += 1
        sent = await publish_once()
        if sent and sleeps:
            woke_publish.append(len(sleeps) - 1)
        return sent

    async def recorded(seconds: float) -> bool:
        asleep.append(seconds)
        woken = await sleep(seconds)
        asleep.clear()
        sleeps.append((seconds, woken))
        return woken

    relay.publish_once = counted  # type: ignore[method-assign]
    relay._sleep = recorded  # type: ignore[method-assign]
    async with running(relay):
        # Commit while the relay sits in a long sleep: 10 ms doubled seven times (about 1.3 s
        # of empty polls, which at a fixed 10 ms would have been ~130).
        await eventually(lambda: _true(bool(asleep) and asleep[0] >= 1.28), what="a backed-off sleep")
        assert polls <= 10, polls
        envelope = await produce(db, "t1", "s1")
        # (the XADD lands before publish_once returns: wait for the poll itself to finish)
        await eventually(lambda: _true(bool(woke_publish)), what="published on commit")
        assert len(woke_publish) == 1 and await redis.xlen(STREAM) == 1, woke_publish
        seconds, woken = sleeps[woke_publish[0]]
        assert woken and seconds >= 1.28, sleeps  # the backed-off sleep, ended by the commit
        await eventually(lambda: _true(len(sleeps) > woke_publish[0] + 1), what="the sleep after the publish")
        assert sleeps[woke_publish[0] + 1][0] == 0.01, sleeps  # back to poll_interval after a publish
    assert await stream_event_ids(redis) == [envelope.id]


async def test_a_busy_relay_woken_again_waits_out_its_coalesce_and_sends_those_commits_together(
    db: Database, redis: Redis
) -> None:
    """After a batch, a commit that wakes the relay starts the next batch no sooner than `coalesce`
    after the last one started: the commits of that time go out in one batch. A commit after a
    quiet spell (the first here) is published at once."""
    relay = OutboxRelay(db, redis, STREAM, table=OUTBOX, poll_interval=5.0, coalesce=1.0)
    batches: list[int] = []
    publish_once = relay.publish_once

    async def counted() -> int:
        sent = await publish_once()
        if sent:
            batches.append(sent)
        return sent

    relay.publish_once = counted  # type: ignore[method-assign]
    async with running(relay):
        await asyncio.sleep(0.1)  # asleep after an empty poll
        first = await produce(db, "t1", "s1")
        await eventually(lambda: _true(batches == [1]), timeout=2.0, what="the first commit at once")
        second = await produce(db, "t1", "s2")
        await asyncio.sleep(0.2)  # the relay, woken by the second, waits for the rest of its second
        third = await produce(db, "t1", "s3")
        await eventually(lambda: _is(redis.xlen(STREAM), 3), what="all three published")
    assert batches == [1, 2]
    assert await stream_event_ids(redis) == [first.id, second.id, third.id]


# -- trimming: only what every group has read and acknowledged --------------------


async def _produce_many(db: Database, n: int) -> list[str]:
    async with db.session("t1") as session:
        ids = [
            (await emit(session, EVENT_TYPE, StringValue(value=str(i)), source=SOURCE, subject=str(i))).id
            for i in range(n)
        ]
        await session.commit()
    return ids


async def test_trimming_keeps_what_a_slow_group_has_not_read(db: Database, redis: Redis) -> None:
    """Over its length limit the relay trims, but never below what the slow group still needs."""
    seen: list[str] = []

    async def slow_handler(envelope: EventEnvelope, session: AsyncSession) -> None:
        seen.append(envelope.id)

    slow = StreamConsumer(
        redis, db, "slowgroup", [STREAM], slow_handler, processed_table=PROCESSED, block=0.2, min_idle=0.3
    )
    await slow.ensure_groups()  # the group exists; its consumer is down for now
    ids = await _produce_many(db, 300)
    relay = make_relay(db, redis, batch_size=50, maxlen=10, trim_interval=0.0)
    async with running(relay, make_consumer(db, redis, Recorder())):
        await eventually(lambda: _is(effects(db), 300), timeout=90, what="the fast group handled everything")
        assert await relay.trim() == 0  # the slow group has read nothing: nothing may go
    assert await stream_event_ids(redis) == ids
    assert relay.trimmed == 0

    async with running(slow):
        await eventually(lambda: _aw(len(seen) == 300), timeout=90, what="the slow group handled everything")
    assert seen == ids
    # Now both groups have read and acknowledged everything: all but the last entry goes.
    assert await relay.trim() == 299
    assert await stream_event_ids(redis) == ids[-1:]


async def _entry_ids(redis: Redis, stream: str) -> list[str]:
    entries: Any = await redis.xrange(stream)
    return [eid.decode() for eid, _ in entries]


async def test_trim_stops_at_the_oldest_pending_entry_of_any_group(redis: Redis) -> None:
    stream = "salesops:events:trimtest"
    added: list[Any] = [await redis.xadd(stream, {"n": str(i)}) for i in range(30)]
    ids = [eid.decode() for eid in added]
    assert await trim_read_entries(redis, stream) == 0  # no group: nobody has read anything
    await redis.xgroup_create(stream, "a", id="0")
    await redis.xgroup_create(stream, "b", id="0")
    await redis.xreadgroup("a", "a1", {stream: ">"}, count=20)
    await redis.xack(stream, "a", *ids[:15])  # entries 15-19 stay pending with a1
    await redis.xreadgroup("b", "b1", {stream: ">"}, count=25)
    await redis.xack(stream, "b", *ids[:25])
    assert await trim_read_entries(redis, stream, above=100) == 0  # under the limit
    assert await trim_read_entries(redis, stream) == 15
    assert await _entry_ids(redis, stream) == ids[15:]

    await redis.xgroup_create(stream, "late", id="$")  # reads only new entries: holds nothing back
    await redis.xack(stream, "a", *ids[15:20])
    assert await trim_read_entries(redis, stream) == 4  # a's last delivered entry (19) is kept
    await redis.xreadgroup("a", "a1", {stream: ">"})
    await redis.xack(stream, "a", *ids[20:])
    await redis.xreadgroup("b", "b1", {stream: ">"})  # b's 25-29 delivered, not acknowledged
    assert await trim_read_entries(redis, stream) == 6  # 19-24: b still needs 25 on
    assert await _entry_ids(redis, stream) == ids[25:]


async def test_an_entry_deleted_before_it_was_processed_is_dead_lettered_not_acknowledged(
    db: Database, redis: Redis
) -> None:
    async with running(make_relay(db, redis)):
        envelope = await produce(db, "t1", "s1")
        await eventually(lambda: _is(redis.xlen(STREAM), 1), what="published")
    await redis.xgroup_create(STREAM, GROUP, id="0")
    read: Any = await redis.xreadgroup(GROUP, "doomed", {STREAM: ">"})
    [[_, [(entry_id, _)]]] = read
    await redis.xdel(STREAM, entry_id)  # deleted by hand while pending with "doomed"
    consumer = make_consumer(db, redis, Recorder(), name="doomed")
    async with running(consumer):
        await eventually(lambda: _is(redis.xlen(dlq_stream(GROUP)), 1), what="loss recorded")
    [letter] = await dead_letters(redis, GROUP)
    assert letter.entry_id == entry_id.decode() and letter.stream == STREAM
    assert "deleted" in letter.error and envelope.id not in letter.error
    assert await pending(redis) == 0
    assert await replay_dead_letters(redis, GROUP) == 0  # nothing to replay: it stays visible
    assert await redis.xlen(dlq_stream(GROUP)) == 1


async def _aw(value: bool) -> bool:
    return value


if __name__ == "__main__":
    # Child process of the crash tests: `python -m tests.reliability.test_events ROLE DB REDIS [MODE]`.
    asyncio.run(_child(*sys.argv[1:]))
