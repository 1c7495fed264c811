"""Inbound webhooks through the gateway: verify + store + publish per second, vs the gateway's WhoAmI.

One backend process serves integration's gRPC API (IngestWebhook, public: the signature is
the credential) and the diagnostics WhoAmI behind the kit's server pipeline, on SQLite (the
embedded database), with its outbox relay publishing to Redis. One gateway process
(`python -m gateway`) routes both: `POST /hooks/v1/demo/<connector>` and `GET /v1/whoami`.
The same client drives 32 requests in flight at each, in alternating rounds so drift hits
both alike; every webhook is a distinct Standard Webhooks `v1` delivery of a mapped type
(payment.succeeded -> PaymentReceived), so each is verified, stored, mapped to an event in
the outbox and published to the service's stream. The run ends when every event is on the
stream: a missing one counts as a failure, as does any answer other than 200.

Baseline: WhoAmI, the cheapest authenticated call, through the same gateway to the same
process in the same run. The ratio says what a webhook costs in WhoAmIs. Beside the rates,
the CPU time each process (integration, with its relay; the gateway) spent in each kind of
round, per call answered in it (from /proc): what a call costs where, whatever the load.

Where a webhook's time goes (`_stages`): the backend notes when each delivery's handler started
and ended (by its webhook-id; one monotonic clock for every process on the machine), the client
when it sent the request and read the answer; the slowest 1 % are split into before the handler
(the gateway, the transport, the backend's gRPC accept of the call), in it (verify, the group's
write), and after it (the answer's way back).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from itertools import repeat
from pathlib import Path
from typing import Any

from bench.bench_gateway import _read_response
from bench.grpc_overhead import _pct
from bench.pg import pg_database
from bench.procs import cpu_seconds as _cpu_s
from bench.procs import py_spy
from bench.verdict import AT_LEAST, AT_MOST, Figure, Goal, pick
from deploy.local.infra import free_port, start_redis, wait_port

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 32
TENANT = "demo"
CONNECTOR = "bench-finance"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _noting_stages(servicer: Any, stages: list[tuple[str, float, float]]) -> None:
    """IngestWebhook of `servicer` notes (webhook-id, start, end) of every call in `stages`."""
    ingest = servicer.IngestWebhook

    async def noted(request: Any, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return await ingest(request, context)
        finally:
            stages.append((request.headers.get("webhook-id", ""), started, time.perf_counter()))

    servicer.IngestWebhook = noted


async def _serve(port: int, database_url: str, redis_url: str, stages_file: str) -> None:
    """The backend: integration's API + WhoAmI, and its outbox relay; on SIGTERM it writes the
    handler's stages to `stages_file` and exits."""
    from types import SimpleNamespace

    import redis.asyncio as aioredis

    from kit.auth import AuthConfig, TokenVerifier
    from kit.config import GrpcSettings
    from kit.db import Database
    from kit.events import OutboxRelay, service_stream
    from kit.grpc.partners import PartnerGuard
    from kit.grpc.server import GrpcServer
    from kit.heap import tune_gc
    from kit.migrations import upgrade_to_head
    from services.integration import api, store

    config = AuthConfig.from_env()
    db = Database(database_url, pool_size=20)
    await upgrade_to_head("integration", db)
    redis = aioredis.Redis.from_url(redis_url)
    guard = PartnerGuard(redis)
    rt: Any = SimpleNamespace(db=db, auth_config=config, partners=guard)
    settings = GrpcSettings(
        listen=f"127.0.0.1:{port}",
        reflection=False,
        grace_seconds=1.0,
        default_deadline_seconds=30.0,
        max_message_bytes=4 * 1024 * 1024,
        keepalive_time_ms=30_000,
        keepalive_timeout_ms=10_000,
    )
    registrations = api.registrations(rt)
    stages: list[tuple[str, float, float]] = []
    for reg in registrations:
        if hasattr(reg.servicer, "IngestWebhook"):
            _noting_stages(reg.servicer, stages)

    def write_stages() -> None:
        Path(stages_file).write_text(json.dumps(stages))
        os._exit(0)

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, write_stages)
    server = GrpcServer("integration", settings, TokenVerifier(config), registrations, partners=guard)
    await server.start()
    relay = OutboxRelay(db, redis, service_stream("integration"), table=store.outbox)
    tune_gc()  # as kit.runtime does once a service has started
    await relay.run()


def _payment(n: int) -> tuple[bytes, dict[str, str]]:
    from services.integration.domain import signatures

    event_id = f"evt_bench_{n}"
    body = json.dumps(
        {
            "id": event_id,
            "type": "payment.succeeded",
            "data": {
                "external_id": f"PAY-{n}",
                "amount_minor": 1_250_000,
                "currency": "CNY",
                "deal_id": f"D-{n % 500}",
                "value_date": "2026-12-01",
                "method": "bank_transfer",
                "occurred_at": "2026-12-01T08:00:00Z",
            },
        }
    ).encode()
    ts = int(time.time())
    headers = {
        "webhook-id": event_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": signatures.sign_standard_v1(SECRET, event_id, ts, body),
        "content-type": "application/json",
    }
    return body, headers


