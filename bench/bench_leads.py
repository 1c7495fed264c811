"""Benchmarks of the leads service, each against a bare baseline measured in the same run.

- routing: one decision over 200 rules and 2,000 reps (the last rule matches), p50/p99 ms,
  for a team of 100 reps and for the worst case of one team holding all 2,000; baseline:
  a bare scan touching every rule and rep once.
- intake: CreateLead over gRPC with dedupe, grading and routing, 16 in flight, against 100,000
  existing leads on SQLite and 1,000,000 on PostgreSQL (when SALESOPS_BENCH_POSTGRES_URL or
  SALESOPS_TEST_POSTGRES_URL is set). The leads API runs in its own process, as `make run` and k8s
  run it (`python -m services.leads --role api`, its outbox relay to a Redis of its own); this
  process is the client. leads/s, p50/p99, and the server process's CPU per lead (/proc); baseline
  in the same run: a bare single-row INSERT + COMMIT of the same table, 16 in flight, from this
  process (its rows/s, p99, and this process's CPU per row). ImportLeads of 1,000 rows
  (validate-only, then real) to the same server: seconds and the server's CPU.
- sla: 500 open SLA watch workflows (scaled down from 10,000: 2,000 overloads this
  shared 2-core machine) on a Temporal dev server, PostgreSQL when available: start
  rate, and reminder lateness (event written - reminder due) p50/p99; baseline: the same
  number of bare timer workflows (timer + no-op activity, no database) on the same schedule.

- mixed: SQLite under 16 GetLead readers alone, then beside 4 CreateLead writers, then 64
  concurrent CreateLead writers: read p99 as a ratio to reads alone, failed requests counted.

    .venv/bin/python -m bench.bench_leads [routing|intake|mixed|sla]
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent
EXISTING = int(os.environ.get("SALESOPS_BENCH_LEADS_SQLITE", "100000"))
PG_EXISTING = int(os.environ.get("SALESOPS_BENCH_LEADS_PG", "1000000"))
INTAKE_REQUESTS = 400
# --quick (make bench-quick): a tenth of the existing leads and half the requests.
QUICK_SHARE, QUICK_REQUESTS = 0.1, 200
INTAKE_CONCURRENCY = 16
WORKFLOWS = 500


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


# --------------------------------------------------------------------------- routing


def routing() -> dict[str, float]:
    from kit.calendar import BusinessCalendar
    from services.leads.domain import routing as r

    now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in Shanghai
    cal = BusinessCalendar()
    rules = [
        r.Rule(
            f"r{i}",
            f"east/t{i % 20}",
            r.LEAST_LOADED if i % 2 else r.WRR,
            regions=(f"reg{i}/*",),
            grades=("A", "B"),
        )
        for i in range(199)
    ]
    reps = [
        r.Rep(
            f"u{i}",
            f"east/t{i % 20}",
            capacity=30,
            open_leads=i % 31,
            skills=frozenset({"erp"}) if i % 3 else frozenset(),
            languages=frozenset({"zh-CN"}),
        )
        for i in range(2000)
    ]
    team = r.Rule(
        "last", "east/t7", r.LEAST_LOADED, regions=("east/*",), required_skills=("erp",), match_language=True
    )
    everyone = r.Rule("last", "east", r.LEAST_LOADED, regions=("east/*",), include_sub_teams=True)

    cpu: dict[str, list[float]] = {}

    def run(last: r.Rule, n: int = 500) -> list[float]:
        # Wall time (what a caller waits, scheduling included) and this thread's CPU time (the
        # decision's own cost): on a loaded shared machine the run queue dominates the wall p99.
        lat, spent = [], cpu.setdefault(last.team_path, [])
        for i in range(n):
            lead = r.LeadFacts(f"lead{i}", region="east/sh", grade="A", language="zh-CN")
            t, c = time.perf_counter(), time.thread_time()
            d = r.route(lead, [*rules, last], reps, now, tenant_calendar=cal)
            lat.append((time.perf_counter() - t) * 1000)
            spent.append((time.thread_time() - c) * 1000)
            assert d.winner
        return lat

    def bare(n: int = 500) -> list[float]:
        lat = []
        for _ in range(n):
            t = time.perf_counter()
            hits = sum(1 for rule in rules if rule.regions[0] == "east/*")
            hits += sum(1 for rep in reps if rep.team_path == "east/t7")
            lat.append((time.perf_counter() - t) * 1000)
            assert hits
        return lat

    run(team, 50)  # warm caches
    cpu.clear()
    team_lat, all_lat, bare_lat = run(team), run(everyone), bare()
    return {
        "routing_all2000_cpu_p50_ms": _pct(cpu["east"], 0.5),
        "routing_all2000_cpu_p99_ms": _pct(cpu["east"], 0.99),
        "routing_team100_cpu_p99_ms": _pct(cpu["east/t7"], 0.99),
        "routing_team100_p50_ms": _pct(team_lat, 0.5),
        "routing_team100_p99_ms": _pct(team_lat, 0.99),
        "routing_all2000_p50_ms": _pct(all_lat, 0.5),
        "routing_all2000_p99_ms": _pct(all_lat, 0.99),
        "bare_scan_p50_ms": _pct(bare_lat, 0.5),
        "routing_team100_vs_bare_scan": statistics.median(team_lat) / statistics.median(bare_lat),
    }


# --------------------------------------------------------------------------- intake


def _lead_rows(n: int, seed: int, prefix: str, offset: int = 0) -> list[dict[str, Any]]:
    rnd = random.Random(seed * 1_000_003 + offset)
    now = datetime.now(UTC)
    words = [
        "acme",
        "zenith",
        "sino",
        "east",
        "hua",
        "tech",
        "trade",
        "motor",
        "data",
        "cloud",
        "bio",
        "steel",
    ]
    rows = []
    for i in range(n):
        company = "".join(rnd.choice(words) for _ in range(3)) + str(rnd.randint(1, 999))
        rows.append(
            {
                "tenant_id": "demo",
                "lead_id": f"{prefix}{i:08d}",
                "status": "IN_POOL",
                "display_name": company,
                "phone": f"+86139{seed % 10}{i + offset:07d}",
                "email": f"{prefix.lower()}{i}@example.com",
                "company_norm": company,
                "company_key": company[:2],
                "region": "east/shanghai",
                "language": "zh-CN",
                "channel": "WEB_FORM",
                "source_code": "",
                "grade": "C",
                "score": 0,
                "grading": {},
                "owner_user_id": None,
                "team_path": "",
                "supervisor_user_id": "",
                "pool_id": "default",
                "pool_entry_reason": "NEW_LEAD",
                "assignment_reason": "",
                "assign_time": None,
                "last_decision_id": "",
                "last_activity_time": None,
                "activity_count": 0,
                "sla_state": "NOT_APPLICABLE",
                "sla_grade": "",
                "sla_start": None,
                "sla_due": None,
                "sla_reminder": None,
                "sla_reminded": False,
                "sla_response_time": None,
                "sla_response_activity_id": "",
                "sla_responder": "",
                "sla_business_seconds": None,
                "sla_breach_time": None,
                "sla_breach_action": "",
                "sla_reassignments": 0,
                "needs_attention": False,
                "recycle_warned": False,
                "duplicate_review_needed": False,
                "intake_count": 1,
                "merged_into": "",
                "converted_opportunity_id": "",
                "close_time": None,
                "body": {},
                "version": 1,
                "created_by": "bench",
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows


async def _insert(db: Any, rows: list[dict[str, Any]], chunk: int = 5000) -> float:
    from sqlalchemy import Table, insert

    from services.leads.store import LeadRow

    table = cast(Table, LeadRow.__table__)
    started = time.perf_counter()
    async with db.engine.begin() as conn:
        if db.is_sqlite:
            for i in range(0, len(rows), chunk):
                await conn.execute(insert(table), rows[i : i + chunk])
        else:
            raw = await conn.get_raw_connection()
            columns = [c.name for c in table.columns]
            import json

            records = [
                tuple(json.dumps(r[c]) if c in ("grading", "body") else r[c] for c in columns) for r in rows
            ]
            await raw.driver_connection.copy_records_to_table("leads", records=records, columns=columns)
    return time.perf_counter() - started


def _lead_pb(row: dict[str, Any]) -> Any:
    from salesops.leads.v1 import enums_pb2, lead_pb2

    return lead_pb2.Lead(
        lead_id=row["lead_id"],
        contact=lead_pb2.LeadContact(name="Li", phone=row["phone"], email=row["email"]),
        company=lead_pb2.LeadCompany(name=row["company_norm"]),
        source=lead_pb2.LeadSource(channel=enums_pb2.LEAD_CHANNEL_WEB_FORM),
        region=row["region"],
    )


async def _in_flight(n: int, concurrency: int, call: Any) -> tuple[float, list[float], int]:
    """`call(i)` for i in range(n) with `concurrency` in flight: (seconds, latencies ms, failures)."""
    latencies: list[float] = []
    failures = 0
    next_i = iter(range(n))

    async def worker() -> None:
        nonlocal failures
        for i in next_i:
            t = time.perf_counter()
            try:
                await call(i)
            except Exception as exc:  # counted and reported, the run goes on
                failures += 1
                if failures <= 3:
                    print(f"   failed call: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
                continue
            latencies.append((time.perf_counter() - t) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, failures


async def _bare_commits(db: Any, rows: list[dict[str, Any]]) -> tuple[float, list[float], int]:
    """The floor: one single-row INSERT + COMMIT of the same table per call, as many in flight."""
    from sqlalchemy import Table, insert

    from services.leads.store import LeadRow

    table = cast(Table, LeadRow.__table__)

    async def one(i: int) -> None:
        async with db.session("demo") as s:
            await s.execute(insert(table), [rows[i]])
            await s.commit()

    return await _in_flight(len(rows), INTAKE_CONCURRENCY, one)


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) process `pid` has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_leads(url: str, tmp: Path, redis_url: str) -> tuple[subprocess.Popen[bytes], str]:
    """The leads API process as `make run` and k8s run it (`python -m services.leads --role api`:
    the gRPC server with its interceptors, the outbox relay to Redis) on the benchmark's database."""
    from deploy.local.infra import free_port, wait_port

    port = free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SALESOPS_", "REDIS_URL"))}
    env = base | {
        "SALESOPS_VAR_DIR": str(tmp / "var"),
        "SALESOPS_LEADS_DATABASE_URL": url,
        "SALESOPS_LEADS_PORT": str(port),
        "SALESOPS_REDIS_URL": redis_url,
        "SALESOPS_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # CreateLead answers without it
        "SALESOPS_LOG_LEVEL": "ERROR",
        "SALESOPS_GRPC_REFLECTION": "0",
    }
    proc = subprocess.Popen([sys.executable, "-m", "services.leads", "--role", "api"], cwd=ROOT, env=env)
    try:
        wait_port("127.0.0.1", port, 120, proc)
    except BaseException:
        _stop(proc)
        raise
    return proc, f"127.0.0.1:{port}"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _py_spy(pid: int) -> tuple[subprocess.Popen[bytes], str] | None:
    """SALESOPS_BENCH_PROFILE=<file.svg|.txt>: py-spy (not a runtime dependency) records the leads
    process over the intake phase (raw collapsed stacks for .txt, a flame graph otherwise)."""
    out = os.environ.get("SALESOPS_BENCH_PROFILE", "")
    if not out:
        return None
    fmt = "raw" if out.endswith(".txt") else "flamegraph"
    spy = Path(sys.executable).parent / "py-spy"
    cmd = [str(spy), "record", "--pid", str(pid), "--output", out, "--format", fmt, "--rate", "200"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached before the calls start
    return proc, out


async def _intake(url: str, existing: int, requests: int = INTAKE_REQUESTS) -> dict[str, float]:
    """CreateLead from this process (the client, INTAKE_CONCURRENCY in flight on one channel) to a
    leads API process of its own (the server); the bare single-row insert + commit runs here, on the
    same table, in the same run. CPU per call: the server process's for CreateLead (the client's is
    reported apart), this process's for a bare row (it is the bare insert's only process)."""
    import grpc

    from deploy.local.infra import start_redis
    from kit.auth import AuthConfig, TokenMinter
    from kit.db import Database
    from kit.migrations import upgrade_to_head
    from salesops.leads.v1 import leads_service_pb2 as pb
    from salesops.leads.v1 import leads_service_pb2_grpc

    db = Database(url, pool_size=20)
    await upgrade_to_head("leads", db)
    existing_s = 0.0
    for start in range(0, existing, 50_000):  # in chunks: a million row dicts would take gigabytes
        rows = _lead_rows(min(50_000, existing - start), 1, f"EX{start // 50_000:03d}", start)
        existing_s += await _insert(db, rows)
    if not db.is_sqlite:
        async with db.engine.begin() as conn:
            from sqlalchemy import text

            await conn.execute(text("ANALYZE leads"))
    token = TokenMinter(AuthConfig.from_env({})).mint("admin", "demo", ["admin"], org="")
    md = (("authorization", f"Bearer {token}"),)
    rows = _lead_rows(requests, 2, "IN")
    bare_rows = _lead_rows(requests, 3, "BA")
    with tempfile.TemporaryDirectory() as tmp:
        redis = start_redis(Path(tmp) / "redis", persist=False, die_with_parent=True)
        server = None
        try:
            server, address = _start_leads(url, Path(tmp), redis.address)
            async with grpc.aio.insecure_channel(address) as ch:
                stub = leads_service_pb2_grpc.LeadsServiceStub(ch)

                async def create(i: int) -> None:
                    req = pb.CreateLeadRequest(lead=_lead_pb(rows[i]))
                    await stub.CreateLead(req, metadata=md, timeout=30)

                warm = _lead_rows(32, 5, "WU")
                await _in_flight(  # warm-up: caches, connections, both sides of the channel
                    len(warm),
                    INTAKE_CONCURRENCY,
                    lambda i: stub.CreateLead(
                        pb.CreateLeadRequest(lead=_lead_pb(warm[i])), metadata=md, timeout=30
                    ),
                )
                cpu0, idle0 = time.process_time(), _cpu_s(server.pid)
                bare_s, bare_lat, bare_failed = await _bare_commits(db, bare_rows)
                cpu1, idle = time.process_time(), _cpu_s(server.pid) - idle0
                spy = _py_spy(server.pid)
                server0 = _cpu_s(server.pid)
                intake_s, latencies, failed = await _in_flight(len(rows), INTAKE_CONCURRENCY, create)
                server_cpu = _cpu_s(server.pid) - server0
                cpu2 = time.process_time()
                load = os.getloadavg()[0]
                if spy:
                    spy[0].send_signal(signal.SIGINT)
                    spy[0].wait(60)
                    print(f"   py-spy profile of the leads process: {spy[1]}", file=sys.stderr)
            # A fresh connection: never near its max age. Not in --quick (two 1,000-row imports per database).
            imports = await _imports(address, md, server.pid) if requests == INTAKE_REQUESTS else {}
        finally:
            if server is not None:
                _stop(server)
            redis.stop()
            await db.dispose()
    intake_rate = len(latencies) / intake_s
    bare_rate = len(bare_lat) / bare_s
    return {
        "existing_leads": float(existing),
        "existing_load_s": existing_s,
        "in_flight": float(INTAKE_CONCURRENCY),
        "intake_leads_per_s": intake_rate,
        "intake_p50_ms": _pct(latencies, 0.5),
        "intake_p99_ms": _pct(latencies, 0.99),
        "intake_failed": float(failed),
        "bare_commit_rows_per_s": bare_rate,
        "bare_commit_p50_ms": _pct(bare_lat, 0.5),
        "bare_commit_p99_ms": _pct(bare_lat, 0.99),
        "bare_commit_failed": float(bare_failed),
        "intake_vs_bare_commit": intake_rate / bare_rate if bare_rate else 0.0,
        # CPU per call: steadier than rates on a shared machine, and it says how far intake is from
        # the floor in work done, not in waiting. The server's own (its process only), beside the
        # bare insert's (this process: the bare insert is all it does meanwhile).
        "intake_server_cpu_ms_per_lead": server_cpu * 1000 / max(1, len(latencies)),
        "intake_client_cpu_ms_per_lead": (cpu2 - cpu1) * 1000 / max(1, len(latencies)),
        "bare_commit_cpu_ms_per_row": (cpu1 - cpu0) * 1000 / max(1, len(bare_lat)),
        # The leads process's CPU while it answers nothing (during the bare inserts): its health
        # checks, its relay's polling, and here its retries to reach a Temporal that is not there.
        "server_idle_cpu_ms_per_s": idle * 1000 / bare_s,
        "load_average": load,
        **imports,
    }


async def _imports(address: str, md: Any, server_pid: int) -> dict[str, float]:
    """ImportLeads of 1,000 rows to the leads process, validate-only then for real (goal: each
    answers within 5 s), with the leads process's CPU for each."""
    import grpc

    from salesops.leads.v1 import leads_service_pb2 as pb
    from salesops.leads.v1 import leads_service_pb2_grpc

    rows = _lead_rows(1000, 6, "IM")
    out: dict[str, float] = {}
    for mode, validate_only in (("validate", True), ("real", False)):
        req = pb.ImportLeadsRequest(import_id=f"bench-{mode}", validate_only=validate_only)
        for r in rows:
            req.rows.add(row_ref=r["lead_id"], lead=_lead_pb(r))
        t, cpu = time.perf_counter(), _cpu_s(server_pid)
        try:
            async with grpc.aio.insecure_channel(address) as ch:
                stub = leads_service_pb2_grpc.LeadsServiceStub(ch)
                res = await stub.ImportLeads(req, metadata=md, timeout=60)
            answered = len(res.results)
            failed = 0.0
        except Exception as exc:
            print(f"   ImportLeads {mode} failed: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
            answered, failed = 0, 1.0
        out[f"import_{mode}_1000_s"] = time.perf_counter() - t
        # The leads process's CPU (not PostgreSQL's): steadier than wall time on a shared machine,
        # where the run queue can multiply the wall time several times.
        out[f"import_{mode}_cpu_s"] = _cpu_s(server_pid) - cpu
        out[f"import_{mode}_rows_answered"] = float(answered)
        out[f"import_{mode}_failed"] = failed
    return out


async def _pg_database(admin_url: str, name: str, drop: bool = False) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(admin_url)
    conn = await asyncpg.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 5432,
        user=u.username or "postgres",
        password=u.password,
        database=u.database or "postgres",
    )
    try:
        await conn.execute(
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)' if drop else f'CREATE DATABASE "{name}"'
        )
    finally:
        await conn.close()


