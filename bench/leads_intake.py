"""Leads intake benchmark: CreateLead over gRPC with dedupe, grading and routing, 16 in flight,
against 100,000 existing leads on SQLite and 1,000,000 on PostgreSQL (when SALESOPS_BENCH_POSTGRES_URL
or SALESOPS_TEST_POSTGRES_URL is set). The leads API runs in its own process, as `make run` and k8s
run it (`python -m services.leads --role api`, its outbox relay to a Redis of its own); this process
is the client. leads/s, p50/p99, and the server process's CPU per lead (/proc); baseline in the same
run: a bare single-row INSERT + COMMIT of the same table, 16 in flight, from this process (its
rows/s, p99, and this process's CPU per row). ImportLeads of 1,000 rows (validate-only, then real)
to the same server: seconds and the server's CPU.

The tenant is set up as a sales-ops admin would, through the leads API and the demo seed's own code
(services.leads.seed): grading rules, pools and SLA policies as `make run` seeds them, three regional
teams of ten reps, and routing rules by region, grade, product line and source (`_configure_tenant`).
The leads vary in those fields (`_intake_lead`); after the run the database must show at least
ROUTED_MIN_SHARE of them owned by a rep (`_routed`), else the benchmark fails: routing is measured,
not skipped to the fallback pool.

SALESOPS_BENCH_PROFILE=<file.svg|.txt> records the server's CreateLead calls with py-spy, one file
per database: <file>-sqlite.svg and <file>-pg.svg (bench.procs.py_spy's label).

    .venv/bin/python -m bench.bench_leads intake
"""

from __future__ import annotations

import asyncio
import os
import random
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
# The benchmark tenant: a team of TEAM_SIZE reps per region (team path -> region). A rep's capacity
# (open leads) is far above what a full run gives one rep (~1,500 leads over 30), so none runs out.
TEAMS = {"east/team-a": "east", "north/team-b": "north", "south/team-c": "south"}
TEAM_SIZE, REP_CAPACITY = 10, 1000
# Lead territories, each with its share of the leads: "west" has no team, its leads go to the pool.
REGIONS = (
    ("east/shanghai", 4),
    ("east/hangzhou", 1),
    ("north/beijing", 3),
    ("south/shenzhen", 1),
    ("west/chengdu", 1),
)
# Below this share of the measured leads owned by a rep, routing fell back: the run fails.
ROUTED_MIN_SHARE = 0.75


def _tenant_users() -> list[Any]:
    from kit.seeding import SeedUser

    users = []
    for team in TEAMS:
        letter = team.rsplit("-", 1)[1]
        users.append(SeedUser(f"sup-{letter}", ("supervisor",), team, f"Team {letter.upper()} Supervisor"))
        users += [
            SeedUser(f"rep-{letter}{n:02d}", ("rep",), team, f"Rep {letter.upper()}{n}")
            for n in range(1, TEAM_SIZE + 1)
        ]
    return users


def _routing_rules() -> Any:
    """First match wins: hot east leads to the least loaded of team A, ERP leads in the north to
    team B's ERP reps, expo leads to the events team C (same language), then each region to its
    team by weighted round robin. Hours are not checked: the benchmark runs at any hour."""
    from salesops.leads.v1 import enums_pb2, policies_pb2

    ll, wrr = enums_pb2.ROUTING_STRATEGY_LEAST_LOADED, enums_pb2.ROUTING_STRATEGY_WEIGHTED_ROUND_ROBIN
    rules = policies_pb2.RoutingRules(fallback_pool_id="fallback")

    def rule(rule_id: str, team: str, strategy: int, **extra: Any) -> Any:
        return rules.rules.add(
            rule_id=rule_id,
            display_name=rule_id,
            enabled=True,
            team_path=team,
            strategy=strategy,
            allow_outside_working_hours=True,
            **extra,
        )

    rule("east-hot", "east/team-a", ll).match.MergeFrom(
        policies_pb2.RoutingMatch(regions=["east/*"], grades=[enums_pb2.LEAD_GRADE_A])
    )
    rule("north-erp", "north/team-b", ll, required_skills=["erp"]).match.MergeFrom(
        policies_pb2.RoutingMatch(regions=["north/*"], product_lines=["erp"])
    )
    rule("expo", "south/team-c", wrr, match_language=True).match.source_codes.append("expo-2026")
    for team, region in TEAMS.items():
        rule(f"{region}-all", team, wrr).match.regions.append(f"{region}/*")
    return rules


async def _configure_tenant(address: str, admin_token: str) -> None:
    """The tenant as `make run` seeds the demo one (services.leads.seed: grading rules, pools, SLA
    policies, a profile per rep), then, through the same API, the benchmark's routing rules and each
    rep's territory and capacity."""
    import grpc
    from google.protobuf import field_mask_pb2

    from salesops.leads.v1 import leads_service_pb2 as pb
    from salesops.leads.v1 import leads_service_pb2_grpc
    from services.leads import seed

    users = _tenant_users()
    await seed.seed(address, admin_token, users)
    md = (("authorization", f"Bearer {admin_token}"),)
    async with grpc.aio.insecure_channel(address) as ch:
        stub = leads_service_pb2_grpc.LeadsServiceStub(ch)
        await stub.UpdateRoutingRules(
            pb.UpdateRoutingRulesRequest(
                routing_rules=_routing_rules(),
                update_mask=field_mask_pb2.FieldMask(paths=["rules", "fallback_pool_id"]),
            ),
            metadata=md,
            timeout=10,
        )
        for profile in seed.rep_profiles(users):
            profile.capacity = REP_CAPACITY
            profile.regions[:] = [TEAMS[profile.team_path]]
            profile.product_lines[:] = list(profile.skills)
            await stub.UpdateRepProfile(
                pb.UpdateRepProfileRequest(
                    rep_profile=profile,
                    update_mask=field_mask_pb2.FieldMask(paths=["capacity", "regions", "product_lines"]),
                ),
                metadata=md,
                timeout=10,
            )


