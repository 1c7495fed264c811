"""Benchmark of kit.events: one relay and one consumer on SQLite (or the given database).

Measures, in one run:
- latency from a producer's commit to the consumer's handler, p50/p99 ms, at a modest steady rate;
- events/s through one relay (commit N events in transactions of 500 with the relay
  stopped, start it, time until all are published and until all are handled);
- bare Redis XADD pipelined by 100 as the baseline, and the relay's ratio to it.

    .venv/bin/python -m bench.bench_events        # own redis-server + temporary SQLite file
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import tempfile
import time
from pathlib import Path

from google.protobuf.wrappers_pb2 import StringValue
from redis.asyncio import Redis
from sqlalchemy import MetaData, String, Table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench.verdict import Figure, pick
from kit.db import Database, TenantScoped
from kit.events import (
    EventEnvelope,
    OutboxRelay,
    StreamConsumer,
    emit,
    outbox_table,
    processed_events_table,
    service_stream,
)

SOURCE = "bench"
EVENT_TYPE = "bench.thing.changed"
LATENCY_RATE = 100.0  # events/s
LATENCY_SECONDS = 3.0
THROUGHPUT_EVENTS = 5000
COMMIT_BATCH = 500
BASELINE_ENTRIES = 20_000


class _Base(DeclarativeBase):
    metadata = MetaData()


OUTBOX: Table = outbox_table(_Base.metadata)
PROCESSED: Table = processed_events_table(_Base.metadata)


class _Thing(TenantScoped, _Base):
    __tablename__ = "bench_thing"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def _xadd_baseline(redis: Redis, entries: int = BASELINE_ENTRIES) -> float:
    key = "bench:baseline"
    await redis.delete(key)
    payload = EventEnvelope(id="x" * 26, type=EVENT_TYPE, tenant="t1").SerializeToString()
    started = time.perf_counter()
    for _ in range(entries // 100):
        async with redis.pipeline(transaction=False) as pipe:
            for _ in range(100):
                pipe.xadd(key, {"envelope": payload, "type": EVENT_TYPE, "tenant": "t1", "id": "x" * 26})
            await pipe.execute()
    elapsed = time.perf_counter() - started
    await redis.delete(key)
    return entries / elapsed


async def _wait(predicate: object, timeout: float) -> None:
    assert callable(predicate)
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("benchmark did not drain in time")
        await asyncio.sleep(0.002)


async def run(redis_url: str, database_url: str) -> dict[str, float]:
    """Run the benchmark (about 10 s) and return its figures."""
    redis = Redis.from_url(redis_url)
    db = Database(database_url)
    stream = service_stream(SOURCE)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(_Base.metadata.drop_all)
            await conn.run_sync(_Base.metadata.create_all)
        await redis.delete(stream, "salesops:dlq:bench-consumer")
        baseline = await _xadd_baseline(redis)

        committed_at: dict[str, float] = {}
        latencies: list[float] = []
        handled: set[str] = set()

        async def handler(envelope: EventEnvelope, session: AsyncSession) -> None:
            now = time.perf_counter()
            started = committed_at.get(envelope.id)
            if started is not None:
                latencies.append((now - started) * 1000)
            handled.add(envelope.id)

        relay = OutboxRelay(db, redis, stream, table=OUTBOX, poll_interval=0.05)
        consumer = StreamConsumer(
            redis, db, "bench-consumer", [stream], handler, processed_table=PROCESSED, batch_size=100
        )
        relay_task = asyncio.create_task(relay.run())
        tasks = [relay_task, asyncio.create_task(consumer.run())]
        try:
            # 0. warm up: connections, consumer group, first round trips
            for i in range(20):
                async with db.session("t1") as session:
                    await emit(session, EVENT_TYPE, StringValue(value=str(i)), source=SOURCE)
                    await session.commit()
            await _wait(lambda: len(handled) >= 20, 30)
            handled.clear()

            # 1. latency at a steady, modest rate: one transaction (state row + event) per event
            count = int(LATENCY_RATE * LATENCY_SECONDS)
            start = time.perf_counter()
            for i in range(count):
                delay = start + i / LATENCY_RATE - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                async with db.session("t1") as session:
                    session.add(_Thing(id=f"lat-{i}"))
                    env = await emit(session, EVENT_TYPE, StringValue(value=str(i)), source=SOURCE)
                    await session.commit()
                committed_at[env.id] = time.perf_counter()
            await _wait(lambda: len(handled) >= count, 30)
            latency = list(latencies)

            # 2. throughput: N events committed in transactions of COMMIT_BATCH while the
            #    relay is stopped, then one relay publishes the backlog (consumer running)
            handled.clear()
            committed_at.clear()
            await relay.stop()
            await relay_task
            start = time.perf_counter()
            for first in range(0, THROUGHPUT_EVENTS, COMMIT_BATCH):
                async with db.session("t1") as session:
                    for i in range(first, first + COMMIT_BATCH):
                        await emit(session, EVENT_TYPE, StringValue(value=str(i)), source=SOURCE)
                    await session.commit()
            commit_rate = THROUGHPUT_EVENTS / (time.perf_counter() - start)
            published_before = relay.published
            start = time.perf_counter()
            tasks.append(asyncio.create_task(relay.run()))
            await _wait(lambda: relay.published - published_before >= THROUGHPUT_EVENTS, 60)
            published = time.perf_counter()
            await _wait(lambda: len(handled) >= THROUGHPUT_EVENTS, 60)
            consumed = time.perf_counter()
        finally:
            await relay.stop()
            await consumer.stop()
            for task in tasks:
                with contextlib.suppress(Exception):
                    await task
        relay_rate = THROUGHPUT_EVENTS / (published - start)
        return {
            "latency_p50_ms": statistics.median(latency),
            "latency_p99_ms": _percentile(latency, 0.99),
            "latency_max_ms": max(latency),
            "latency_events": float(len(latency)),
            "commit_events_per_s": commit_rate,
            "relay_events_per_s": relay_rate,
            "end_to_end_events_per_s": THROUGHPUT_EVENTS / (consumed - start),
            "baseline_xadd_pipelined100_per_s": baseline,
            "relay_to_baseline_ratio": relay_rate / baseline,
        }
    finally:
        await redis.aclose()
        await db.dispose()


def main() -> None:
    print(json.dumps({k: round(v, 3) for k, v in measure().items()}, indent=2))


def measure() -> dict[str, float]:
    """Run against a private redis-server and a temporary SQLite file, on uvloop as services run."""
    import uvloop

    from deploy.local.infra import start_redis

    with tempfile.TemporaryDirectory() as tmp:
        server = start_redis(Path(tmp) / "redis", persist=False)
        try:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(run(server.address, url))
        finally:
            server.stop()


def suite(quick: bool) -> list[Figure]:
    """Verdict figures (bench.verdict); the relay against pipelined XADD on the same redis-server."""
    f = measure()
    return [
        pick(
            f,
            "relay_events_per_s",
            "events/s",
            name="outbox relay throughput",
            baseline="baseline_xadd_pipelined100_per_s",
        ),
        pick(
            f,
            "end_to_end_events_per_s",
            "events/s",
            name="commit -> handled throughput",
            baseline="baseline_xadd_pipelined100_per_s",
        ),
        pick(f, "latency_p99_ms", "ms", name="commit -> handler p99"),
    ]


if __name__ == "__main__":
    main()
