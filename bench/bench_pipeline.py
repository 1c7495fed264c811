"""Benchmarks of the pipeline service, each against a bare baseline measured in the same run.

- rollup: the forecast roll-up (forecasting.compute, what GetForecast runs) of one quarter
  over 1,000,000 deals on PostgreSQL (SALESOPS_BENCH_POSTGRES_URL or
  SALESOPS_TEST_POSTGRES_URL; a database created with COPY and dropped after), grouped by
  rep, team and region: median ms of 5 runs each; baseline: the bare SQL aggregate of the
  same rows grouped directly at that level (asyncpg, no ORM, no folding). Goal: within 2x.
  SALESOPS_BENCH_DEALS scales the deal count down (e.g. for a quick look).
- check_gate: CheckGate's use case in process (unit of work on SQLite, deal, model and
  evidence read, the gate engine; no gRPC: the issue's goal says "in process") on a
  20-criterion stage, p50 / p99 wall ms over 2,000 calls; baseline: the pure gate engine on
  the same facts, interleaved call by call. Goal: p99 under 5 ms. Beside it, CPU per call
  (process time, the driver's thread included) against a bare read unit of work loading the
  deal, and the load average: on a shared 2-core machine the wall p99 measures the run queue
  (the engine alone, about 0.1 ms of CPU, shows a p99 of several ms at load 10+).

Failed calls are counted; every step is bounded by a timeout.

    .venv/bin/python -m bench.bench_pipeline [rollup|check_gate]
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from bench.pg import connect, pg_database
from bench.verdict import AT_MOST, Figure, Goal, pick

DEALS = int(os.environ.get("SALESOPS_BENCH_DEALS", "1000000"))
RUNS = 5
GATE_CALLS = 2000
STEP_TIMEOUT = 600.0
TENANT = "bench"
QUARTER_DAY = date(2027, 2, 15)  # Q1 2027


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


# --------------------------------------------------------------------------- roll-up


def _org(i: int) -> tuple[str, str]:
    """1,000 reps in 200 teams, 20 cities, 4 regions."""
    rep = i % 1000
    team = rep // 5
    city = team // 10
    region = city // 5
    return f"rep-{rep:04d}", f"r{region}/c{city:02d}/t{team:03d}"


def _records(n: int) -> list[tuple[Any, ...]]:
    rnd = random.Random(11)
    start = date(2026, 7, 1)
    at = datetime(2026, 6, 1, tzinfo=UTC)
    statuses = ("OPEN",) * 7 + ("WON",) * 2 + ("LOST",)
    categories = ("PIPELINE", "PIPELINE", "BEST_CASE", "COMMIT", "OMITTED")
    rows: list[tuple[Any, ...]] = []
    for i in range(n):
        owner, org = _org(i)
        status = statuses[rnd.randrange(10)]
        amount = rnd.randrange(10_000, 10_000_000)
        probability = (10, 30, 70, 75, 80, 85)[rnd.randrange(6)]
        rows.append(
            (
                TENANT,
                f"D{i:07d}",
                f"Deal {i}",
                "",
                f"Customer {i % 5000}",
                "",
                owner,
                org,
                amount,
                "CNY",
                amount * probability // 100,
                "initial_contact",
                0,
                probability,
                probability,
                status,
                "CLOSED" if status == "WON" else categories[rnd.randrange(5)],
                start + timedelta(days=rnd.randrange(730)),
                None,
                "MANUAL",
                rnd.random() < 0.05,
                at if status != "OPEN" else None,
                "",
                "",
                "",
                "",
                at,
                at,
                at,
                "bench",
                at,
                "bench",
                1,
                "",
                b"",
            )
        )
    return rows


COLUMNS = [
    "tenant_id",
    "deal_id",
    "title",
    "customer_id",
    "customer_name",
    "industry",
    "owner_user_id",
    "org_path",
    "amount_minor",
    "currency",
    "weighted_minor",
    "stage_id",
    "stage_model_version",
    "probability",
    "stage_probability",
    "status",
    "forecast_category",
    "expected_close_date",
    "lead_id",
    "origin",
    "frozen",
    "closed_at",
    "lost_category",
    "lost_reason_code",
    "lost_competitor",
    "lost_stage_id",
    "stage_entered_at",
    "last_confirm_at",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
    "version",
    "request_digest",
    "body",
]


BARE = {
    "rep": "owner_user_id",
    "team": "org_path",
    "region": "split_part(org_path, '/', 1)",
}


async def _rollup(url: str) -> dict[str, float]:

    from kit.auth import Principal
    from kit.db import Database
    from kit.migrations import upgrade_to_head
    from services.pipeline.domain import forecast as f
    from services.pipeline.forecasting import ForecastQuery, compute
    from services.pipeline.store import transactions

    db = Database(url)
    await asyncio.wait_for(upgrade_to_head("pipeline", db), STEP_TIMEOUT)
    conn = await connect(url)
    out: dict[str, float] = {"deals": float(DEALS)}
    try:
        t0 = time.perf_counter()
        chunk = 100_000
        for lo in range(0, DEALS, chunk):
            batch = _records(min(chunk, DEALS - lo))
            # Distinct ids per chunk (the generator restarts its numbering).
            batch = [(r[0], f"D{lo + k:07d}", *r[2:]) for k, r in enumerate(batch)]
            await asyncio.wait_for(
                conn.copy_records_to_table("deals", records=batch, columns=COLUMNS), STEP_TIMEOUT
            )
        await conn.execute("ANALYZE deals")
        out["seed_s"] = time.perf_counter() - t0
        start, end = f.period_bounds(f.Granularity.QUARTER, QUARTER_DAY)
        admin = Principal("admin", TENANT, frozenset({"admin"}), "", datetime(2100, 1, 1, tzinfo=UTC))
        tx = transactions(db)
        failed = 0
        for level_name, level in (("rep", f.Level.REP), ("team", f.Level.TEAM), ("region", f.Level.REGION)):
            bare_sql = (
                f"SELECT {BARE[level_name]} AS k, status, frozen, forecast_category, sum(amount_minor), "
                "sum(weighted_minor), count(*) FROM deals WHERE tenant_id = $1 AND status IN ('OPEN', 'WON') "
                "AND expected_close_date BETWEEN $2 AND $3 GROUP BY 1, 2, 3, 4"
            )
            bare: list[float] = []
            service: list[float] = []
            rows = 0
            for _ in range(RUNS):
                t = time.perf_counter()
                rows = len(await asyncio.wait_for(conn.fetch(bare_sql, TENANT, start, end), STEP_TIMEOUT))
                bare.append(time.perf_counter() - t)
                t = time.perf_counter()
                try:
                    async with tx.read(TENANT) as uow:
                        computed = await asyncio.wait_for(
                            compute(
                                uow, admin, ForecastQuery(f.Granularity.QUARTER, QUARTER_DAY, level=level)
                            ),
                            STEP_TIMEOUT,
                        )
                    service.append(time.perf_counter() - t)
                    out[f"{level_name}_groups"] = float(len(computed.rows))
                except Exception:
                    failed += 1
            out[f"{level_name}_bare_ms"] = statistics.median(bare) * 1000
            out[f"{level_name}_rollup_ms"] = statistics.median(service) * 1000 if service else float("nan")
            out[f"{level_name}_ratio"] = out[f"{level_name}_rollup_ms"] / out[f"{level_name}_bare_ms"]
            out[f"{level_name}_bare_rows"] = float(rows)
        out["failed_calls"] = float(failed)
        plan = await conn.fetch(
            "EXPLAIN SELECT owner_user_id, org_path, status, frozen, forecast_category, sum(amount_minor), "
            "sum(weighted_minor), count(*) FROM deals WHERE tenant_id = $1 AND status IN ('OPEN', 'WON') "
            "AND expected_close_date BETWEEN $2 AND $3 GROUP BY 1, 2, 3, 4, 5",
            TENANT,
            start,
            end,
        )
        print("   plan of the service's grouping:", file=sys.stderr)
        for line in plan:
            print(f"     {line[0]}", file=sys.stderr)
    finally:
        await conn.close()
        await db.dispose()
    return out


def rollup() -> dict[str, float]:
    import uvloop
    from sqlalchemy.engine import make_url

    admin = os.environ.get("SALESOPS_BENCH_POSTGRES_URL") or os.environ.get("SALESOPS_TEST_POSTGRES_URL", "")
    if not admin:
        print("   rollup needs PostgreSQL: set SALESOPS_BENCH_POSTGRES_URL", file=sys.stderr)
        return {"postgres": 0.0}
    name = f"salesops_bench_{uuid.uuid4().hex[:8]}"
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(pg_database(admin, name))
        try:
            url = make_url(admin).set(database=name, drivername="postgresql+asyncpg")
            out = runner.run(_rollup(url.render_as_string(hide_password=False)))
            out["postgres"] = 1.0
            return out
        finally:
            runner.run(pg_database(admin, name, drop=True))


# --------------------------------------------------------------------------- CheckGate


def gate_model() -> Any:
    """The default model whose needs_confirmed gate has 20 criteria: fields, evidence, checklist and a tree."""
    from salesops.pipeline.v1 import stage_model_pb2 as sm
    from services.pipeline.stage_models import DEFAULT

    model = sm.StageModel()
    model.CopyFrom(DEFAULT)
    for i in range(1, 9):
        model.evidence_types.add(evidence_type_id=f"e{i}", display_name=f"Evidence {i}")
    for i in range(1, 6):
        model.checklist_items.add(item_id=f"c{i}", text=f"Check {i}")
    gate = model.stages[1].entry_criteria
    gate.Clear()
    for i in range(1, 6):
        gate.required_fields.add(field_path=f"custom_fields.f{i}", display_name=f"Field {i}")
    gate.required_evidence_type_ids.extend(f"e{i}" for i in range(1, 7))
    gate.required_checklist_item_ids.extend(f"c{i}" for i in range(1, 5))
    tree = gate.rule.all_of.criteria
    first = tree.add().any_of.criteria
    first.add(evidence_type_id="e7")
    first.add(required_field=sm.RequiredField(field_path="custom_fields.f7"))
    tree.add().none_of.criteria.add(checklist_item_id="c5")
    second = tree.add().any_of.criteria
    second.add(required_field=sm.RequiredField(field_path="custom_fields.f8"))
    second.add(evidence_type_id="e8")
    return model


async def _attach(evidence: Any, who: Any, ev: Any, at: datetime, uow: Any) -> Any:
    return await evidence.add_evidence(uow, who, "G1", ev, at)


async def _check_gate(url: str) -> dict[str, float]:
    from google.protobuf.field_mask_pb2 import FieldMask

    from kit.auth import Principal
    from kit.db import Database
    from kit.migrations import upgrade_to_head
    from salesops.common.v1.types_pb2 import AttachmentRef, Money
    from salesops.pipeline.v1 import deal_pb2
    from services.pipeline import criteria, deals, evidence, moves, stage_models
    from services.pipeline.documents import deal_of
    from services.pipeline.domain import stages as s
    from services.pipeline.repositories.deals import Deals
    from services.pipeline.store import transactions

    db = Database(url)
    await upgrade_to_head("pipeline", db)
    tx = transactions(db)
    far = datetime(2100, 1, 1, tzinfo=UTC)
    admin = Principal("admin", TENANT, frozenset({"admin"}), "", far)
    rep = Principal("rep-1", TENANT, frozenset({"rep"}), "east/team-a", far)
    await tx.run(
        TENANT, lambda uow: stage_models.update(uow, gate_model(), FieldMask(paths=["*"]), "admin", {}, {})
    )
    close = date.today() + timedelta(days=30)
    deal = deal_pb2.Deal(
        deal_id="G1",
        title="Gate",
        customer=deal_pb2.DealCustomer(display_name="Gate customer"),
        amount=Money(amount_minor=1_000_000, currency="CNY"),
    )
    deal.expected_close_date.year, deal.expected_close_date.month, deal.expected_close_date.day = (
        close.year,
        close.month,
        close.day,
    )
    for i in (1, 2, 3):
        deal.custom_fields[f"f{i}"] = "set"
    now = datetime.now(UTC)
    await tx.run(TENANT, lambda uow: deals.create_deal(uow, rep, deal, now))
    for i in (1, 2, 3):
        ev = deal_pb2.DealEvidence(
            evidence_id=f"ev{i}", evidence_type_id=f"e{i}", attachment=AttachmentRef(uri="s3://x")
        )
        await tx.run(TENANT, partial(_attach, evidence, rep, ev, now))

    async def one() -> Any:
        async with tx.read(TENANT) as uow:
            return await moves.check_gate(uow, admin, "G1", "needs_confirmed", False, now)

    async def bare() -> Any:
        # The floor of any read RPC in process: a read-only unit of work that loads the deal.
        async with tx.read(TENANT) as uow:
            return await Deals(uow).find("G1")

    review = await one()
    out: dict[str, float] = {
        "criteria": 20.0,
        "unmet_items": float(sum(1 for i in review.items if not i.satisfied)),
    }
    async with tx.read(TENANT) as uow:
        _, model = await stage_models.domain_model(uow)
        row = await Deals(uow).find("G1")
        assert row is not None
        # The same facts CheckGate gathers, gathered once: the baseline is the engine alone.
        facts = criteria.facts_of(model, deal_of(row), await Deals(uow).evidence_types("G1"))
    for _ in range(50):  # warm-up
        await one()
        await bare()
    # Interleaved call by call, so the machine's other load hits all three alike. Wall time is
    # what the goal names; CPU time (this process's, the driver's thread included) is what the
    # neighbours' load does not inflate: on a shared 2-core machine a wall p99 is the run queue's.
    failed = 0
    lat: list[float] = []
    engine: list[float] = []
    cpu = {"check_gate": 0.0, "bare": 0.0, "engine": 0.0}
    load_start = os.getloadavg()[0]
    for _ in range(GATE_CALLS):
        c, t = time.process_time(), time.perf_counter()
        s.review_move(model, "initial_contact", "needs_confirmed", facts)
        engine.append(time.perf_counter() - t)
        cpu["engine"] += time.process_time() - c
        c = time.process_time()
        await asyncio.wait_for(bare(), 10)
        cpu["bare"] += time.process_time() - c
        c, t = time.process_time(), time.perf_counter()
        try:
            await asyncio.wait_for(one(), 10)
            lat.append(time.perf_counter() - t)
        except Exception:
            failed += 1
        cpu["check_gate"] += time.process_time() - c
    await db.dispose()
    out.update(
        {
            "check_gate_p50_ms": _pct(lat, 0.5) * 1000,
            "check_gate_p99_ms": _pct(lat, 0.99) * 1000,
            "engine_p50_ms": _pct(engine, 0.5) * 1000,
            "engine_p99_ms": _pct(engine, 0.99) * 1000,
            "p99_ratio_to_engine": _pct(lat, 0.99) / _pct(engine, 0.99),
            "check_gate_cpu_ms": cpu["check_gate"] / GATE_CALLS * 1000,
            "bare_read_cpu_ms": cpu["bare"] / GATE_CALLS * 1000,
            "engine_cpu_ms": cpu["engine"] / GATE_CALLS * 1000,
            "load_start": load_start,
            "load_end": os.getloadavg()[0],
            "failed_calls": float(failed),
        }
    )
    return out


def check_gate() -> dict[str, float]:
    import uvloop

    with tempfile.TemporaryDirectory() as tmp, asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_check_gate(f"sqlite+aiosqlite:///{Path(tmp) / 'pipeline.db'}"))


def measure() -> dict[str, float]:
    out: dict[str, float] = {}
    for name, fn in (("check_gate", check_gate), ("rollup", rollup)):
        for key, value in fn().items():
            out[f"{name}.{key}"] = value
    return out


def suite(quick: bool) -> list[Figure]:
    """Verdict figures (bench.verdict). Quick: CheckGate over 300 calls, no roll-up."""
    global GATE_CALLS
    figures: list[Figure] = []
    if quick:
        GATE_CALLS = 300
    g = check_gate()
    load = f"load {g['load_start']:.1f} -> {g['load_end']:.1f} on {os.cpu_count()} cores"
    figures.append(
        pick(
            g,
            "check_gate_p99_ms",
            "ms",
            name="CheckGate p99 (20 criteria)",
            baseline="engine_p99_ms",
            goal=Goal(5.0, AT_MOST, on="value"),
            failed=["failed_calls"],
            # A wall p99 on a loaded machine is the run queue's: the engine alone (pure, no I/O,
            # about 0.1 ms) reaches the same p99 in the same run. Say so beside the verdict.
            note=f"{load}; CPU {g['check_gate_cpu_ms']:.2f} ms/call, engine p99 {g['engine_p99_ms']:.2f} ms",
        )
    )
    figures.append(
        pick(
            g,
            "check_gate_cpu_ms",
            "ms CPU/call",
            name="CheckGate CPU per call (20 criteria)",
            baseline="bare_read_cpu_ms",
            note=f"{load}; baseline: a read unit of work loading the deal, interleaved",
        )
    )
    if quick:
        return figures
    r = rollup()
    if not r.get("postgres"):
        return [*figures, Figure("forecast roll-up", float("nan"), "ms", note="needs PostgreSQL")]
    for level in ("rep", "team", "region"):
        figures.append(
            pick(
                r,
                f"{level}_rollup_ms",
                "ms",
                name=f"roll-up by {level}, {DEALS:,} deals",
                baseline=f"{level}_bare_ms",
                goal=Goal(2.0, AT_MOST),
                failed=["failed_calls"],
            )
        )
    return figures


if __name__ == "__main__":
    chosen = sys.argv[1:] or ["check_gate", "rollup"]
    for name in chosen:
        for key, value in {"rollup": rollup, "check_gate": check_gate}[name]().items():
            print(f"{name}.{key:<36} {value:12.3f}", flush=True)
