"""kit.runtime hooks: consumers and named background tasks started and stopped by the runtime."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

import pytest
from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import AsyncSession

from kit import runtime as runtime_module
from kit.config import Settings
from kit.db import NAMING_CONVENTION
from kit.events import (
    Delivery,
    EventEnvelope,
    new_envelope,
    outbox_table,
    processed_events_table,
    service_stream,
)
from kit.runtime import Background, ConsumerSpec, Runtime, ServiceSpec, build_consumer, start_role
from salesops.common.v1.types_pb2 import Money

metadata = MetaData(naming_convention=NAMING_CONVENTION)
OUTBOX = outbox_table(metadata)
PROCESSED = processed_events_table(metadata)


class Loop:
    def __init__(self) -> None:
        self.running = asyncio.Event()
        self.stopped = asyncio.Event()
        self.finished = False

    async def run(self) -> None:
        self.running.set()
        await self.stopped.wait()
        self.finished = True

    async def stop(self) -> None:
        self.stopped.set()


class Recorder:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.acked: list[str] = []

    async def __call__(self, envelope: EventEnvelope, session: AsyncSession) -> None:
        self.seen.append(envelope.subject)

    async def before_ack(self, deliveries: Sequence[Delivery]) -> None:
        self.acked += [d.event_id for d in deliveries]


@pytest.fixture
async def rt(sqlite_url: str, redis_url: str) -> AsyncIterator[Runtime]:
    runtime = Runtime(replace(Settings.from_env("pipeline"), database_url=sqlite_url, redis_url=redis_url))
    async with runtime.db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    try:
        yield runtime
    finally:
        await runtime.close()


def spec(**hooks: object) -> ServiceSpec:
    return ServiceSpec(
        name="pipeline",
        metadata=metadata,
        outbox=OUTBOX,
        processed_events=PROCESSED,
        servicers=lambda _rt: [],
        **hooks,  # type: ignore[arg-type]
    )


async def test_background_of_a_role_is_started_and_stopped(rt: Runtime) -> None:
    loops = {"worker": Loop(), "api": Loop()}
    s = spec(
        background=[
            Background("tick", lambda _rt: loops["worker"]),
            Background("serve", lambda _rt: loops["api"], role="api"),
        ]
    )
    stoppers = await start_role(rt, s, "worker")
    await asyncio.wait_for(loops["worker"].running.wait(), 10)
    assert len(stoppers) == 1 and not loops["api"].running.is_set()
    for stop in stoppers:
        await stop()
    assert loops["worker"].finished


async def test_consumer_spec_consumes_and_calls_before_ack(rt: Runtime) -> None:
    recorder = Recorder()
    stream = service_stream("knowledge")
    s = spec(
        consumers=[ConsumerSpec("pipeline-test", [stream], lambda _rt: recorder, options={"block": 0.05})]
    )
    consumer = build_consumer(rt, s, s.consumers[0])
    assert consumer.processed is PROCESSED and consumer.group == "pipeline-test"
    stoppers = await start_role(rt, s, "api")
    envelope = new_envelope(
        "knowledge.card.published", "t1", Money(currency="CNY"), source="knowledge", subject="c1"
    )
    fields = {
        "envelope": envelope.SerializeToString(),
        "type": envelope.type,
        "tenant": "t1",
        "id": envelope.id,
    }
    await rt.redis.xadd(stream, fields)  # type: ignore[arg-type]
    for _ in range(400):
        if recorder.acked:
            break
        await asyncio.sleep(0.05)
    for stop in stoppers:
        await stop()
    assert recorder.seen == ["c1"] and recorder.acked == [envelope.id]


def test_spec_defaults_its_stream_and_refuses_duplicate_names() -> None:
    assert spec().produces == service_stream("pipeline")
    assert spec(produces="custom").produces == "custom"
    with pytest.raises(ValueError):
        spec(background=[Background("x", lambda _rt: Loop()), Background("x", lambda _rt: Loop())])


class Stubborn(Loop):
    async def stop(self) -> None:  # ignores the request: the runtime must cancel it
        return None


async def test_a_task_that_ignores_stop_is_cancelled_after_the_grace(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime_module, "STOP_GRACE_SECONDS", 0.2)
    stubborn = Stubborn()
    stoppers = await start_role(rt, spec(background=[Background("stuck", lambda _rt: stubborn)]), "worker")
    await asyncio.wait_for(stubborn.running.wait(), 10)
    await asyncio.wait_for(stoppers[0](), 10)
    assert not stubborn.finished  # cancelled, not finished
