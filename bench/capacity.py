"""Capacity on paper: CPU time per request of each service's RPC classes, at 1 and 2 replicas.

For each service (leads, pipeline) and class (create, get, list):

- **CPU per request**: API replicas run as real processes (`python -m services.<svc> --role api`);
  a set of 1 replica and a set of 2 replicas run side by side, each on its own database, and
  take turns (ROUNDS turns per class, which set goes first alternating) so that the machine's
  other load hits both alike. A balanced client (kit.grpc.balancing, round_robin over an
  `ipv4:` list) sends the calls at a fixed rate per replica (RATE, up to 8 in flight per
  replica): each process sees the same load in both sets; the CPU the replicas used (user +
  system time from /proc, not wall time) is divided by the calls answered, less the replicas'
  idle CPU (readiness checks, relay and consumer polls, measured before and after the classes).
  The 2-replica figure over the 1-replica one is the coordination cost: it must stay near 1.

  Why a fixed rate and not as fast as the client can: on the 2-core machine, two replicas
  driven flat out and the client are three busy processes on two cores, one replica and the
  client two. The client, starved, then fed each of the two replicas well under half the
  calls per second the single one got, so each process's fixed cost per event-loop wake-up
  (and per hand-off to a SQLite thread) was shared by fewer calls. Pipeline GetDeal / ListDeals
  came out 1.33 / 1.40 at 2 replicas flat out even with each replica on a database file of its
  own (nothing shared to coordinate over); in one run taking turns both ways (load 8-13), flat
  out 1.16 / 1.20, paced 1.005 / 1.00. Flat out measured the machine's share, not the cost of
  a second replica. The rates keep both sets well inside the machine (the 2-replica set's
  replicas and client together use about half a core), and each replica's calls still overlap
  the other's on the shared database and Redis.
- **Work per request**: the same classes on an in-process server whose engine counts SQL
  statements and transactions, and the outbox rows (= events for Redis) each class writes.

The database is PostgreSQL when SALESOPS_BENCH_POSTGRES_URL (or SALESOPS_TEST_POSTGRES_URL)
names an admin URL (a database is created for the run and dropped after), else SQLite.
Failed calls are counted, never hidden; every wait has a limit.
"""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from tempfile import TemporaryDirectory
from types import SimpleNamespace
from typing import Any, NamedTuple

import grpc
from google.type import date_pb2  # type: ignore[import-untyped]
from sqlalchemy import event, func, select

from bench.pg import pg_database
from bench.procs import cpu_seconds
from bench.verdict import AT_MOST, Figure, Goal, pick
from deploy.local.demo import demo_clients, demo_tokens
from deploy.local.infra import free_port, start_redis, wait_port
from kit.auth import AuthConfig, TokenVerifier
from kit.config import GrpcSettings
from kit.db import Database
from kit.grpc.client import channel
from kit.grpc.server import GrpcServer
from kit.migrations import upgrade_to_head
from salesops.common.v1.types_pb2 import Money
from salesops.leads.v1 import enums_pb2, lead_pb2, leads_service_pb2_grpc
from salesops.leads.v1 import leads_service_pb2 as lpb
from salesops.pipeline.v1 import deal_pb2, pipeline_service_pb2_grpc
from salesops.pipeline.v1 import pipeline_service_pb2 as ppb

ROOT = Path(__file__).resolve().parents[1]
CALLS = {"create": 400, "get": 2000, "list": 1000}
ROUNDS = 4  # turns per class and replica set, which set goes first alternating (the median counts)
IN_FLIGHT = 8  # per replica, at most
# Calls per second per replica: each replica sees the same load at 1 and at 2 replicas, and the
# 2-replica set (both replicas and the client) stays well inside the machine (see the docstring).
RATE = {"create": 15.0, "get": 150.0, "list": 50.0}
IDLE_SECONDS = 3.0

Call = Callable[[Any, int], Awaitable[Any]]