def _intake_lead(row: dict[str, Any]) -> Any:
    """The row's CreateLead message with the fields grading and routing look at, varied by lead:
    territory (REGIONS), product line, channel and source code, stated budget (grades A to C)."""
    from salesops.common.v1 import types_pb2
    from salesops.leads.v1 import enums_pb2

    lead = _lead_pb(row)
    i, rnd = int(row["lead_id"][-8:]), random.Random(row["lead_id"])  # the same lead every run
    lead.region = rnd.choices([r for r, _ in REGIONS], [w for _, w in REGIONS])[0]
    lead.product_lines.append(rnd.choice(["crm", "erp"]))
    lead.language_code = "zh-CN"
    if rnd.random() < 0.2:
        lead.source.source_code = "expo-2026"
    if i % 6 == 2:  # with the large budget: 40 + 15 + 15 points, grade A (default grading rules)
        lead.source.channel = enums_pb2.LEAD_CHANNEL_CALL_CENTER
    budget = (0, 50_000, 400_000)[i % 3]  # no budget: C; a budget: B
    if budget:
        lead.stated_budget.CopyFrom(types_pb2.Money(currency="CNY", amount_minor=budget * 100))
    return lead


async def _routed(db: Any, prefix: str) -> dict[str, float]:
    """How the leads CreateLead stored from rows of `prefix` (their e-mail starts with it) were
    routed, counted in the database: leads, share owned by a rep, reps that got any, grades."""
    from sqlalchemy import func, select

    from services.leads.store import LeadRow

    async with db.session("demo") as s:
        got = (
            await s.execute(
                select(LeadRow.owner_user_id, LeadRow.grade, func.count())
                .where(LeadRow.email.like(f"{prefix.lower()}%"))
                .group_by(LeadRow.owner_user_id, LeadRow.grade)
            )
        ).all()
    total = sum(n for _, _, n in got)
    owned = sum(n for owner, _, n in got if owner)
    out = {
        "routed_leads": float(total),
        "routed_to_rep_share": owned / total if total else 0.0,
        "routed_reps": float(len({owner for owner, _, _ in got if owner})),
    }
    for grade in "ABC":
        out[f"routed_grade_{grade.lower()}_share"] = sum(n for _, g, n in got if g == grade) / max(1, total)
    return out


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
        from sqlalchemy import text

        # VACUUM, not only ANALYZE: the rows were just copied in, so no page is all-visible yet, and
        # every index-only scan of the intake (its fuzzy-match neighbours, 128 index entries a lead)
        # read each row's heap page as well: 16 names' neighbours took 18-70 ms of PostgreSQL
        # instead of 1.5-5 ms. A live table has its visibility map kept by autovacuum, which would
        # also start on these new rows in the middle of the run (the local server has it off).
        async with db.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(text("VACUUM (ANALYZE) leads"))
    token = TokenMinter(AuthConfig.from_env({})).mint("admin", "demo", ["admin"], org="")
    md = (("authorization", f"Bearer {token}"),)
    rows = _lead_rows(requests, 2, "IN")
    bare_rows = _lead_rows(requests, 3, "BA")
    with tempfile.TemporaryDirectory() as tmp:
        redis = start_redis(Path(tmp) / "redis", persist=False, die_with_parent=True)
        server = None
        try:
            server, address = _start_leads(url, Path(tmp), redis.address)
            await _configure_tenant(address, token)
            async with grpc.aio.insecure_channel(address) as ch:
                stub = leads_service_pb2_grpc.LeadsServiceStub(ch)

                async def create(i: int) -> None:
                    req = pb.CreateLeadRequest(lead=_intake_lead(rows[i]))
                    await stub.CreateLead(req, metadata=md, timeout=30)

                warm = _lead_rows(32, 5, "WU")
                await _in_flight(  # warm-up: caches, connections, both sides of the channel
                    len(warm),
                    INTAKE_CONCURRENCY,
                    lambda i: stub.CreateLead(
                        pb.CreateLeadRequest(lead=_intake_lead(warm[i])), metadata=md, timeout=30
                    ),
                )
                cpu0, idle0 = time.process_time(), _cpu_s(server.pid)
                bare_s, bare_lat, bare_failed = await _bare_commits(db, bare_rows)
                cpu1, idle = time.process_time(), _cpu_s(server.pid) - idle0
                spy = py_spy(server.pid, "sqlite" if db.is_sqlite else "pg")  # a file per database
                server0 = _cpu_s(server.pid)
                intake_s, latencies, failed = await _in_flight(len(rows), INTAKE_CONCURRENCY, create)
                server_cpu = _cpu_s(server.pid) - server0
                cpu2 = time.process_time()
                load = os.getloadavg()[0]
                if spy:
                    spy[0].send_signal(signal.SIGINT)
                    spy[0].wait(60)
                    print(f"   py-spy profile of the leads process: {spy[1]}", file=sys.stderr)
            routing = await _routed(db, "IN")
            if routing["routed_to_rep_share"] < ROUTED_MIN_SHARE:  # not an assert: also under -O
                raise RuntimeError(f"intake routing fell back to the pool: {routing}")
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
        **routing,
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
            req.rows.add(row_ref=r["lead_id"], lead=_intake_lead(r))
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