def intake(quick: bool = False) -> dict[str, float]:
    """SQLite at EXISTING leads; PostgreSQL at PG_EXISTING too when a server is configured
    (`quick`: QUICK_SHARE of them, QUICK_REQUESTS calls, no ImportLeads)."""
    share, requests = (QUICK_SHARE, QUICK_REQUESTS) if quick else (1.0, INTAKE_REQUESTS)
    import uvloop
    from sqlalchemy.engine import make_url

    admin = os.environ.get("SALESOPS_BENCH_POSTGRES_URL") or os.environ.get("SALESOPS_TEST_POSTGRES_URL", "")
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        if os.environ.get("SALESOPS_BENCH_INTAKE_DB", "both") in ("both", "sqlite"):
            db_file = f"sqlite+aiosqlite:///{Path(tmp) / 'leads.db'}"
            sqlite = runner.run(_intake(db_file, int(EXISTING * share), requests))
            out.update({f"sqlite_{k}": v for k, v in sqlite.items()})
        if not admin or os.environ.get("SALESOPS_BENCH_INTAKE_DB", "both") == "sqlite":
            return out
        name = f"salesops_bench_{uuid.uuid4().hex[:8]}"
        runner.run(_pg_database(admin, name))
        try:
            url = (
                make_url(admin)
                .set(database=name, drivername="postgresql+asyncpg")
                .render_as_string(hide_password=False)
            )
            pg = runner.run(_intake(url, int(PG_EXISTING * share), requests))
            out.update({f"pg_{k}": v for k, v in pg.items()})
        finally:
            runner.run(_pg_database(admin, name, drop=True))
    return out


