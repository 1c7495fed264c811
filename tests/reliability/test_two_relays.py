"""Two relays on one database, of two replicas (with two consumers of one group) or of one
process: every event is sent exactly once (and applied once). On PostgreSQL the batch is held FOR
UPDATE SKIP LOCKED through its XADD and mark; on SQLite the relays take turns by a file lock
(without it, a third to two thirds of the events were sent twice, each relay reading rows before
either marked them; the consumers' processed-event claim still applied them once)."""

from __future__ import annotations

import asyncio
import fcntl
import os
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
    _true,
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


async def test_two_relays_of_one_process_share_a_backlog(db: Database, redis: Redis) -> None:
    """flock is not fair and a relay with a backlog takes its turn again at once: without the hand
    over, the first relay published all 2,000 and the second none (and waited all along)."""
    await produce_many(db, 2_000)
    relays = [make_relay(db, redis, batch_size=50), make_relay(db, redis, batch_size=50)]
    async with running(*relays):
        await eventually(lambda: _is(relays[0].backlog(), 0), timeout=60, what="all published")
    assert sum(r.published for r in relays) == 2_000
    assert min(r.published for r in relays) >= 200, [r.published for r in relays]


async def test_a_relay_waiting_for_its_turn_stops_at_once(db: Database, redis: Redis) -> None:
    """stop() while another replica's relay holds the SQLite batch turn returns without a batch
    (before, it waited for that turn as long as the other held it: shutdown hung)."""
    if not db.is_sqlite:
        pytest.skip("the batch turn is SQLite's (PostgreSQL locks the batch's rows)")
    await produce_many(db, 10)
    relay = make_relay(db, redis)
    fd = os.open(relay._batch_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the other replica's batch
        task = asyncio.create_task(relay.run())
        await eventually(lambda: _true(os.pread(fd, 1, 0) == b"w"), what="the relay asks for a turn")
        await asyncio.wait_for(relay.stop(), 5)
        await asyncio.wait_for(task, 5)
        assert relay.published == 0
        assert os.pread(fd, 1, 0) == b"\0"  # its request withdrawn
    finally:
        os.close(fd)