@dataclass(frozen=True)
class Service:
    name: str
    stub: Callable[[grpc.aio.Channel], Any]
    classes: Mapping[str, Call]  # class -> (stub, i) -> call


def _md(user: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {TOKENS[user]}"),)


TOKENS = demo_tokens(AuthConfig.from_env({}))
RUN = uuid.uuid4().hex[:6].upper()


def _lead(i: int) -> lead_pb2.Lead:
    return lead_pb2.Lead(
        lead_id=f"CAP{RUN}{i:06d}",
        contact=lead_pb2.LeadContact(name=f"Buyer {uuid.uuid4().hex[:8]}", phone=f"139{i:08d}"),
        company=lead_pb2.LeadCompany(name=uuid.uuid4().hex),
        source=lead_pb2.LeadSource(channel=enums_pb2.LEAD_CHANNEL_CALL_CENTER),
        region="east/shanghai",
        stated_budget=Money(amount_minor=50_000_000, currency="CNY"),
    )


def _deal(i: int) -> deal_pb2.Deal:
    return deal_pb2.Deal(
        deal_id=f"cap-{RUN}-{i}",
        title=f"Capacity deal {i}",
        customer=deal_pb2.DealCustomer(display_name=f"Customer {uuid.uuid4().hex[:10]}", industry="retail"),
        owner_user_id="rep-a1",
        amount=Money(amount_minor=1_000_000, currency="CNY"),
        expected_close_date=date_pb2.Date(year=2030, month=6, day=30),
    )


LEADS = Service(
    "leads",
    leads_service_pb2_grpc.LeadsServiceStub,
    {
        "create": lambda s, i: s.CreateLead(
            lpb.CreateLeadRequest(lead=_lead(i)), metadata=_md("sup-a"), timeout=30
        ),
        "get": lambda s, i: s.GetLead(
            lpb.GetLeadRequest(lead_id=f"CAP{RUN}{i % 50:06d}"), metadata=_md("sup-a"), timeout=30
        ),
        "list": lambda s, i: s.ListLeads(
            lpb.ListLeadsRequest(page_size=20), metadata=_md("sup-a"), timeout=30
        ),
    },
)
PIPELINE = Service(
    "pipeline",
    pipeline_service_pb2_grpc.PipelineServiceStub,
    {
        "create": lambda s, i: s.CreateDeal(
            ppb.CreateDealRequest(deal=_deal(i)), metadata=_md("rep-a1"), timeout=30
        ),
        "get": lambda s, i: s.GetDeal(
            ppb.GetDealRequest(deal_id=f"cap-{RUN}-{i % 50}"), metadata=_md("rep-a1"), timeout=30
        ),
        "list": lambda s, i: s.ListDeals(
            ppb.ListDealsRequest(page_size=20), metadata=_md("rep-a1"), timeout=30
        ),
    },
)
SERVICES = (LEADS, PIPELINE)


async def drive(
    stub: Any, call: Call, n: int, offset: int, in_flight: int = IN_FLIGHT, rate: float = 0.0
) -> tuple[int, int, float]:
    """n calls, at most `in_flight` at a time, the k-th started no earlier than k / `rate` s after the
    first (0: as fast as they are answered); returns (answered, failed, wall seconds)."""
    ok = failed = 0
    queue = iter(range(offset, offset + n))
    started = time.perf_counter()

    async def worker() -> None:
        nonlocal ok, failed
        for i in queue:
            if rate:
                due = started + (i - offset) / rate - time.perf_counter()
                if due > 0:
                    await asyncio.sleep(due)
            try:
                await call(stub, i)
                ok += 1
            except grpc.aio.AioRpcError as exc:
                failed += 1
                if failed == 1:  # say why once: a failing class measures nothing
                    print(
                        f"   {call.__name__ if hasattr(call, '__name__') else call}: {exc.code().name} {exc.details()}",
                        flush=True,
                    )

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(in_flight))), 600)
    return ok, failed, time.perf_counter() - started