# --------------------------------------------------------------------------- mixed SQLite load

MIXED_EXISTING = 20_000
MIXED_READS = 800


async def _serve(db: Any) -> tuple[Any, Any]:
    """The leads gRPC server on `db`, and an admin's call metadata."""
    from deploy.local.infra import free_port
    from kit.auth import AuthConfig, TokenMinter, TokenVerifier
    from kit.config import GrpcSettings
    from kit.grpc.server import GrpcServer
    from services.leads import api

    settings = GrpcSettings(f"127.0.0.1:{free_port()}", False, 1.0, 30.0, 16 << 20, 30_000, 10_000)
    config = AuthConfig.from_env({})
    server = GrpcServer("leads", settings, TokenVerifier(config), api.registrations(SimpleNamespace(db=db)))  # type: ignore[arg-type]
    await server.start()
    token = TokenMinter(config).mint("admin", "demo", ["admin"], org="")
    return server, (("authorization", f"Bearer {token}"),)


async def _mixed(url: str, other_url: str) -> dict[str, float]:
    """Readers beside writers on the same database, against the same readers beside the same
    writers on another database (the baseline): both share this process's CPU and event loop alike,
    so the ratio is what the readers wait for the writer's lock, not for the CPU it takes."""
    import grpc

    from kit.db import Database
    from kit.migrations import upgrade_to_head
    from salesops.leads.v1 import leads_service_pb2 as pb
    from salesops.leads.v1 import leads_service_pb2_grpc

    db = Database(url, pool_size=20)
    other = Database(other_url, pool_size=20)
    await upgrade_to_head("leads", db)
    await upgrade_to_head("leads", other)
    existing = _lead_rows(MIXED_EXISTING, 7, "MX")
    await _insert(db, existing)
    ids = [r["lead_id"] for r in existing]
    server, md = await _serve(db)
    other_server, _ = await _serve(other)
    new_rows = iter(_lead_rows(100_000, 8, "MW"))
    out: dict[str, float] = {}
    try:
        async with (
            grpc.aio.insecure_channel(server.address) as ch,
            grpc.aio.insecure_channel(other_server.address) as other_ch,
        ):
            stub = leads_service_pb2_grpc.LeadsServiceStub(ch)
            rnd = random.Random(9)

            async def read(_: int) -> None:
                await stub.GetLead(pb.GetLeadRequest(lead_id=rnd.choice(ids)), metadata=md, timeout=30)

            def writing(target: Any) -> Any:
                async def write(_: int) -> None:
                    req = pb.CreateLeadRequest(lead=_lead_pb(next(new_rows)))
                    await target.CreateLead(req, metadata=md, timeout=30)

                return write

            write = writing(stub)
            write_elsewhere = writing(leads_service_pb2_grpc.LeadsServiceStub(other_ch))
            await _in_flight(32, 16, read)  # warm-up
            await _in_flight(8, 4, write)
            await _in_flight(8, 4, write_elsewhere)
            _, alone, failed = await _in_flight(MIXED_READS, 16, read)
            writes: list[float] = []

            async def beside(writer_call: Any) -> list[float]:
                nonlocal failed
                stop = asyncio.Event()

                async def writer() -> None:
                    nonlocal failed
                    while not stop.is_set():
                        _, lat, f = await _in_flight(1, 1, writer_call)
                        writes.extend(lat)
                        failed += f

                writers = [asyncio.create_task(writer()) for _ in range(4)]
                try:
                    _, lat, f = await _in_flight(MIXED_READS, 16, read)
                    failed += f
                    return lat
                finally:
                    stop.set()
                    await asyncio.gather(*writers)

            same: list[float] = []
            apart: list[float] = []
            for _ in range(2):  # alternated, so drift in the machine's load falls on both
                apart += await beside(write_elsewhere)
                same += await beside(write)
            burst_s, burst, burst_failed = await _in_flight(320, 64, write)
            failed += burst_failed
    finally:
        await server.stop(0)
        await other_server.stop(0)
        await db.dispose()
        await other.dispose()
    out.update(
        read_alone_p50_ms=_pct(alone, 0.5),
        read_alone_p99_ms=_pct(alone, 0.99),
        read_beside_writers_elsewhere_p99_ms=_pct(apart, 0.99),
        read_with_4_writers_p50_ms=_pct(same, 0.5),
        read_with_4_writers_p99_ms=_pct(same, 0.99),
        read_p99_with_writers_vs_alone=_pct(same, 0.99) / _pct(alone, 0.99),
        writes_during_reads=float(len(writes)),
        write_p99_ms=_pct(writes, 0.99),
        writers_64_creates_per_s=len(burst) / burst_s,
        writers_64_p99_ms=_pct(burst, 0.99),
        failed_requests=float(failed),
    )
    return out


