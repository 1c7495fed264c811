"""A relay or a consumer SIGKILLed at the worst moment: nothing lost, the effect applied once.

The relay or consumer runs as a separate process (this module run with
`python -m tests.reliability.test_events_crashes <role> ...`) and is killed when it
announces the moment on stdout from the fault-injection hooks:
`OutboxRelay(after_xadd=...)` (events XADDed, rows not yet marked published) and
`StreamConsumer(before_ack=...)` (effects committed, XACK not sent), or from
inside the handler (effect written, transaction not committed).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import Database
from kit.events import Delivery, EventEnvelope, OutboxRelay, StreamConsumer
from tests.reliability.events_support import (
    GROUP,
    OUTBOX,
    STREAM,
    Recorder,
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

REPO = Path(__file__).resolve().parents[2]


async def _spawn(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.reliability.test_events_crashes",
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


# -- relay killed between XADD and marking published ----------------------


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


# -- consumer killed before XACK ------------------------------------------


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


if __name__ == "__main__":
    # Child process of the crash tests: `python -m tests.reliability.test_events_crashes ROLE DB REDIS [MODE]`.
    asyncio.run(_child(*sys.argv[1:]))
