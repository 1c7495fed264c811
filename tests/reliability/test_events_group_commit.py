"""StreamConsumer(group_commit=True): one read's entries of a tenant in one transaction, effects once.

Real SQLite/PostgreSQL and Redis, the helpers of events_support.py.
"""

from __future__ import annotations

from functools import partial

from redis.asyncio import Redis
from sqlalchemy import select

from kit.db import Database
from kit.events import OutboxRelay, dead_letters
from tests.reliability.events_support import (
    OUTBOX,
    Effect,
    Recorder,
    _is,
    applied_once,
    effects,
    eventually,
    make_consumer,
    make_relay,
    pending,
    produce,
    running,
)


async def _published(db: Database, redis: Redis, n: int) -> None:
    """Relay the outbox before any consumer runs, so the consumer reads all of it at once."""
    relay = make_relay(db, redis)
    async with running(relay):
        await eventually(lambda: _is_at_least(relay.published, n), what="published")


async def _is_at_least(value: int, n: int) -> bool:
    return value >= n


async def _is_at_least_now(relay: OutboxRelay, n: int) -> bool:
    return relay.published >= n


async def test_a_tenants_entries_apply_in_one_transaction_each_once(db: Database, redis: Redis) -> None:
    a = [await produce(db, "tenant-a", f"a{i}") for i in range(5)]
    b = [await produce(db, "tenant-b", f"b{i}") for i in range(2)]
    await _published(db, redis, 7)
    handler = Recorder()
    consumer = make_consumer(db, redis, handler, group_commit=True)
    async with running(consumer):
        await eventually(lambda: _is(effects(db), 7), what="all handled")
        assert await pending(redis) == 0
    assert consumer.groups == 2 and consumer.handled == 7
    assert handler.tenants == {**{e.id: "tenant-a" for e in a}, **{e.id: "tenant-b" for e in b}}
    async with db.system_session() as session:
        rows = {r.event_id: (r.tenant_id, r.states_seen) for r in await session.scalars(select(Effect))}
    assert {rows[e.id] for e in a} == {("tenant-a", 5)} and {rows[e.id] for e in b} == {("tenant-b", 2)}


async def test_a_failing_entry_fails_alone_and_the_rest_of_its_group_applies_once(
    db: Database, redis: Redis
) -> None:
    good = [await produce(db, "t1", f"good{i}") for i in range(3)]
    bad = await produce(db, "t1", "bad")
    more = [await produce(db, "t1", f"more{i}") for i in range(2)]
    await _published(db, redis, 6)
    handler = Recorder(poison={"bad"})
    consumer = make_consumer(db, redis, handler, group_commit=True)
    async with running(consumer):
        for e in [*good, *more]:
            await eventually(partial(applied_once, db, e.id), what="the poison's neighbours")
        await eventually(lambda: _is(pending(redis), 0), what="poison dead-lettered")
    [letter] = await dead_letters(redis, "testgroup")
    assert letter.event_id == bad.id and letter.deliveries == 5
    assert await effects(db, bad.id) == 0
    # the group ran once (rolled back at the poison), then each entry alone: effects still once
    assert [c for c in handler.calls if c[0] == good[0].id] == [(good[0].id, "good0")] * 2
    assert consumer.groups == 0 and consumer.handled == 5


async def test_an_already_processed_entry_in_a_group_is_skipped(db: Database, redis: Redis) -> None:
    events = [await produce(db, "t1", f"s{i}") for i in range(3)]
    await _published(db, redis, 3)
    first = make_consumer(db, redis, Recorder(), group_commit=True)
    async with running(first):
        await eventually(lambda: _is(effects(db), 3), what="handled")
    # The same entries again (a redelivery after a crash before XACK): claimed rows say applied.
    async with db.system_session() as session:
        ids = [r.id for r in await session.execute(select(OUTBOX.c.id))]
    assert sorted(ids) == sorted(e.id for e in events)
    await redis.xgroup_setid("salesops:events:testsvc", "testgroup", "0")
    again = Recorder()
    second = make_consumer(db, redis, again, group_commit=True)
    async with running(second):
        await eventually(lambda: _is(pending(redis), 0), what="re-read")
        await eventually(lambda: _is_at_least(second.skipped, 3), what="skipped")
    assert again.calls == [] and await effects(db) == 3


async def test_coalesce_reads_entries_arriving_one_by_one_together(db: Database, redis: Redis) -> None:
    """coalesce: after a read, the next waits that long, so entries published one at a time meanwhile
    (a burst's producer commits a few at a time) are read and applied in one transaction."""
    relay = make_relay(db, redis)
    consumer = make_consumer(db, redis, Recorder(), group_commit=True, coalesce=5.0)
    async with running(relay, consumer):
        await produce(db, "t1", "first")
        await eventually(lambda: _is(effects(db), 1), what="the first, read alone")
        for i in range(4):  # each published before the next is made: separate XADDs
            await produce(db, "t1", f"next{i}")
            await eventually(partial(_is_at_least_now, relay, 2 + i), what="published")
        await eventually(lambda: _is(effects(db), 5), what="the rest")
        await eventually(lambda: _is(pending(redis), 0), what="acknowledged")
    assert consumer.groups == 1 and consumer.handled == 5