def mixed() -> dict[str, float]:
    """SQLite under mixed load: 16 GetLead readers beside 4 CreateLead writers on the same database
    and on another one (the baseline), then 64 concurrent CreateLead writers; every failure counted."""
    import uvloop

    with tempfile.TemporaryDirectory() as tmp, asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(
            _mixed(
                f"sqlite+aiosqlite:///{Path(tmp) / 'leads.db'}",
                f"sqlite+aiosqlite:///{Path(tmp) / 'other.db'}",
            )
        )


# --------------------------------------------------------------------------- SLA workflows

from temporalio import activity as _activity  # noqa: E402
from temporalio import workflow as _workflow  # noqa: E402

_FIRED: dict[str, float] = {}


@_activity.defn(name="bench.bare_fire")
async def _bare_fire(key: str) -> None:
    _FIRED[key] = time.time()


@_workflow.defn(name="BenchBareTimer", sandboxed=False)
class BareTimerWorkflow:
    """The baseline: a timer and a no-op activity, no database."""

    @_workflow.run
    async def run(self, key: str, due_epoch: float) -> None:
        delay = due_epoch - _workflow.now().timestamp()
        if delay > 0:
            await _workflow.sleep(delay)
        await _workflow.execute_activity(_bare_fire, key, start_to_close_timeout=timedelta(seconds=30))


