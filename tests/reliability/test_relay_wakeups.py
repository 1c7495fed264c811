"""When an outbox relay polls: a commit wakes it at once, an idle relay backs off its polls, and a
busy one woken again waits out its coalesce so the commits of that time go out together."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from kit.db import Database
from kit.events import OutboxRelay
from tests.reliability.events_support import (
    OUTBOX,
    STREAM,
    _is,
    _true,
    eventually,
    produce,
    running,
    stream_event_ids,
)


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