def _hook_request(port: int, n: int) -> bytes:
    body, headers = _payment(n)
    head = f"POST /hooks/v1/{TENANT}/{CONNECTOR} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    head += f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


_HOOK_ID = b"webhook-id: "


def _hook_id(request: bytes) -> str:
    start = request.find(_HOOK_ID) + len(_HOOK_ID)
    return request[start : request.find(b"\r\n", start)].decode()


async def _drive(
    port: int, requests: Iterator[bytes], seconds: float, marks: dict[str, tuple[float, float]] | None = None
) -> tuple[float, list[float], int]:
    """Send the requests over CONCURRENCY keep-alive connections for `seconds` (or until they run out);
    `marks`: each webhook's (sent, answered) times by its id."""
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CONCURRENCY)]
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            request = next(requests, None)
            if request is None:
                return
            t0 = time.perf_counter()
            writer.write(request)
            if await _read_response(reader) != 200:
                errors += 1
            t1 = time.perf_counter()
            latencies.append(t1 - t0)
            if marks is not None:
                marks[_hook_id(request)] = (t0, t1)

    start = time.perf_counter()
    await asyncio.gather(*(worker(r, w) for r, w in conns))
    elapsed = time.perf_counter() - start
    for _, writer in conns:
        writer.close()
    return len(latencies) / elapsed, latencies, errors


def _cpu_round(pids: list[int], drive: Any) -> tuple[tuple[float, list[float], int], list[float]]:
    """`drive`'s result and the CPU seconds each of `pids` spent while it ran."""
    before = [_cpu_s(p) for p in pids]
    result = asyncio.run(drive)
    return result, [_cpu_s(p) - b for p, b in zip(pids, before, strict=True)]


async def _seed(address: str, token: str) -> None:
    import grpc

    from salesops.integration.v1 import connector_pb2 as c
    from salesops.integration.v1 import integration_service_pb2 as pb
    from salesops.integration.v1 import integration_service_pb2_grpc

    connector = c.Connector(
        connector_id=CONNECTOR,
        display_name="bench finance",
        kind=c.CONNECTOR_KIND_FINANCE,
        provider="finance_http",
        inbound=c.InboundWebhookConfig(
            enabled=True,
            signature_scheme=c.SIGNATURE_SCHEME_STANDARD_WEBHOOKS,
            signing_secret=SECRET,
            mappings=[
                c.InboundEventMapping(
                    external_event_type="payment.succeeded",
                    mapped_event_type=c.MAPPED_EVENT_TYPE_PAYMENT_RECEIVED,
                )
            ],
        ),
    )
    connector.settings.update({"base_url": "https://finance.example.com"})
    md = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(address) as channel:
        stub: Any = integration_service_pb2_grpc.IntegrationServiceStub(channel)
        await stub.CreateConnector(pb.CreateConnectorRequest(connector=connector), metadata=md, timeout=30)
        await stub.EnableConnector(pb.EnableConnectorRequest(connector_id=CONNECTOR), metadata=md, timeout=30)


async def _published(redis_url: str, expected: int, timeout: float) -> tuple[int, float]:
    """Events on integration's stream once it stops growing toward `expected` (or the timeout)."""
    import redis.asyncio as aioredis

    from kit.events import service_stream

    client = aioredis.Redis.from_url(redis_url)
    started = time.perf_counter()
    try:
        while True:
            count = int(await client.xlen(service_stream("integration")))
            if count >= expected or time.perf_counter() - started > timeout:
                return count, time.perf_counter() - started
            await asyncio.sleep(0.1)
    finally:
        await client.aclose()


