"""Outbound webhooks: N events (default 10,000; quick 1,000; SALESOPS_BENCH_OUTBOUND overrides) delivered
to a loopback receiver, on a real Temporal dev server (own port, in memory), a private redis-server and
SQLite (the embedded database).

The path measured is the production one: each event is XADDed to a service stream; integration's
fan-out consumer, built as the runtime builds it (kit.runtime.build_consumer over outbound_consumer's
ConsumerSpec: its batch size and before_ack), writes one delivery row per event for the one matching
subscription in the consumer's transaction and, after the commit, starts its DeliveryWorkflow and marks
the row claimed; the workflow's attempt activity prepares (a read), signs (Standard Webhooks v1), POSTs
through kit.net.SafeClient and records the attempt (a transaction). The receiver answers 204. One worker,
with the integration service's worker options (app.SPEC.worker_options), runs both phases.

- deliveries/s: events / (first XADD -> last delivery received), as a ratio to a bare baseline in the
  same run: the same number of bare workflows started at the same concurrency, whose one activity
  POSTs the same signed body through the same SafeClient to the same receiver (no database, no
  stream). Goal: at least 0.25 of the bare rate (two SQLite writes and a stream hop per delivery).
- event -> delivery p99: XADD until the receiver has the request, the whole burst queued at once;
  baseline the bare workflow's start -> received p99 in its own burst. Goal: at most 3x the bare p99.
- CPU per delivery (no goal; wall-clock rates on a shared machine are noise, CPU is not): this process
  (consumer, worker, HTTP client and the receiver, every thread), and the Temporal dev server plus
  redis-server (their /proc counters), over each phase, divided by the deliveries received.

Every delivery must arrive exactly once with a valid signature: missing, duplicated or badly signed
ones are counted as failures in the figures. SALESOPS_BENCH_OUTBOUND_PHASES=real (or bare) runs one
phase only, for profiling.

    .venv/bin/python -m bench.bench_outbound [--quick]
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from temporalio import activity, workflow

from bench.verdict import AT_LEAST, AT_MOST, Figure, Goal

TENANT = "bench"
STARTS_IN_FLIGHT = 32  # as many as the fan-out consumer starts at once (deliveries._STARTS)
SECRET = "whsec_" + "YmVuY2gtb3V0Ym91bmQtc2lnbmluZy1zZWNyZXQh"  # bench only


@dataclass
class Receiver:
    """A minimal HTTP/1.1 keep-alive server: 204 to every POST, arrival times by webhook-id."""

    port: int = 0
    arrived: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0
    bad: int = 0
    check: bool = True

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        from services.integration.domain.signatures import verify_standard

        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                headers = {}
                for line in head.split("\r\n")[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                now = time.perf_counter()
                msg_id = headers.get("webhook-id", "")
                if (
                    self.check
                    and not verify_standard(
                        headers, body, secret=SECRET, public_key_text="", now=datetime.now(UTC)
                    ).ok
                ):
                    self.bad += 1
                if msg_id in self.arrived:
                    self.duplicates += 1
                else:
                    self.arrived[msg_id] = now
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@dataclass
class BareInput:
    url: str
    msg_id: str
    body: str


@activity.defn(name="bench.outbound_bare_post")
async def bare_post(inp: BareInput) -> int:
    from services.integration.delivery_attempts import Prepared, post
    from services.integration.domain.outbound_signing import signature_header

    signed = int(time.time())
    body = inp.body.encode()
    headers = {
        "content-type": "application/json",
        "webhook-id": inp.msg_id,
        "webhook-timestamp": str(signed),
        "webhook-signature": signature_header([SECRET], inp.msg_id, signed, body),
    }
    answer = await post(_BARE_CLIENT[0], Prepared(inp.url, headers, body, 10.0, 1), datetime.now(UTC))
    return answer.status


_BARE_CLIENT: list[Any] = []


@workflow.defn(name="BenchOutboundBare", sandboxed=False)
class BareWorkflow:
    """The baseline: one activity posting the same signed body; no database, no stream."""

    @workflow.run
    async def run(self, inp: BareInput) -> int:
        return int(
            await workflow.execute_activity(bare_post, inp, start_to_close_timeout=timedelta(seconds=60))
        )


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


async def _wait(done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if done():
            return True
        await asyncio.sleep(0.05)
    return done()


class _Cpu:
    """CPU seconds used so far by this process (every thread: worker, consumer, receiver, the SDK's
    Rust core) and by its child processes still running (the Temporal dev server, redis-server)."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, children: Sequence[int]) -> None:
        self.children = list(children)

    def _child(self, pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / self.TICK  # utime + stime

    def now(self) -> tuple[float, float]:
        return time.process_time(), sum(self._child(p) for p in self.children)


def _temporal_pids() -> list[int]:
    """The dev server start_local launched: a child of this process."""
    me, found = os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, rest = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if int(rest.split()[1]) == me and "temporal" in head:
            found.append(int(stat.parent.name))
    return found


async def _measure(tmp: Path, n: int, phases: str) -> list[Figure]:
    from redis.asyncio import Redis
    from temporalio.testing import WorkflowEnvironment

    from deploy.local.infra import find_temporal, free_port, start_redis
    from kit.auth import Principal
    from kit.db import Database
    from kit.events import new_envelope
    from kit.migrations import upgrade_to_head
    from kit.net import OutboundPolicy, SafeClient
    from kit.runtime import build_consumer
    from kit.temporal import WorkerRunner, build_worker
    from salesops.integration.v1 import webhooks_pb2 as wh
    from salesops.pipeline.v1 import events_pb2 as pipeline_events
    from services.integration import store, subscriptions
    from services.integration.app import SPEC
    from services.integration.outbound_activities import OutboundActivities
    from services.integration.outbound_consumer import CONSUMER
    from services.integration.outbound_wiring import WORKFLOWS

    redis_server = start_redis(tmp / "redis", persist=False, die_with_parent=True)
    db = Database(f"sqlite+aiosqlite:///{tmp / 'integration.db'}", pool_size=20)
    await upgrade_to_head("integration", db)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_temporal(), dev_server_extra_args=["--log-level", "error"]
    )
    cpu = _Cpu([redis_server.proc.pid, *_temporal_pids()])
    receiver = Receiver(port=free_port())
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", receiver.port)
    url = f"http://127.0.0.1:{receiver.port}/hook"
    policy = OutboundPolicy.parse("127.0.0.1")
    _BARE_CLIENT.append(SafeClient(policy, timeout=30.0))
    queue = f"bench-outbound-{uuid.uuid4().hex[:6]}"
    acts = OutboundActivities(db, env.client, queue, policy=policy)
    # The worker as the integration service builds it (its worker options), running both phases.
    runner = WorkerRunner(
        build_worker(
            env.client,
            queue,
            workflows=[*WORKFLOWS, BareWorkflow],
            activities=[*acts.all(), bare_post],  # type: ignore[list-item]
            options=SPEC.worker_options,
        )
    )
    runner.start()
    redis = Redis.from_url(redis_server.address)
    stream = f"salesops:bench-outbound-{uuid.uuid4().hex[:6]}"
    rt = SimpleNamespace(db=db, redis=redis, temporal=env.client, settings=SimpleNamespace(task_queue=queue))
    # The fan-out consumer as the runtime builds it (its batch size, its before_ack), on the bench's stream.
    consumer = build_consumer(rt, SPEC, dataclasses.replace(CONSUMER, streams=[stream]))  # type: ignore[arg-type]
    consumer_task: asyncio.Task[None] | None = None
    bare_arrivals: dict[str, float] = {}
    bare_lat: list[float] = []
    bare_s = bare_cpu = bare_other = float("nan")
    real: dict[str, float] = {}
    real_lat: list[float] = []
    real_s = real_cpu = real_other = float("nan")
    bare_failed = real_failed = 0
    try:
        admin = Principal("admin", TENANT, frozenset({"admin"}), "", datetime.max.replace(tzinfo=UTC))
        sub = wh.WebhookSubscription(
            subscription_id="bench", display_name="Bench receiver", endpoint_url=url,
            event_types=["pipeline.DealWon"], signing_secret=SECRET,
        )  # fmt: skip
        await store.transactions(db).run(
            TENANT, lambda uow: subscriptions.create(uow, admin, sub, policy, datetime.now(UTC))
        )

        if "bare" in phases:
            # Baseline: bare workflows, one POST activity each, started STARTS_IN_FLIGHT at a time.
            body = json.dumps({"type": "pipeline.DealWon", "payload": {"wonBy": "rep"}})
            gate = asyncio.Semaphore(STARTS_IN_FLIGHT)
            started_at: dict[str, float] = {}
            not_started: list[str] = []

            async def bare(i: int) -> None:
                msg_id = f"bare-{i}"
                async with gate:
                    started_at[msg_id] = time.perf_counter()
                    try:
                        await env.client.start_workflow(
                            BareWorkflow.run,
                            BareInput(url, msg_id, body),
                            id=f"bare-{queue}-{i}",
                            task_queue=queue,
                        )
                    except Exception as exc:  # an overloaded server: counted as a failure, not a crash
                        not_started.append(msg_id)
                        print(
                            f"   bare start failed: {type(exc).__name__}: {str(exc)[:120]}", file=sys.stderr
                        )

            c0, t0 = cpu.now(), time.perf_counter()
            await asyncio.gather(*(bare(i) for i in range(n)))
            await _wait(
                lambda: len([k for k in receiver.arrived if k.startswith("bare-")]) >= n - len(not_started),
                900,
            )
            c1 = cpu.now()
            bare_arrivals = {k: v for k, v in receiver.arrived.items() if k.startswith("bare-")}
            bare_s = (max(bare_arrivals.values()) if bare_arrivals else time.perf_counter()) - t0
            bare_lat = [bare_arrivals[k] - started_at[k] for k in bare_arrivals]
            bare_failed = n - len(bare_arrivals)
            bare_cpu, bare_other = ((c1[i] - c0[i]) / max(len(bare_arrivals), 1) * 1000 for i in (0, 1))

        if "real" in phases:
            # The real path: XADD -> fan-out consumer -> DeliveryWorkflow -> signed POST.
            await asyncio.sleep(2)  # the bare phase's last workflow tasks complete outside the window
            c0 = cpu.now()
            consumer_task = asyncio.create_task(consumer.run())
            xadd_at: dict[str, float] = {}
            t1 = time.perf_counter()
            for start in range(0, n, 500):
                async with redis.pipeline(transaction=False) as pipe:
                    for i in range(start, min(n, start + 500)):
                        e = new_envelope(
                            "pipeline.DealWon", TENANT, pipeline_events.DealWon(won_by="rep", contract_number=f"C-{i}"),
                            source="pipeline", subject=f"d-{i}",
                        )  # fmt: skip
                        xadd_at[e.id] = time.perf_counter()
                        pipe.xadd(
                            stream,
                            {"envelope": e.SerializeToString(), "type": e.type, "tenant": TENANT, "id": e.id},
                        )
                    await pipe.execute()
            await _wait(lambda: len([k for k in receiver.arrived if k in xadd_at]) >= n, 1500)
            c1 = cpu.now()
            real = {k: v for k, v in receiver.arrived.items() if k in xadd_at}
            real_s = (max(real.values()) if real else time.perf_counter()) - t1
            real_lat = [real[k] - xadd_at[k] for k in real]
            real_failed = n - len(real) + receiver.bad + receiver.duplicates
            real_cpu, real_other = ((c1[i] - c0[i]) / max(len(real), 1) * 1000 for i in (0, 1))
    finally:
        if consumer_task is not None:
            await consumer.stop()
            await consumer_task
        await runner.stop()
        server.close()
        for client in _BARE_CLIENT:
            await client.aclose()
        if acts._client is not None:
            await acts._client.aclose()
        await redis.aclose()
        await env.shutdown()
        await db.dispose()
        redis_server.stop()

    size = f"{n:,}"
    return [
        Figure(
            f"outbound deliveries ({size} events, stream -> fan-out -> workflow -> signed POST)",
            len(real) / real_s if real_s > 0 else float("nan"),
            "deliveries/s",
            baseline=len(bare_arrivals) / bare_s if bare_s > 0 else float("nan"),
            baseline_name=f"bare workflow + one POST activity ({size})",
            goal=Goal(0.25, AT_LEAST),
            failed=real_failed + bare_failed,
            note=f"SQLite, Temporal dev server; {receiver.bad} bad signatures, {receiver.duplicates} duplicates",
        ),
        Figure(
            "outbound event -> delivery p99 (whole burst queued at once)",
            _pct(real_lat, 0.99),
            "s",
            baseline=_pct(bare_lat, 0.99),
            baseline_name="bare workflow start -> received p99",
            goal=Goal(3.0, AT_MOST),
            failed=real_failed + bare_failed,
            note=f"p50 {_pct(real_lat, 0.5):.2f} s (bare {_pct(bare_lat, 0.5):.2f} s)",
        ),
        Figure(
            "outbound CPU per delivery, this process (consumer, worker, HTTP client and receiver)",
            real_cpu,
            "ms CPU/delivery",
            baseline=bare_cpu,
            baseline_name="bare workflow + one POST activity, same process",
            failed=real_failed + bare_failed,
        ),
        Figure(
            "outbound CPU per delivery, Temporal dev server + redis-server",
            real_other,
            "ms CPU/delivery",
            baseline=bare_other,
            baseline_name="bare workflow + one POST activity",
            failed=real_failed + bare_failed,
        ),
    ]


def suite(quick: bool) -> list[Figure]:
    import uvloop

    n = int(os.environ.get("SALESOPS_BENCH_OUTBOUND", "1000" if quick else "10000"))
    phases = os.environ.get("SALESOPS_BENCH_OUTBOUND_PHASES", "bare,real")  # one of them: for profiling
    with tempfile.TemporaryDirectory() as tmp, asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_measure(Path(tmp), n, phases))


if __name__ == "__main__":
    for f in suite("--quick" in sys.argv):
        print(
            f"{f.name}: {f.value:.4g} {f.unit} (baseline {f.baseline:.4g}) ratio {f.ratio} failed {f.failed} {f.note}"
        )
