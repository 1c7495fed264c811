"""Two relays on one database, of two replicas (with two consumers of one group) or of one
process: every event is sent exactly once (and applied once). On PostgreSQL the batch is held FOR
UPDATE SKIP LOCKED through its XADD and mark; on SQLite the relays take turns by a file lock
(without it, a third to two thirds of the events were sent twice, each relay reading rows before
either marked them; the consumers' processed-event claim still applied them once)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest
from google.protobuf.wrappers_pb2 import StringValue
from redis.asyncio import Redis
from sqlalchemy import select

from kit.db import Database
from kit.events import emit
from tests.reliability.events_support import (
    EVENT_TYPE,
    SOURCE,
    Effect,
    Recorder,
    _is,
    eventually,
    make_consumer,
    make_relay,
    open_db,
    produce_many,
    running,
    stream_event_ids,
)

EVENTS = 600


@pytest.fixture
async def replicas(database_url: str) -> AsyncIterator[tuple[Database, Database]]:
    """Two Database objects on one database: each replica's own engine and pool."""
    first = await open_db(database_url)
    second = Database(database_url)
    yield first, second
    await second.dispose()
    await first.dispose()


async def test_two_replicas_relays_apply_every_event_once(
    replicas: tuple[Database, Database], redis: Redis
) -> None:
    a, b = replicas
    relays = [make_relay(a, redis, batch_size=20), make_relay(b, redis, batch_size=20)]
    consumers = [
        make_consumer(a, redis, Recorder(), name="c-a"),
        make_consumer(b, redis, Recorder(), name="c-b"),
    ]
    ids: list[str] = []
    async with running(*relays, *consumers):
        for n in range(0, EVENTS, 10):  # commits arriving while both relays run, on both replicas
            async with (a if n % 20 else b).session("t1") as session:
                for i in range(n, n + 10):
                    ids.append((await emit(session, EVENT_TYPE, StringValue(value=str(i)), source=SOURCE)).id)
                await session.commit()
        await eventually(lambda: _is(relays[0].backlog(), 0), timeout=60, what="all published")

        async def applied() -> int:
            async with a.system_session() as session:
                return len((await session.execute(select(Effect.event_id))).all())

        await eventually(lambda: _is(applied(), EVENTS), timeout=60, what="all applied")
    sent = Counter(await stream_event_ids(redis))
    async with a.system_session() as session:
        effects = Counter((await session.execute(select(Effect.event_id))).scalars())
    assert set(sent) == set(ids) and set(effects) == set(ids)
    assert set(sent.values()) == {1}  # no row taken by both relays
    assert set(effects.values()) == {1}
    assert all(r.published for r in relays)  # both took part


async def test_two_relays_of_one_process_publish_a_backlog_once(db: Database, redis: Redis) -> None:
    """Two relays on one Database (one engine) starting together on a backlog already committed:
    each event is published once, by one of them."""
    ids = await produce_many(db, 300)
    relays = [make_relay(db, redis, batch_size=50), make_relay(db, redis, batch_size=50)]
    async with running(*relays):
        await eventually(lambda: _is(relays[0].backlog(), 0), what="all published")
    sent = Counter(await stream_event_ids(redis))
    assert set(sent) == set(ids)
    assert set(sent.values()) == {1}  # no row taken by both
    assert sum(r.published for r in relays) == len(ids)
