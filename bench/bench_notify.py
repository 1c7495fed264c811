"""Benchmark of notify: fan-out of one notification to 10,000 inboxes, live-stream latency.

Measures, in one run (SQLite file + private redis-server, as `make run` embeds them):
- fan-out: one SendNotification to the 10,000 reps of an org unit (role resolution,
  preferences, template rendering, inbox rows) until committed: seconds and rows/s;
  baseline: a bare batched INSERT of the same 10,000 rows; ratio = fan-out / bare;
- stream: 500 open StreamInbox calls over real gRPC; a Send to one of them at a time,
  latency Send -> item on that stream, p50/p99 ms; baseline: a bare Redis pub/sub
  round trip (PUBLISH -> subscriber) p50/p99; ratio = stream / bare; and the same Send to a
  user with no stream, to show how much of the latency is the Send's own commit.

    .venv/bin/python -m bench.bench_notify
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
from sqlalchemy import insert
from ulid import ULID

from bench.verdict import Figure, pick
from kit.auth import AuthConfig, TokenMinter
from kit.config import GrpcSettings, Settings
from kit.grpc.server import GrpcServer
from kit.migrations import upgrade_to_head
from kit.runtime import Runtime
from salesops.common.v1 import types_pb2
from salesops.notify.v1 import notification_pb2 as N
from salesops.notify.v1 import notify_service_pb2 as M
from salesops.notify.v1 import notify_service_pb2_grpc
from services.notify import api, sending
from services.notify.store import InboxItemRow, SubscriberRow

TENANT = "bench"
RECIPIENTS = 10_000
STREAMS = 500
STREAM_SENDS = 300


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _frozen(*recipients: N.Recipient) -> N.Notification:
    n = N.Notification(
        category=N.NOTIFICATION_CATEGORY_FROZEN_DEAL,
        recipients=list(recipients),
        template=N.TemplateContent(),
    )
    n.template.variables.update({"deal_name": "Big deal", "deal_id": "D1"})
    return n


async def _seed(rt: Runtime) -> None:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    rows = [
        {
            "tenant_id": TENANT,
            "user_id": f"rep-{i:05d}",
            "display_name": f"Rep {i}",
            "org_unit_path": "east/big",
            "roles": "rep",
            "active": True,
            "phone": "",
            "email": "",
            "wecom_user_id": "",
            "dingtalk_user_id": "",
            "version": 1,
            "updated_at": now,
        }
        for i in range(RECIPIENTS)
    ]
    async with rt.db.session(TENANT) as s:
        await s.execute(insert(SubscriberRow), rows)
        await s.commit()


async def _fanout(rt: Runtime) -> dict[str, float]:
    sender = sending.Sender(rt.db, rt.redis)
    target = N.Recipient(org_role=N.OrgRoleTarget(role=types_pb2.ROLE_REP, org_unit_path="east/big"))
    started = time.perf_counter()
    outcome = await sender.send(TENANT, _frozen(target))
    fanout = time.perf_counter() - started
    assert len(outcome.inbox_items) == RECIPIENTS
    # Baseline: the very same rows, new ids, one bare batched INSERT.
    copies = [dict(row, id=str(ULID()), notification_id="X" * 26) for row in outcome.inbox_items]
    started = time.perf_counter()
    async with rt.db.session(TENANT) as s:
        for start in range(0, len(copies), 1000):
            await s.execute(insert(InboxItemRow), copies[start : start + 1000])
        await s.commit()
    bare = time.perf_counter() - started
    return {
        "fanout_seconds": fanout,
        "fanout_rows_per_s": RECIPIENTS / fanout,
        "bare_insert_seconds": bare,
        "bare_insert_rows_per_s": RECIPIENTS / bare,
        "fanout_ratio_vs_bare": fanout / bare,
    }


async def _pubsub_baseline(rt: Runtime, rounds: int = STREAM_SENDS) -> list[float]:
    pubsub = rt.redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe("bench:rt")
    latencies = []
    for _ in range(rounds):
        started = time.perf_counter()
        await rt.redis.publish("bench:rt", b"x" * 300)
        while (await pubsub.get_message(timeout=1.0)) is None:
            pass
        latencies.append((time.perf_counter() - started) * 1000)
    await pubsub.aclose()  # type: ignore[no-untyped-call]
    return latencies


async def _streams(rt: Runtime, address: str) -> dict[str, float]:
    minter = TokenMinter(AuthConfig.from_env())
    service = minter.mint_service_token("bench", TENANT)
    channel = grpc.aio.insecure_channel(address)
    stub = notify_service_pb2_grpc.NotifyServiceStub(channel)
    users = [f"rep-{i:05d}" for i in range(STREAMS)]
    calls: dict[str, Any] = {}
    for user in users:
        tok = minter.mint(user, TENANT, ["rep"], org="east/big")
        calls[user] = stub.StreamInbox(M.StreamInboxRequest(), metadata=(("authorization", f"Bearer {tok}"),))
    await asyncio.gather(*(c.read() for c in calls.values()))  # the initial badge: every stream is open
    latencies = []
    rng = random.Random(7)
    for _ in range(STREAM_SENDS):
        user = rng.choice(users)
        started = time.perf_counter()
        await stub.SendNotification(
            M.SendNotificationRequest(notification=_frozen(N.Recipient(user_id=user))),
            metadata=(("authorization", f"Bearer {service}"),),
        )
        while not (await calls[user].read()).HasField("item_added"):
            pass
        latencies.append((time.perf_counter() - started) * 1000)
    for call in calls.values():
        call.cancel()
    # Where the time goes: the same Send to a user with no open stream (commit, no delivery).
    send_only = []
    for _ in range(STREAM_SENDS):
        started = time.perf_counter()
        await stub.SendNotification(
            M.SendNotificationRequest(notification=_frozen(N.Recipient(user_id="rep-09999"))),
            metadata=(("authorization", f"Bearer {service}"),),
        )
        send_only.append((time.perf_counter() - started) * 1000)
    await channel.close(None)
    bare = await _pubsub_baseline(rt)
    p50, p99 = _percentile(latencies, 0.5), _percentile(latencies, 0.99)
    b50, b99 = _percentile(bare, 0.5), _percentile(bare, 0.99)
    return {
        "stream_p50_ms": p50,
        "stream_p99_ms": p99,
        "stream_mean_ms": statistics.fmean(latencies),
        "send_only_p50_ms": _percentile(send_only, 0.5),
        "stream_p50_minus_send_ms": p50 - _percentile(send_only, 0.5),
        "bare_pubsub_p50_ms": b50,
        "bare_pubsub_p99_ms": b99,
        "stream_p50_ratio_vs_bare": p50 / b50,
        "stream_p99_ratio_vs_bare": p99 / b99,
    }


async def run(redis_url: str, database_url: str) -> dict[str, float]:
    from deploy.local.infra import free_port

    base = Settings.from_env("notify")
    settings = replace(
        base,
        database_url=database_url,
        redis_url=redis_url,
        grpc=GrpcSettings(
            listen=f"127.0.0.1:{free_port()}",
            reflection=False,
            grace_seconds=1.0,
            default_deadline_seconds=30.0,
            max_message_bytes=8 * 1024 * 1024,
            keepalive_time_ms=30_000,
            keepalive_timeout_ms=10_000,
        ),
    )
    rt = Runtime(settings)
    await upgrade_to_head("notify", rt.db)
    await _seed(rt)
    registrations = api.registrations(rt)
    server = GrpcServer("notify", settings.grpc, rt.verifier, registrations)
    await server.start()
    try:
        report = await _fanout(rt)
        report |= await _streams(rt, server.address)
    finally:
        await registrations[0].servicer.hub.stop()
        await server.stop(0)
        await rt.close()
    return report


def measure() -> dict[str, float]:
    """Run against a private redis-server and a temporary SQLite file, on uvloop as services run."""
    import uvloop

    from deploy.local.infra import start_redis

    with tempfile.TemporaryDirectory() as tmp:
        server = start_redis(Path(tmp) / "redis", persist=False)
        try:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'notify.db'}"
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                return runner.run(run(server.address, url))
        finally:
            server.stop()


def suite(quick: bool) -> list[Figure]:
    """Verdict figures (bench.verdict): fan-out against a bare insert, live stream against bare pub/sub."""
    f = measure()
    return [
        pick(
            f,
            "fanout_rows_per_s",
            "rows/s",
            name="fan-out to 10,000 inboxes",
            baseline="bare_insert_rows_per_s",
        ),
        pick(
            f,
            "stream_p50_ms",
            "ms",
            name="Send -> StreamInbox p50 (500 streams)",
            baseline="bare_pubsub_p50_ms",
        ),
        pick(f, "stream_p99_ms", "ms", name="Send -> StreamInbox p99", baseline="bare_pubsub_p99_ms"),
    ]


if __name__ == "__main__":
    print(json.dumps({k: round(v, 3) for k, v in measure().items()}, indent=2))
