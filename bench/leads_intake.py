"""Leads intake benchmark: CreateLead over gRPC with dedupe, grading and routing, 16 in flight,
against 100,000 existing leads on SQLite and 1,000,000 on PostgreSQL (when SALESOPS_BENCH_POSTGRES_URL
or SALESOPS_TEST_POSTGRES_URL is set). The leads API runs in its own process, as `make run` and k8s
run it (`python -m services.leads --role api`, its outbox relay to a Redis of its own); this process
is the client. leads/s, p50/p99, and the server process's CPU per lead (/proc); baseline in the same
run: a bare single-row INSERT + COMMIT of the same table, 16 in flight, from this process (its
rows/s, p99, and this process's CPU per row). ImportLeads of 1,000 rows (validate-only, then real)
to the same server: seconds and the server's CPU.

    .venv/bin/python -m bench.bench_leads intake
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, cast

from bench.leads_rows import _in_flight, _insert, _lead_pb, _lead_rows, _pct
from bench.pg import pg_database
from bench.procs import cpu_seconds as _cpu_s
from bench.procs import py_spy

ROOT = Path(__file__).resolve().parent.parent
EXISTING = int(os.environ.get("SALESOPS_BENCH_LEADS_SQLITE", "100000"))
PG_EXISTING = int(os.environ.get("SALESOPS_BENCH_LEADS_PG", "1000000"))
INTAKE_REQUESTS = 400
# --quick (make bench-quick): a tenth of the existing leads and half the requests.
QUICK_SHARE, QUICK_REQUESTS = 0.1, 200
INTAKE_CONCURRENCY = 16


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
                spy = py_spy(server.pid)
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
        runner.run(pg_database(admin, name))
        try:
            url = (
                make_url(admin)
                .set(database=name, drivername="postgresql+asyncpg")
                .render_as_string(hide_password=False)
            )
            pg = runner.run(_intake(url, int(PG_EXISTING * share), requests))
            out.update({f"pg_{k}": v for k, v in pg.items()})
        finally:
            runner.run(pg_database(admin, name, drop=True))
    return out
