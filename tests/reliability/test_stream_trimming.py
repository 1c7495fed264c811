"""Stream trimming: the relay trims only what every consumer group has read and acknowledged."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import Database
from kit.events import EventEnvelope, StreamConsumer
from kit.events.relay import trim_read_entries
from tests.reliability.events_support import (
    PROCESSED,
    STREAM,
    Recorder,
    _is,
    _true,
    effects,
    eventually,
    make_consumer,
    make_relay,
    produce_many,
    running,
    stream_entries,
    stream_event_ids,
)


async def test_trimming_keeps_what_a_slow_group_has_not_read(db: Database, redis: Redis) -> None:
    """Over its length limit the relay trims, but never below what the slow group still needs."""
    seen: list[str] = []

    async def slow_handler(envelope: EventEnvelope, session: AsyncSession) -> None:
        seen.append(envelope.id)

    slow = StreamConsumer(
        redis, db, "slowgroup", [STREAM], slow_handler, processed_table=PROCESSED, block=0.2, min_idle=0.3
    )
    await slow.ensure_groups()  # the group exists; its consumer is down for now
    ids = await produce_many(db, 300)
    relay = make_relay(db, redis, batch_size=50, maxlen=10, trim_interval=0.0)
    async with running(relay, make_consumer(db, redis, Recorder())):
        await eventually(lambda: _is(effects(db), 300), timeout=90, what="the fast group handled everything")
        assert await relay.trim() == 0  # the slow group has read nothing: nothing may go
    assert await stream_event_ids(redis) == ids
    assert relay.trimmed == 0

    async with running(slow):
        await eventually(
            lambda: _true(len(seen) == 300), timeout=90, what="the slow group handled everything"
        )
    assert seen == ids
    # Now both groups have read and acknowledged everything: all but the last entry goes.
    assert await relay.trim() == 299
    assert await stream_event_ids(redis) == ids[-1:]


async def _entry_ids(redis: Redis, stream: str) -> list[str]:
    return [eid.decode() for eid, _ in await stream_entries(redis, stream)]


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