async def _sla(url: str) -> dict[str, float]:
    from sqlalchemy import select
    from temporalio.testing import WorkflowEnvironment

    from deploy.local.infra import find_temporal
    from kit.db import Database
    from kit.migrations import upgrade_to_head
    from kit.temporal import WorkerRunner, build_worker
    from services.leads import activities, consumers, workflows
    from services.leads.store import outbox

    db = Database(url, pool_size=20)
    await upgrade_to_head("leads", db)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find_temporal(), dev_server_extra_args=["--log-level", "error"]
    )
    queue = f"bench-{uuid.uuid4().hex[:6]}"
    acts = activities.WatchActivities(db)
    runner = WorkerRunner(
        build_worker(
            env.client,
            queue,
            workflows=[workflows.LeadWatchWorkflow, BareTimerWorkflow],
            activities=[acts.next_timer, acts.fire, _bare_fire],
            max_pollers=10,
        )
    )
    runner.start()
    try:
        rows = _lead_rows(WORKFLOWS, 4, "SL")
        t0 = datetime.now(UTC) + timedelta(seconds=20)
        due: dict[str, datetime] = {}
        for i, row in enumerate(rows):
            # Reminders spread over 25 s (40/s), starting once every workflow has started.
            reminder = t0 + timedelta(milliseconds=25 * i)
            row.update(
                status="ASSIGNED",
                owner_user_id=f"rep-{i % 50}",
                pool_id=None,
                assign_time=datetime.now(UTC),
                sla_state="PENDING",
                sla_grade="A",
                sla_start=datetime.now(UTC),
                sla_reminder=reminder,
                sla_due=reminder + timedelta(minutes=30),
                grade="A",
            )
            due[row["lead_id"]] = reminder
        await _insert(db, rows)
        sem = asyncio.Semaphore(64)

        async def start(lead_id: str) -> None:
            async with sem:
                await consumers.poke(env.client, queue, "demo", lead_id)

        started = time.perf_counter()
        await asyncio.gather(*(start(r["lead_id"]) for r in rows))
        start_s = time.perf_counter() - started
        deadline = time.monotonic() + 60
        found: list[Any] = []
        while time.monotonic() < deadline:
            async with db.system_session() as s:
                result = await s.execute(
                    select(outbox.c.subject, outbox.c.created_at).where(
                        outbox.c.type == "leads.SlaReminderDue"
                    )
                )
                found = list(result.all())
            if len(found) >= WORKFLOWS:
                break
            await asyncio.sleep(0.5)
        lateness = [
            ((c if c.tzinfo else c.replace(tzinfo=UTC)) - due[subject]).total_seconds()
            for subject, c in found
        ]
        # Baseline in the same run: the same number of bare timers on the same schedule.
        _FIRED.clear()
        base0 = time.time() + 12
        bare_due = {f"b{i}": base0 + 0.025 * i for i in range(WORKFLOWS)}

        async def start_bare(key: str) -> None:
            async with sem:
                await env.client.start_workflow(
                    BareTimerWorkflow.run,
                    args=[key, bare_due[key]],
                    id=f"bare-{key}-{queue}",
                    task_queue=queue,
                )

        bare_started = time.perf_counter()
        await asyncio.gather(*(start_bare(k) for k in bare_due))
        bare_start_s = time.perf_counter() - bare_started
        for _ in range(120):
            if len(_FIRED) >= WORKFLOWS:
                break
            await asyncio.sleep(0.5)
        bare_lateness = [_FIRED[k] - bare_due[k] for k in _FIRED]
    finally:
        await runner.stop()
        await env.shutdown()
        await db.dispose()
    return {
        "workflows": float(WORKFLOWS),
        "start_rate_per_s": WORKFLOWS / start_s,
        "reminders_fired": float(len(found)),
        "bare_start_rate_per_s": WORKFLOWS / bare_start_s,
        "bare_timer_lateness_p50_s": _pct(bare_lateness, 0.5),
        "bare_timer_lateness_p99_s": _pct(bare_lateness, 0.99),
        "reminder_vs_bare_lateness_p99": _pct(lateness, 0.99) / max(_pct(bare_lateness, 0.99), 1e-3),
        "reminder_lateness_p50_s": _pct(lateness, 0.5),
        "reminder_lateness_p99_s": _pct(lateness, 0.99),
    }