class Replicas:
    def __init__(self, service: str, env: dict[str, str]) -> None:
        self.service = service
        self.env = env
        self.procs: list[tuple[subprocess.Popen[bytes], int]] = []

    def start(self) -> None:
        port = free_port()
        environ = {**self.env, f"SALESOPS_{self.service.upper()}_PORT": str(port)}
        proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.service}", "--role", "api"], cwd=ROOT, env=environ
        )
        self.procs.append((proc, port))
        wait_port("127.0.0.1", port, 120, proc)  # type: ignore[arg-type]

    @property
    def target(self) -> str:
        return "ipv4:" + ",".join(f"127.0.0.1:{port}" for _, port in self.procs)

    def cpu(self) -> list[float]:
        return [cpu_seconds(proc.pid) for proc, _ in self.procs]

    def stop(self) -> None:
        for proc, _ in self.procs:
            proc.terminate()
        for proc, _ in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.procs.clear()


async def _seed(service: Service, address: str) -> None:
    from services.leads.app import SPEC as LEADS_SPEC
    from services.pipeline.app import SPEC as PIPELINE_SPEC

    spec = {"leads": LEADS_SPEC, "pipeline": PIPELINE_SPEC}[service.name]
    if spec.demo_seed is not None:
        await spec.demo_seed(demo_clients({service.name: address}, TOKENS))


class _Turn(NamedTuple):
    """One set's turn at one class: calls answered and failed, wall seconds, the set's CPU seconds
    and its busiest replica's."""

    cls: str
    replicas: int
    ok: int
    failed: int
    wall: float
    cpu: float
    busiest: float


async def idle_cpu(groups: Mapping[int, Replicas]) -> dict[int, float]:
    """Each set's CPU (cores) over IDLE_SECONDS with no calls."""
    idle: dict[int, float] = {}
    for replicas, group in groups.items():
        idle0, t0 = sum(group.cpu()), time.perf_counter()
        await asyncio.sleep(IDLE_SECONDS)
        idle[replicas] = (sum(group.cpu()) - idle0) / (time.perf_counter() - t0)
    return idle


async def cpu_per_request(service: Service, envs: Mapping[int, dict[str, str]]) -> dict[str, float]:
    """Both replica sets run side by side (one database each) and take turns, ROUNDS times per
    class, so a change in the machine's other load hits both alike; the median round counts.
    Each replica gets RATE[class] calls/s in both sets."""
    groups = {replicas: Replicas(service.name, env) for replicas, env in envs.items()}
    out: dict[str, float] = {}
    try:
        stubs: dict[int, Any] = {}
        channels = []
        for replicas, group in groups.items():
            for _ in range(replicas):
                group.start()  # one after the other: each migrates (a no-op after the first) before serving
            ch = channel(group.target)
            channels.append(ch)
            stubs[replicas] = service.stub(ch)
            await _seed(service, group.target)
            for call in service.classes.values():  # warm-up; creates 0..49 are what `get` reads
                await drive(stubs[replicas], call, 50, 0)
        # Idle before and after the classes, the mean subtracted: a set's background (relay and
        # consumer polls) after the creates' events may differ from before them.
        idle_before = await idle_cpu(groups)
        measured: list[_Turn] = []
        offset = 1000
        for name, call in service.classes.items():
            for turn in range(ROUNDS):
                order = list(groups.items())
                for replicas, group in order if turn % 2 == 0 else order[::-1]:
                    before = group.cpu()
                    n = CALLS[name] // ROUNDS
                    ok, failed, wall = await drive(
                        stubs[replicas], call, n, offset, IN_FLIGHT * replicas, RATE[name] * replicas
                    )
                    used = [a - b for a, b in zip(group.cpu(), before, strict=True)]
                    offset += n
                    measured.append(_Turn(name, replicas, ok, failed, wall, sum(used), max(used)))
        idle_after = await idle_cpu(groups)
        idle = {r: (idle_before[r] + idle_after[r]) / 2 for r in groups}
        for replicas in groups:
            out[f"r{replicas}_idle_cpu_pct"] = 100 * idle[replicas]
        for name in service.classes:
            rounds: dict[int, list[tuple[float, float, int, float, float]]] = {r: [] for r in groups}
            for t in measured:
                if t.cls == name:
                    net = t.cpu - idle[t.replicas] * t.wall
                    # (net ms, raw ms, failed, calls/s, the busiest replica's share of the CPU)
                    rounds[t.replicas].append(
                        (
                            1000 * net / max(t.ok, 1),
                            1000 * t.cpu / max(t.ok, 1),
                            t.failed,
                            t.ok / t.wall,
                            t.busiest / max(t.cpu, 1e-9),
                        )
                    )
            for replicas, found in rounds.items():
                key = f"r{replicas}_{name}"
                out[f"{key}_cpu_ms"] = median(r[0] for r in found)
                out[f"{key}_raw_cpu_ms"] = median(r[1] for r in found)
                out[f"{key}_failed"] = sum(r[2] for r in found)
                out[f"{key}_rps"] = median(r[3] for r in found)
                out[f"{key}_max_share"] = max(r[4] for r in found)
        for ch in channels:
            await ch.close(None)
    finally:
        for group in groups.values():
            group.stop()
    return out


