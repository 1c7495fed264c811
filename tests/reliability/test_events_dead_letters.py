"""Dead letters: a poison event goes to the group's DLQ after its tries while the others flow and
a replay moves it back; an entry deleted before it was processed is recorded there, never silently
acknowledged."""

from __future__ import annotations

from functools import partial
from typing import Any

from redis.asyncio import Redis

from kit.db import Database
from kit.events import dead_letters, dlq_stream, replay_dead_letters
from tests.reliability.events_support import (
    GROUP,
    STREAM,
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
    stream_entries,
    stream_event_ids,
)


async def test_poison_event_is_dead_lettered_others_flow_and_replay_moves_it_back(
    db: Database, redis: Redis
) -> None:
    handler = Recorder(poison={"bad"})
    consumer = make_consumer(db, redis, handler)  # max_deliveries: the default, 5
    async with running(make_relay(db, redis), consumer):
        bad = await produce(db, "t1", "bad")
        good = [await produce(db, "t1", f"good{i}") for i in range(3)]
        for g in good:
            await eventually(partial(applied_once, db, g.id), what="good events behind the poison")
        await eventually(lambda: _is(redis.xlen(dlq_stream(GROUP)), 1), what="poison dead-lettered")
        assert await pending(redis) == 0

        [letter] = await dead_letters(redis, GROUP)
        assert letter.event_id == bad.id
        assert letter.stream == STREAM
        assert letter.entry_id == (await stream_entries(redis))[0][0].decode()
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
