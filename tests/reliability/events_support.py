"""The reliability tests' world for kit.events: a producer's table and a consumer's effect table
beside the outbox and the processed-event claims, and the helpers that drive a relay and consumers
on it (the fixtures `db` and `redis` are in conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.wrappers_pb2 import StringValue
from opentelemetry import trace
from redis.asyncio import Redis
from sqlalchemy import Integer, MetaData, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.db import Database, TenantScoped
from kit.events import (
    EventEnvelope,
    OutboxRelay,
    StreamConsumer,
    emit,
    outbox_table,
    processed_events_table,
    service_stream,
    unpack_payload,
)

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


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.02)


async def _is(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def _true(value: bool) -> bool:
    return value


async def produce(db: Database, tenant: str, subject: str, *, commit: bool = True) -> EventEnvelope:
    """One state change and its event in one transaction."""
    async with db.session(tenant) as session:
        session.add(State(id=subject))
        envelope = await emit(session, EVENT_TYPE, StringValue(value=subject), source=SOURCE, subject=subject)
        if commit:
            await session.commit()
    return envelope


async def produce_many(db: Database, n: int) -> list[str]:
    """n events (no state) committed together; their ids."""
    async with db.session("t1") as session:
        ids = [
            (await emit(session, EVENT_TYPE, StringValue(value=str(i)), source=SOURCE, subject=str(i))).id
            for i in range(n)
        ]
        await session.commit()
    return ids


async def count(db: Database, stmt: Any) -> int:
    async with db.system_session() as session:
        return int(await session.scalar(stmt) or 0)


async def effects(db: Database, event_id: str | None = None) -> int:
    stmt = select(func.count()).select_from(Effect)
    if event_id is not None:
        stmt = stmt.where(Effect.event_id == event_id)
    return await count(db, stmt)


async def applied_once(db: Database, event_id: str) -> bool:
    """For `eventually(partial(applied_once, db, event_id))` in a loop (a lambda's default argument
    would hide its type)."""
    return await effects(db, event_id) == 1


async def stream_entries(redis: Redis, stream: str = STREAM) -> list[tuple[bytes, dict[bytes, bytes]]]:
    entries: Any = await redis.xrange(stream)  # typed loosely by redis-py; bytes without decode_responses
    return list(entries)


async def stream_event_ids(redis: Redis, stream: str = STREAM) -> list[str]:
    return [fields[b"id"].decode() for _, fields in await stream_entries(redis, stream)]


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