async def work_per_request(service: Service, database_url: str) -> dict[str, float]:
    """Statements, transactions and outbox rows per call, on an in-process server."""
    from services.leads import api as leads_api
    from services.leads.app import SPEC as LEADS_SPEC
    from services.pipeline import api as pipeline_api
    from services.pipeline.app import SPEC as PIPELINE_SPEC

    api, spec = {"leads": (leads_api, LEADS_SPEC), "pipeline": (pipeline_api, PIPELINE_SPEC)}[service.name]
    db = Database(database_url)
    await upgrade_to_head(service.name, db)
    counts = {"statements": 0, "commits": 0}

    def statement(*_args: Any) -> None:
        counts["statements"] += 1

    def commit(*_args: Any) -> None:
        counts["commits"] += 1

    event.listen(db.engine.sync_engine, "before_cursor_execute", statement)
    event.listen(db.engine.sync_engine, "commit", commit)
    settings = GrpcSettings(f"127.0.0.1:{free_port()}", False, 1.0, 30.0, 8 * 1024 * 1024, 30_000, 10_000)
    server = GrpcServer(
        service.name,
        settings,
        TokenVerifier(AuthConfig.from_env({})),
        api.registrations(SimpleNamespace(db=db)),  # type: ignore[arg-type]
    )
    await server.start()
    out: dict[str, float] = {}

    async def outbox_rows() -> int:
        async with db.system_session() as session:
            return int(await session.scalar(select(func.count()).select_from(spec.outbox)) or 0)

    try:
        async with channel(server.address) as ch:
            stub = service.stub(ch)
            await _seed(service, server.address)
            for call in service.classes.values():
                await drive(stub, call, 50, 0)
            n = 100
            for name, call in service.classes.items():
                s0, c0, e0 = counts["statements"], counts["commits"], await outbox_rows()
                ok, failed, _ = await drive(stub, call, n, 1000)
                out[f"{name}_statements"] = (counts["statements"] - s0) / max(ok, 1)
                out[f"{name}_commits"] = (counts["commits"] - c0) / max(ok, 1)
                out[f"{name}_events"] = (await outbox_rows() - e0) / max(ok, 1)
                out[f"{name}_failed"] = failed
    finally:
        await server.stop(0)
        await db.dispose()
    return out