def _stages(marks: dict[str, tuple[float, float]], handled: list[list[Any]]) -> dict[str, float]:
    """The slowest 1 % of the measured webhooks (by the client's latency), their mean ms before the
    backend's handler started, in it, and after it; the same for the median webhook's neighbours
    (45th-55th percentile)."""
    by_id = {hook_id: (started, ended) for hook_id, started, ended in handled}
    split = sorted(
        (t1 - t0, s - t0, e - s, t1 - e)
        for hook_id, (t0, t1) in marks.items()
        if (found := by_id.get(hook_id)) is not None
        for s, e in (found,)
    )
    if len(split) < 100:
        return {}
    out: dict[str, float] = {}
    for label, part in (
        ("p99", split[len(split) * 99 // 100 :]),
        ("p50", split[len(split) * 45 // 100 : len(split) * 55 // 100]),
    ):
        for i, stage in enumerate(("to_handler", "in_handler", "after"), start=1):
            out[f"hooks_{label}_{stage}_ms"] = 1000 * statistics.fmean(row[i] for row in part)
    return out


def run(seconds: float = 5.0, rounds: int = 3, database_url: str = "") -> dict[str, float]:
    """One pass; `database_url` empty = a fresh SQLite file (the embedded database)."""
    from kit.auth import AuthConfig, TokenMinter

    minter = TokenMinter(AuthConfig.from_env())
    user = minter.mint("rep-a1", TENANT, ["rep"], org="east/team-a")
    admin = minter.mint("admin", TENANT, ["admin"])
    qps: dict[str, list[float]] = {"hooks": [], "whoami": []}
    lat: dict[str, list[float]] = {"hooks": [], "whoami": []}
    failed = {"hooks": 0, "whoami": 0}
    # CPU seconds of [backend, gateway] during each kind of round, and the calls answered in them.
    cpu: dict[str, list[float]] = {"hooks": [0.0, 0.0], "whoami": [0.0, 0.0]}
    calls = {"hooks": 0, "whoami": 0}
    marks: dict[str, tuple[float, float]] = {}  # measured webhooks: sent, answered (client)
    sent = 0
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        redis = start_redis(Path(tmp), persist=False)
        redis_url = redis.address.rsplit("/", 1)[0] + "/0"
        try:
            grpc_port, gw_port = free_port(), free_port()
            database_url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'integration.db'}"
            backend = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.bench_inbound",
                    "serve",
                    str(grpc_port),
                    database_url,
                    redis_url,
                    str(Path(tmp) / "stages.json"),
                ],
                cwd=ROOT,
            )
            procs.append(backend)
            wait_port("127.0.0.1", grpc_port, 60, backend)
            env = {
                **os.environ,
                "SALESOPS_LEADS_ADDR": f"127.0.0.1:{grpc_port}",  # WhoAmI's REST route
                "SALESOPS_INTEGRATION_ADDR": f"127.0.0.1:{grpc_port}",
                "SALESOPS_GATEWAY_PORT": str(gw_port),
                "SALESOPS_REDIS_URL": redis_url,
                "SALESOPS_GATEWAY_RATE_TENANT": "1000000000",
                "SALESOPS_GATEWAY_RATE_USER": "1000000000",
            }
            gateway = subprocess.Popen(
                [sys.executable, "-m", "gateway"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL
            )
            procs.append(gateway)
            wait_port("127.0.0.1", gw_port, 60, gateway)
            asyncio.run(_seed(f"127.0.0.1:{grpc_port}", admin))
            whoami = (
                f"GET /v1/whoami HTTP/1.1\r\nHost: 127.0.0.1:{gw_port}\r\nAuthorization: Bearer {user}\r\n\r\n"
            ).encode()
            # Warm-up of both paths (first connections, SQLite pages), not measured.
            asyncio.run(_drive(gw_port, repeat(whoami), 0.5))
            warm = [_hook_request(gw_port, n) for n in range(CONCURRENCY * 4)]
            _, _, warm_failed = asyncio.run(_drive(gw_port, iter(warm), 30))
            sent += len(warm)
            if warm_failed:
                raise RuntimeError(f"{warm_failed} warm-up webhooks were refused")
            pids = [backend.pid, gateway.pid]
            spy = py_spy(backend.pid)
            for _ in range(rounds):
                (q, latencies, errors), used = _cpu_round(pids, _drive(gw_port, repeat(whoami), seconds))
                cpu["whoami"] = [a + b for a, b in zip(cpu["whoami"], used, strict=True)]
                calls["whoami"] += len(latencies)
                qps["whoami"].append(q)
                lat["whoami"].extend(latencies)
                failed["whoami"] += errors
                # Signed just before the round (5-minute replay window); more than a round can use.
                batch = [
                    _hook_request(gw_port, sent + n) for n in range(int(max(qps["whoami"]) * seconds) + 1000)
                ]
                (q, latencies, errors), used = _cpu_round(pids, _drive(gw_port, iter(batch), seconds, marks))
                cpu["hooks"] = [a + b for a, b in zip(cpu["hooks"], used, strict=True)]
                calls["hooks"] += len(latencies)
                qps["hooks"].append(q)
                lat["hooks"].extend(latencies)
                failed["hooks"] += errors
                sent += len(latencies)
            published, drain_s = asyncio.run(_published(redis_url, sent, 60))
            if spy is not None:
                spy[0].send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
                spy[0].wait(30)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
            redis.stop()
        stages_file = Path(tmp) / "stages.json"
        stages = _stages(marks, json.loads(stages_file.read_text())) if stages_file.exists() else {}
    hooks, who = statistics.median(qps["hooks"]), statistics.median(qps["whoami"])
    return {
        "hooks_per_s": hooks,
        "whoami_per_s": who,
        "ratio": hooks / who,
        "hooks_p50_ms": _pct(lat["hooks"], 50),
        "hooks_p99_ms": _pct(lat["hooks"], 99),
        "whoami_p50_ms": _pct(lat["whoami"], 50),
        "whoami_p99_ms": _pct(lat["whoami"], 99),
        "hooks_sent": float(sent),
        "events_published": float(published),
        "publish_drain_s": drain_s,
        # Process CPU per call answered in its rounds (the backend's includes its outbox relay).
        "hooks_backend_cpu_ms": cpu["hooks"][0] * 1000 / max(1, calls["hooks"]),
        "hooks_gateway_cpu_ms": cpu["hooks"][1] * 1000 / max(1, calls["hooks"]),
        "whoami_backend_cpu_ms": cpu["whoami"][0] * 1000 / max(1, calls["whoami"]),
        "whoami_gateway_cpu_ms": cpu["whoami"][1] * 1000 / max(1, calls["whoami"]),
        **stages,
        "hooks_failed": float(failed["hooks"] + max(0, sent - published)),
        "whoami_failed": float(failed["whoami"]),
    }


def run_postgres(seconds: float, rounds: int) -> dict[str, float]:
    """The same pass on PostgreSQL (writers in parallel) when SALESOPS_BENCH_POSTGRES_URL or
    SALESOPS_TEST_POSTGRES_URL names a server; {} otherwise."""
    import uuid

    from sqlalchemy.engine import make_url

    admin = os.environ.get("SALESOPS_BENCH_POSTGRES_URL") or os.environ.get("SALESOPS_TEST_POSTGRES_URL", "")
    if not admin:
        return {}
    name = f"salesops_bench_inbound_{uuid.uuid4().hex[:8]}"
    asyncio.run(pg_database(admin, name))
    try:
        url = make_url(admin).set(database=name, drivername="postgresql+asyncpg")
        return run(seconds, rounds, url.render_as_string(hide_password=False))
    finally:
        asyncio.run(pg_database(admin, name, drop=True))


def _split(f: dict[str, float], label: str) -> str:
    return (
        " / ".join(
            f"{f.get(f'hooks_{label}_{stage}_ms', float('nan')):.1f}"
            for stage in ("to_handler", "in_handler", "after")
        )
        + " ms"
    )


def _figures(f: dict[str, float], label: str, rounds: str) -> list[Figure]:
    return [
        pick(
            f,
            "hooks_per_s",
            "webhooks/s",
            name=f"inbound webhook verify + store + publish via gateway ({label})",
            baseline="whoami_per_s",
            goal=Goal(0.25, AT_LEAST),
            failed=["hooks_failed", "whoami_failed"],
            note=f"{rounds}, {CONCURRENCY} in flight; "
            f"{int(f.get('events_published', 0)):,} of {int(f.get('hooks_sent', 0)):,} events on the stream "
            f"{f.get('publish_drain_s', float('nan')):.1f} s after the last; CPU per call, integration / gateway: "
            f"webhook {f.get('hooks_backend_cpu_ms', float('nan')):.2f} / {f.get('hooks_gateway_cpu_ms', float('nan')):.2f} ms, "
            f"WhoAmI {f.get('whoami_backend_cpu_ms', float('nan')):.2f} / {f.get('whoami_gateway_cpu_ms', float('nan')):.2f} ms",
        ),
        pick(
            f,
            "hooks_p99_ms",
            "ms",
            name=f"inbound webhook p99 via gateway ({label})",
            baseline="whoami_p99_ms",
            # Same-run ratio: absolute latencies on a shared 2-core machine say more about the neighbours.
            goal=Goal(2.0, AT_MOST),
            failed=["hooks_failed"],
            note=f"p50 {f.get('hooks_p50_ms', float('nan')):.0f} ms at {CONCURRENCY} in flight; "
            f"the slowest 1 % before / in / after integration's handler {_split(f, 'p99')}, "
            f"the median's {_split(f, 'p50')}; baseline: WhoAmI p99, same gateway and run",
        ),
    ]


def suite(quick: bool) -> list[Figure]:
    """Verdict figures: webhooks per second vs WhoAmI per second through the same gateway; p99.

    SQLite always; PostgreSQL too when a server is configured (full runs only)."""
    seconds, rounds = (2.0, 1) if quick else (5.0, 3)
    text = "1 round of 2 s" if quick else "median of 3 rounds of 5 s"
    figures = _figures(run(seconds, rounds), "SQLite", text)
    pg = {} if quick else run_postgres(seconds, rounds)
    if pg:
        figures += _figures(pg, "PostgreSQL", text)
    return figures


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "serve":
        import uvloop

        uvloop.run(_serve(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]))
    else:
        print(run(2.0, 1))
