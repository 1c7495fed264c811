"""SLA timers at scale: open lead watches on a Temporal dev server, with the worker `make run` uses.

One run, on the embedded default (SQLite file; PostgreSQL when SALESOPS_BENCH_SLA_POSTGRES_URL names
an admin URL) and a private `temporal server start-dev` started as `make run` starts it
(deploy.local.infra.temporal_command, its dynamic config; state in memory), the worker with the leads
service's worker options (app.SPEC.worker_options):

- `watches` leads are owned and pending their first response; each gets its LeadWatch workflow the
  way the service starts it (consumers.poke: signal-with-start). First the quiet ones (reminders
  hours away: open timers that load the server and the worker, as a tenant's many quiet leads do)
  are started and armed (their next timer read); then `spread` leads with reminders spread evenly
  over a `window` and `burst` leads due in one second after it.
- figures: start rate (starts accepted by the server) against bare workflow starts in the same run,
  with the rate at which watches are armed beside it; reminder lateness (due -> the reminder's row in
  the owner's inbox: SlaReminderDue committed in the leads outbox, published by the leads outbox relay
  to Redis, turned into an inbox item by notify's consumer on its own database, all three as the
  services run them: the relay in the bench's process beside the worker, the consumer in its own,
  bench/sla_inbox.py) p50 / p99 for the spread
  (goal p99 < 2 s) and for the burst (goal p99 < 5 s), the burst against as many bare timer
  workflows (a timer and a no-op activity, no database) due in one second on the same worker and
  server. A late reminder is measured, not cut off: the wait ends once all arrived, or nothing
  arrived for STALL_S after the last due time (or LIMIT_S after it); those missing count as failed
  calls. Where the lateness went, stage by stage (bench/sla_stages.py: workflow histories of a sample,
  the outbox, notify's processed-event and inbox rows), and how many workflow tasks failed or timed out.
- sizes: 10,000 watches, 1,000 spread over 60 s, 1,000 in the burst (--quick: 500, 100, 100, 10 s).

The hop split (due -> committed in the leads outbox, p50 / p99) is printed beside the table, and the
CPU each process spent per burst reminder (the bench's process: worker, local activities, relay; the
dev server; notify's consumer) from just before the burst until its last reminder, beside the same for
the bare timers: on a shared machine the burst's wall time is its CPU over the share it gets. Beside
it, the cores each process used over the burst and how long its threads queued for a CPU: a process
far below one core that queued little waited on round trips, not on the machine.
SALESOPS_BENCH_PROFILE=<file.txt|.svg> samples the bench's process with py-spy over that span.

    .venv/bin/python -m bench.bench_sla [--quick]
    SALESOPS_BENCH_SLA_BEFORE=1 .venv/bin/python -m bench.bench_sla   # the watch before local activities
    SALESOPS_BENCH_SLA_SIZES=1300,100,1000,10 .venv/bin/python -m bench.bench_sla  # watches,spread,burst,window
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

from bench import sla_probes
from bench.procs import GcClock, cpu_seconds
from bench.sla_inbox import InboxPath
from bench.sla_stages import print_stages
from bench.verdict import AT_LEAST, AT_MOST, Figure, Goal
from services.leads.workflows import Timer, WatchInput

START_CONCURRENCY = 64
# The measured watches are due once they are armed, at the quiet watches' rate times this: at 1.5 the
# window opened 99-113 s late on a machine at load 28 (the measured 600 armed at half the quiet rate)
# and the lateness was the arming backlog (timer fired 2 s after due, its workflow task started 42 s).
ARM_MARGIN = 3.0
STALL_S = 60.0  # a wait gives up once nothing arrived for this long after the last due time ...
LIMIT_S = 600.0  # ... or this long after it

_FIRED: dict[str, float] = {}


@activity.defn(name="bench.sla_bare_fire")
async def _bare_fire(key: str) -> None:
    _FIRED[key] = time.time()


@workflow.defn(name="BenchSlaBareTimer", sandboxed=False)
class BareTimerWorkflow:
    """The baseline: a timer and a no-op activity, no database."""

    @workflow.run
    async def run(self, key: str, due_epoch: float) -> None:
        delay = due_epoch - workflow.now().timestamp()
        if delay > 0:
            await workflow.sleep(delay)
        await workflow.execute_activity(_bare_fire, key, start_to_close_timeout=timedelta(seconds=60))


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


async def _bounded(n: int, call: Any) -> tuple[float, int]:
    """call(i) for i < n, START_CONCURRENCY in flight: (seconds, failures); failures are counted."""
    sem = asyncio.Semaphore(START_CONCURRENCY)
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        async with sem:
            try:
                await asyncio.wait_for(call(i), 60)
            except Exception as exc:
                failures += 1
                if failures <= 3:
                    print(f"   failed start: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)

    t = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - t, failures


async def _wait_for(count: Callable[[], Awaitable[int]], expected: int, last_due: float, what: str) -> None:
    """Poll until `expected` arrived; a late arrival is measured, not cut off: give up only once nothing
    arrived for STALL_S after the last due time (or LIMIT_S after it), the missing ones then count as failed."""
    seen, progress, printed = -1, time.monotonic(), 0.0
    while True:
        n = await count()
        if n >= expected:
            return
        now = time.monotonic()
        if n != seen:
            seen, progress = n, now
        if now - printed >= 10:
            printed = now
            print(f"   {what} so far: {n} of {expected}", file=sys.stderr)
        overdue = time.time() - last_due
        if overdue > LIMIT_S or (overdue > STALL_S and now - progress > STALL_S):
            print(
                f"   {what}: {expected - n} never arrived ({overdue:.0f} s after the last due)",
                file=sys.stderr,
            )
            return
        await asyncio.sleep(0.5)


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)


async def _measure(
    url: str, watches: int, spread: int, burst: int, window_s: float, log_dir: Path | None = None
) -> list[Figure]:
    from sqlalchemy import func, select

    from bench.leads_rows import _insert, _lead_rows
    from deploy.local.infra import start_redis, start_temporal_dev
    from kit.db import Database
    from kit.heap import tune_gc
    from kit.migrations import upgrade_to_head
    from kit.temporal import WorkerRunner, build_worker, connect
    from services.leads import activities, consumers, workflows
    from services.leads.app import SPEC
    from services.leads.store import outbox
    from services.notify.store import InboxItemRow

    db = Database(url, pool_size=20)
    await upgrade_to_head("leads", db)
    # The dev server as `make run` starts it (deploy.local.infra.temporal_command), state in memory.
    server = start_temporal_dev(None, log_dir=log_dir, die_with_parent=True)
    try:
        client = await connect(server.address, retry_for=30)
    except BaseException:
        server.stop()
        raise
    # The reminder's way into the owner's inbox: the leads outbox relay, Redis, notify's consumer.
    base = log_dir or Path(tempfile.mkdtemp(prefix="bench-sla-"))
    redis_server = start_redis(base / "redis", persist=False, log_dir=log_dir, die_with_parent=True)
    inbox_path = InboxPath(db, redis_server.address, f"sqlite+aiosqlite:///{base / 'notify.db'}")
    await inbox_path.start()
    queue = f"bench-sla-{uuid.uuid4().hex[:6]}"
    acts = activities.WatchActivities(db)
    armed = 0  # watch_next completions: a watch is armed once it knows its next timer

    @activity.defn(name="leads.watch_next")
    async def counted_next(inp: WatchInput) -> Timer:
        nonlocal armed
        found = await acts.next_timer(inp)
        armed += 1
        return found

    # The worker the leads service runs (kit.runtime: build_worker with the service's worker options).
    runner = WorkerRunner(
        build_worker(
            client,
            queue,
            workflows=[workflows.LeadWatchWorkflow, BareTimerWorkflow],
            activities=[counted_next, acts.fire, _bare_fire],
            options=SPEC.worker_options,
        )
    )
    runner.start()
    # As kit.runtime does once a service has started: the startup heap out of every later collection,
    # the young generation collected less often (the leads worker runs so; the bench's process did not).
    tune_gc()
    gc_clock = GcClock()
    gc.callbacks.append(gc_clock)
    due: dict[str, datetime] = {}
    group: dict[str, str] = {}

    async def open_watches(rows: list[dict[str, Any]]) -> tuple[float, float, int]:
        """Insert the leads, start their watches: (seconds to start, seconds until all armed, failures)."""
        await _insert(db, rows)
        ids = [r["lead_id"] for r in rows]
        target = armed + len(rows)
        t = time.perf_counter()
        start_s, failed = await _bounded(len(ids), lambda i: consumers.poke(client, queue, "demo", ids[i]))
        limit = time.monotonic() + 120 + len(rows) / 20
        while armed < target - failed and time.monotonic() < limit:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        return start_s, time.perf_counter() - t, failed + max(0, target - failed - armed)

    def owned(row: dict[str, Any], i: int, reminder: datetime, kind: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        row.update(
            status="ASSIGNED",
            owner_user_id=f"rep-{i % 50}",
            pool_id=None,
            assign_time=now,
            sla_state="PENDING",
            sla_grade="A",
            sla_start=now,
            sla_reminder=reminder,
            sla_due=reminder + timedelta(minutes=30),
            grade="A",
        )
        due[row["lead_id"]], group[row["lead_id"]] = reminder, kind
        return row

    try:
        # 1. The quiet watches: reminders hours away (their timers are open while the rest is measured).
        quiet = watches - spread - burst
        later = datetime.now(UTC) + timedelta(hours=1)
        rows = [
            owned(r, i, later + timedelta(seconds=i % 36_000), "quiet")
            for i, r in enumerate(_lead_rows(quiet, 4, "SQ"))
        ]
        start_s, armed_s, start_failed = await open_watches(rows)
        print(
            f"   {quiet:,} quiet watches started in {start_s:.1f} s, armed in {armed_s:.1f} s "
            f"({start_failed} failed)",
            file=sys.stderr,
        )
        # 2. The measured ones, due once they are armed (at the rate just seen, with room to spare).
        t0 = datetime.now(UTC) + timedelta(
            seconds=5 + ARM_MARGIN * (spread + burst) * armed_s / max(quiet, 1)
        )
        burst_at = t0 + timedelta(seconds=window_s + 5)
        rows = [
            owned(r, i, t0 + timedelta(seconds=window_s * i / spread), "spread")
            if i < spread
            else owned(r, i, burst_at + timedelta(milliseconds=(i - spread) % 1000), "burst")
            for i, r in enumerate(_lead_rows(spread + burst, 5, "SM"))
        ]
        ids = [r["lead_id"] for r in rows]
        s2, a2, f2 = await open_watches(rows)
        start_s, armed_s, start_failed = start_s + s2, armed_s + a2, start_failed + f2
        late_start = (datetime.now(UTC) - t0).total_seconds()
        print(f"   {watches:,} watches started in {start_s:.1f} s ({start_failed} failed)", file=sys.stderr)
        if late_start > 0:
            print(f"   arming overran the window's opening by {late_start:.1f} s", file=sys.stderr)
        expected = spread + burst

        async def reminders() -> int:
            """Reminders in the owners' inboxes (notify's inbox rows; counted while waiting, so the poll
            costs this process little of the CPU measured beside the burst)."""
            async with inbox_path.db.system_session() as s:
                n = await s.scalar(
                    select(func.count())
                    .select_from(InboxItemRow)
                    .where(InboxItemRow.category == "sla_reminder")
                )
            return int(n or 0)

        # CPU of the bench's process (the worker, its local activities, the relay), the dev server and
        # notify's consumer from just before the burst is due until its last reminder is in the inbox.
        pids = [os.getpid(), server.proc.pid, inbox_path.pid]
        cpu_from = asyncio.create_task(sla_probes.cpu_at(pids, burst_at.timestamp() - 1.0))
        runq_from = asyncio.create_task(sla_probes.runq_at(pids, burst_at.timestamp() - 1.0))
        gc_from = asyncio.create_task(sla_probes.gc_at(gc_clock, burst_at.timestamp() - 1.0))
        spy = asyncio.create_task(sla_probes.profile(burst_at.timestamp() - 1.0))
        await _wait_for(reminders, expected, burst_at.timestamp(), "reminders in the inbox")
        sla_probes.stop_profile(await spy)
        burst_cpu = [b - a for a, b in zip(await cpu_from, [cpu_seconds(p) for p in pids], strict=True)]
        burst_gc = gc_clock.total - await gc_from
        # Cores each process used over that span: far below one for the bench's process means its worker
        # waited (on the server's round trips, or for the machine's CPU), not that it ran out of CPU.
        burst_span = max(time.time() - (burst_at.timestamp() - 1.0), 1e-3)
        # ... and how long their threads were runnable but queued for a CPU (the machine's share).
        burst_runq = [
            b - a for a, b in zip(await runq_from, [sla_probes.runq_seconds(p) for p in pids], strict=True)
        ]
        async with inbox_path.db.system_session() as s:
            result = await s.execute(
                select(InboxItemRow.subject_id, InboxItemRow.created_at).where(
                    InboxItemRow.category == "sla_reminder"
                )
            )
            found = list(result.all())
        lateness: dict[str, list[float]] = {"spread": [], "burst": [], "quiet": []}
        for subject, created in found:
            lateness[group[subject]].append((_aware(created) - due[subject]).total_seconds())
        # The same reminders committed in the leads outbox: the hop split (watch vs relay + notify).
        async with db.system_session() as s:
            result = await s.execute(
                select(outbox.c.subject, outbox.c.created_at).where(outbox.c.type == "leads.SlaReminderDue")
            )
            committed = {subject: _aware(created) for subject, created in result.all()}
        hops = {
            kind: [
                (committed[x] - due[x]).total_seconds() for x in ids if group[x] == kind and x in committed
            ]
            for kind in ("spread", "burst")
        }
        inboxed = {subject: _aware(created) for subject, created in found}
        relayed = {
            kind: [
                (inboxed[x] - committed[x]).total_seconds()
                for x in ids
                if group[x] == kind and x in committed and x in inboxed
            ]
            for kind in ("spread", "burst")
        }
        print(
            "   due -> leads outbox (p50 / p99 s): "
            + ", ".join(f"{k} {_pct(v, 0.5):.2f} / {_pct(v, 0.99):.2f}" for k, v in hops.items())
            + "; leads outbox -> inbox: "
            + ", ".join(f"{k} {_pct(v, 0.5):.2f} / {_pct(v, 0.99):.2f}" for k, v in relayed.items()),
            file=sys.stderr,
        )
        await print_stages(
            client,
            db,
            inbox_path.db,
            {kind: [x for x in ids if group[x] == kind] for kind in ("spread", "burst")},
            due,
        )
        # Baseline in the same run, same worker and server: bare timers, as many due in one second.
        _FIRED.clear()
        bare_at = time.time() + 10 + burst / 80
        bare_s, bare_failed = await _bounded(
            burst,
            lambda i: client.start_workflow(
                BareTimerWorkflow.run,
                args=[f"b{i}", bare_at + (i % 1000) / 1000],
                id=f"bare-{i}-{queue}",
                task_queue=queue,
            ),
        )

        async def bare_fired() -> int:
            return len(_FIRED)

        bare_cpu_from = asyncio.create_task(sla_probes.cpu_at(pids[:2], bare_at - 1.0))
        await _wait_for(bare_fired, burst, bare_at, "bare timers")
        bare_cpu = [
            b - a for a, b in zip(await bare_cpu_from, [cpu_seconds(p) for p in pids[:2]], strict=True)
        ]
        print(
            "   CPU per burst reminder (ms; bare timers beside): bench process (worker, relay) "
            f"{burst_cpu[0] * 1e3 / burst:.2f} ({bare_cpu[0] * 1e3 / burst:.2f}; garbage collection "
            f"{burst_gc * 1e3 / burst:.2f}), dev server "
            f"{burst_cpu[1] * 1e3 / burst:.2f} ({bare_cpu[1] * 1e3 / burst:.2f}), notify's consumer "
            f"{burst_cpu[2] * 1e3 / burst:.2f}; cores used over the burst's {burst_span:.1f} s: "
            + " / ".join(f"{c / burst_span:.2f}" for c in burst_cpu)
            + "; their threads queued for a CPU (s, summed): "
            + " / ".join(f"{w:.1f}" for w in burst_runq)
            + f"; load average {os.getloadavg()[0]:.1f}",
            file=sys.stderr,
        )
        bare_late = [t - (bare_at + int(k[1:]) % 1000 / 1000) for k, t in _FIRED.items()]
    finally:
        if gc_clock in gc.callbacks:
            gc.callbacks.remove(gc_clock)
        await runner.stop()
        await inbox_path.stop()
        server.stop()
        redis_server.stop()
        await db.dispose()
    missing_spread = spread - len(lateness["spread"])
    missing_burst = burst - len(lateness["burst"])
    early = len(lateness["quiet"])  # a reminder hours early would be a bug
    note = (
        f"{watches:,} open watches; window opened {max(late_start, 0):.0f} s late" if late_start > 0 else ""
    )
    return [
        Figure(
            f"LeadWatch starts ({watches:,})",
            (watches - start_failed) / start_s,
            "starts/s",
            baseline=(burst - bare_failed) / bare_s,
            baseline_name=f"bare workflow starts ({burst:,})",
            goal=Goal(0.5, AT_LEAST),
            failed=start_failed + bare_failed,
            note=f"{START_CONCURRENCY} in flight; all armed (next timer read) at {watches / armed_s:.0f}/s",
        ),
        Figure(
            f"reminder lateness p50, {spread:,} spread over {window_s:.0f} s",
            _pct(lateness["spread"], 0.5),
            "s",
            failed=missing_spread,
            note=note or f"{watches:,} open watches",
        ),
        Figure(
            f"reminder lateness p99, {spread:,} spread",
            _pct(lateness["spread"], 0.99),
            "s",
            goal=Goal(2.0, AT_MOST, on="value"),
            failed=missing_spread + early,
            note=f"{early} reminders of quiet watches fired early" if early else "",
        ),
        Figure(
            f"reminder lateness p50, burst of {burst:,} in 1 s",
            _pct(lateness["burst"], 0.5),
            "s",
            baseline=_pct(bare_late, 0.5),
            baseline_name="bare timer burst p50",
            failed=missing_burst,
        ),
        Figure(
            f"reminder lateness p99, burst of {burst:,} in 1 s",
            _pct(lateness["burst"], 0.99),
            "s",
            baseline=_pct(bare_late, 0.99),
            baseline_name="bare timer burst p99",
            goal=Goal(5.0, AT_MOST, on="value"),
            failed=missing_burst + (burst - len(bare_late)),
        ),
    ]


def suite(quick: bool) -> list[Figure]:
    import uvloop

    if os.environ.get("SALESOPS_BENCH_SLA_BEFORE"):
        # The watch as before the `watch-local-activities` patch (regular activities), for a
        # before / after comparison on the same machine: the workflow takes its unpatched branch.
        workflow.patched = lambda _id: False  # type: ignore[assignment,misc]

    from bench.pg import pg_database

    sizes: tuple[int, int, int, float] = (500, 100, 100, 10.0) if quick else (10_000, 1000, 1000, 60.0)
    if custom := os.environ.get("SALESOPS_BENCH_SLA_SIZES"):  # a full-size burst without the 10,000
        w, s, b, win = custom.split(",")
        sizes = (int(w), int(s), int(b), float(win))
    admin = os.environ.get("SALESOPS_BENCH_SLA_POSTGRES_URL", "")
    with tempfile.TemporaryDirectory() as tmp, asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        if not admin:
            return runner.run(_measure(f"sqlite+aiosqlite:///{Path(tmp) / 'leads.db'}", *sizes, Path(tmp)))
        from sqlalchemy.engine import make_url

        name = f"salesops_bench_{uuid.uuid4().hex[:8]}"
        runner.run(pg_database(admin, name))
        try:
            url = make_url(admin).set(database=name, drivername="postgresql+asyncpg")
            return runner.run(_measure(url.render_as_string(hide_password=False), *sizes, Path(tmp)))
        finally:
            runner.run(pg_database(admin, name, drop=True))


if __name__ == "__main__":
    from bench.verdict import SuiteReport, table

    print(table([SuiteReport("leads_sla", "ok", 0.0, suite("--quick" in sys.argv))]))