async def _measure(tmp: Path) -> dict[str, float]:
    redis = start_redis(tmp / "redis", persist=False)
    admin = os.environ.get("SALESOPS_BENCH_POSTGRES_URL") or os.environ.get("SALESOPS_TEST_POSTGRES_URL")
    report: dict[str, float] = {"cores": float(os.cpu_count() or 0)}
    try:
        for service in SERVICES:
            databases: list[str] = []

            async def database(tag: str, service: Service = service, databases: list[str] = databases) -> str:
                if not admin:
                    return f"sqlite+aiosqlite:///{tmp / f'{service.name}-{tag}.db'}"
                name = f"capacity_{service.name}_{tag}_{uuid.uuid4().hex[:6]}"
                await pg_database(admin, name)
                databases.append(name)
                return admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://") + "/" + name

            try:
                envs = {}
                for replicas in (1, 2):
                    env = {
                        k: v for k, v in os.environ.items() if not k.startswith(("SALESOPS_", "REDIS_URL"))
                    }
                    env.update(
                        SALESOPS_VAR_DIR=str(tmp / f"var-{service.name}-{replicas}"),
                        **{f"SALESOPS_{service.name.upper()}_DATABASE_URL": await database(f"r{replicas}")},
                        SALESOPS_REDIS_URL=redis.address.rsplit("/", 1)[0] + "/0",
                        SALESOPS_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",  # the APIs answer without it
                        SALESOPS_LOG_LEVEL="ERROR",
                        SALESOPS_GRPC_REFLECTION="0",
                    )
                    envs[replicas] = env
                found = await cpu_per_request(service, envs)
                report.update({f"{service.name}_{k}": v for k, v in found.items()})
                for name in service.classes:
                    one, two = (
                        report[f"{service.name}_r1_{name}_cpu_ms"],
                        report[f"{service.name}_r2_{name}_cpu_ms"],
                    )
                    report[f"{service.name}_{name}_r2_over_r1"] = two / one if one > 0 else 0.0
                    report[f"{service.name}_{name}_per_core_rps"] = 1000 / one if one > 0 else 0.0
                work = await work_per_request(service, await database("work"))
                report.update({f"{service.name}_{k}": v for k, v in work.items()})
            finally:
                for name in databases:
                    await pg_database(admin or "", name, drop=True)
    finally:
        redis.stop()
    report["postgres"] = 1.0 if admin else 0.0
    return report


def run() -> dict[str, float]:
    print(f"   machine: {platform.machine()} {platform.processor() or ''} cores={os.cpu_count()}", flush=True)
    with TemporaryDirectory(prefix="salesops-capacity-") as tmp:
        return asyncio.run(_measure(Path(tmp)))


def _note(f: Mapping[str, float], svc: str, cls: str) -> str:
    sets = [
        f"r{r}: raw {f[f'{svc}_r{r}_{cls}_raw_cpu_ms']:.2f} ms/call at {f[f'{svc}_r{r}_{cls}_rps']:.0f}/s "
        f"(paced {RATE[cls] * r:.0f}/s), "
        f"idle {f[f'{svc}_r{r}_idle_cpu_pct']:.1f} %"
        for r in (1, 2)
    ]
    return "; ".join(sets)


def suite(quick: bool) -> list[Figure]:
    """Verdict figures (bench.verdict): CPU per request at 2 replicas against 1 (coordination cost)."""
    f = run()
    return [
        pick(
            f,
            f"{svc.name}_r2_{cls}_cpu_ms",
            "ms CPU/call",
            name=f"{svc.name} {cls}, 2 replicas",
            baseline=f"{svc.name}_r1_{cls}_cpu_ms",
            goal=Goal(1.25, AT_MOST),
            failed=[f"{svc.name}_r1_{cls}_failed", f"{svc.name}_r2_{cls}_failed"],
            # The net figure subtracts each set's idle CPU (the relays' and consumers' polls) over
            # the round's wall time; paced, a round's wall time is its calls over the set's rate,
            # so that term per call is about the same at 1 and 2 replicas.
            note=_note(f, svc.name, cls),
        )
        for svc in SERVICES
        for cls in svc.classes
    ]


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:<40} {value:12.3f}")