def sla() -> dict[str, float]:
    import uvloop
    from sqlalchemy.engine import make_url

    admin = os.environ.get("SALESOPS_BENCH_POSTGRES_URL") or os.environ.get("SALESOPS_TEST_POSTGRES_URL", "")
    with tempfile.TemporaryDirectory() as tmp, asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        if not admin:
            out = runner.run(_sla(f"sqlite+aiosqlite:///{Path(tmp) / 'leads.db'}"))
            out["postgres"] = 0.0
            return out
        name = f"salesops_bench_{uuid.uuid4().hex[:8]}"
        runner.run(_pg_database(admin, name))
        try:
            url = make_url(admin).set(database=name, drivername="postgresql+asyncpg")
            out = runner.run(_sla(url.render_as_string(hide_password=False)))
            out["postgres"] = 1.0
            return out
        finally:
            runner.run(_pg_database(admin, name, drop=True))


def measure() -> dict[str, float]:
    out: dict[str, float] = {}
    for name, fn in (("routing", routing), ("intake", intake), ("mixed", mixed), ("sla", sla)):
        for key, value in fn().items():
            out[f"{name}.{key}"] = value
    return out


if __name__ == "__main__":
    chosen = sys.argv[1:] or ["routing", "intake", "mixed", "sla"]
    for name in chosen:
        suites = {"routing": routing, "intake": intake, "mixed": mixed, "sla": sla}
        for key, value in suites[name]().items():
            print(f"{name}.{key:<36} {value:12.3f}", flush=True)
