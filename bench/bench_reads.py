"""Read paths through the gateway: GetLead and ListLeads (20 a page, with filters) against WhoAmI.

One leads API process (`python -m services.leads --role api`, SQLite file seeded with LEADS leads,
as `make run` embeds it), one gateway process in front of it (real Redis rate limits set high),
and this process as the client: 64 keep-alive HTTP/1.1 connections in flight (bench_gateway's raw
socket client). WhoAmI through the same gateway and backend is the same-run baseline (goal: each
read path >= 0.6 of it); the classes take turns, ROUNDS rounds, median calls/s. A direct gRPC
GetLead to the same backend shows what the gateway adds on a real read.
Answers other than 200 are counted as failed calls, never hidden.

    .venv/bin/python -m bench.bench_reads [--quick]

SALESOPS_BENCH_PROFILE=<file.svg|.txt> (as bench.procs.py_spy): each measured class is also sampled
by py-spy (on PATH or in .venv/bin, or SALESOPS_BENCH_PYSPY) in both processes, one file each named
<file>-<class>-<process>-<round> (raw collapsed stacks for .txt, a flame graph otherwise); more py-spy
options in SALESOPS_BENCH_PYSPY_ARGS (e.g. "--rate 500").
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_gateway import _read_response
from bench.procs import TICK, cpu_seconds
from bench.verdict import AT_LEAST, Figure, Goal
from deploy.local.infra import free_port, start_redis, wait_port

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 64
LEADS = 10_000
REGIONS = ("east/shanghai", "east/hangzhou", "north/beijing", "south/shenzhen")
GRADES = ("A", "B", "C")


async def _seed(url: str, n: int) -> list[str]:
    from bench.leads_rows import _insert, _lead_rows
    from kit.db import Database
    from kit.migrations import upgrade_to_head

    db = Database(url)
    await upgrade_to_head("leads", db)
    rows = _lead_rows(n, 7, "RD", bodies=True)
    for i, row in enumerate(rows):
        row.update(region=REGIONS[i % len(REGIONS)], grade=GRADES[i % len(GRADES)], score=i % 100)
    await _insert(db, rows)
    await db.dispose()
    return [r["lead_id"] for r in rows]


async def _drive_rest(
    port: int, token: str, paths: list[str], seconds: float
) -> tuple[float, list[float], int]:
    """GETs of `paths` (round robin) on CONCURRENCY keep-alive connections for `seconds`."""
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CONCURRENCY)]
    head = f"HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\r\n"
    requests = [f"GET {p} {head}".encode() for p in paths]
    latencies: list[float] = []
    failed = 0
    stop_at = time.perf_counter() + seconds

    async def worker(n: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal failed
        i = n
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            writer.write(requests[i % len(requests)])
            i += CONCURRENCY
            try:
                status = await asyncio.wait_for(_read_response(reader), 30)
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
                failed += 1
                print(f"   connection lost: {type(exc).__name__}", file=sys.stderr)
                return
            if status != 200:
                failed += 1
                if failed <= 3:
                    print(f"   {paths[(i - CONCURRENCY) % len(paths)]} answered {status}", file=sys.stderr)
                continue
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker(n, r, w) for n, (r, w) in enumerate(conns)))
    elapsed = time.perf_counter() - start
    for _, writer in conns:
        writer.close()
    return len(latencies) / elapsed, latencies, failed


async def _drive_grpc(address: str, token: str, ids: list[str], seconds: float) -> tuple[float, int]:
    import grpc

    from salesops.leads.v1 import leads_service_pb2 as pb
    from salesops.leads.v1 import leads_service_pb2_grpc

    md = (("authorization", f"Bearer {token}"),)
    channels = [grpc.aio.insecure_channel(address) for _ in range(4)]
    stubs = [leads_service_pb2_grpc.LeadsServiceStub(c) for c in channels]
    done = failed = 0
    stop_at = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        nonlocal done, failed
        i = n
        while time.perf_counter() < stop_at:
            try:
                await stubs[n % 4].GetLead(
                    pb.GetLeadRequest(lead_id=ids[i % len(ids)]), metadata=md, timeout=30
                )
                done += 1
            except grpc.aio.AioRpcError:
                failed += 1
            i += CONCURRENCY

    start = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(CONCURRENCY)))
    elapsed = time.perf_counter() - start
    for c in channels:
        await c.close(None)
    return done / elapsed, failed


def _profilers(name: str, rnd: int, pids: dict[str, int], seconds: float) -> list[subprocess.Popen[bytes]]:
    """py-spy on each process for the class's round, when SALESOPS_BENCH_PROFILE names a file."""
    out = os.environ.get("SALESOPS_BENCH_PROFILE")
    if not out:
        return []
    spy = os.environ.get("SALESOPS_BENCH_PYSPY") or shutil.which("py-spy") or str(ROOT / ".venv/bin/py-spy")
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = "raw" if path.suffix == ".txt" else "flamegraph"
    return [
        subprocess.Popen(
            [
                spy,
                "record",
                *os.environ.get("SALESOPS_BENCH_PYSPY_ARGS", "").split(),
                "--nonblocking",  # the measured CPU is the processes' own, not paused by sampling
                "--format",
                fmt,
                "-d",
                str(max(1, int(seconds))),
                "-o",
                str(path.with_name(f"{path.stem}-{name}-{process}-{rnd}{path.suffix or '.svg'}")),
                "--pid",
                str(pid),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for process, pid in pids.items()
    ]


def _loop_seconds(pid: int) -> float:
    """User + system CPU of the process's main thread (its event loop, where every call's Python
    runs; SQLite runs on its connections' threads, gRPC I/O on its own), as cpu_seconds does."""
    try:
        fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def _pct_ms(values: list[float], q: float) -> float:
    return sorted(values)[int(q * (len(values) - 1))] * 1000 if values else float("nan")


def suite(quick: bool) -> list[Figure]:
    import uvloop

    from kit.auth import AuthConfig, TokenMinter

    seconds, rounds, n = (2.0, 1, 2000) if quick else (4.0, 3, LEADS)
    token = TokenMinter(AuthConfig.from_env({})).mint("admin", "demo", ["admin"], org="")
    procs: list[subprocess.Popen[bytes]] = []
    qps: dict[str, list[float]] = {"whoami": [], "get": [], "list": [], "grpc_get": []}
    lat: dict[str, list[float]] = {k: [] for k in qps}
    # CPU per answered call of the leads process and of the gateway, each class's rounds summed.
    cpu: dict[str, list[float]] = {k: [0.0, 0.0, 0.0, 0.0] for k in qps}  # leads, gateway, calls, leads loop
    failed: dict[str, int] = dict.fromkeys(qps, 0)
    with tempfile.TemporaryDirectory() as tmp:
        redis = start_redis(Path(tmp) / "redis", persist=False)
        try:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'leads.db'}"
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                ids = runner.run(_seed(url, n))
            grpc_port, gw_port = free_port(), free_port()
            base = {k: v for k, v in os.environ.items() if not k.startswith(("SALESOPS_", "REDIS_URL"))}
            redis_url = redis.address.rsplit("/", 1)[0] + "/0"
            leads_env = base | {
                "SALESOPS_VAR_DIR": str(Path(tmp) / "var"),
                "SALESOPS_LEADS_DATABASE_URL": url,
                "SALESOPS_LEADS_PORT": str(grpc_port),
                "SALESOPS_REDIS_URL": redis_url,
                "SALESOPS_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # reads answer without it
                "SALESOPS_LOG_LEVEL": "ERROR",
                "SALESOPS_GRPC_REFLECTION": "0",
            }
            leads = subprocess.Popen(
                [sys.executable, "-m", "services.leads", "--role", "api"], cwd=ROOT, env=leads_env
            )
            procs.append(leads)
            wait_port("127.0.0.1", grpc_port, 60, leads)
            gw_env = base | {
                "SALESOPS_LEADS_ADDR": f"127.0.0.1:{grpc_port}",
                "SALESOPS_GATEWAY_PORT": str(gw_port),
                "SALESOPS_REDIS_URL": redis_url,
                "SALESOPS_GATEWAY_RATE_TENANT": "1000000000",
                "SALESOPS_GATEWAY_RATE_USER": "1000000000",
                "SALESOPS_LOG_LEVEL": "ERROR",
            }
            gateway = subprocess.Popen(
                [sys.executable, "-m", "gateway"], cwd=ROOT, env=gw_env, stderr=subprocess.DEVNULL
            )
            procs.append(gateway)
            wait_port("127.0.0.1", gw_port, 30, gateway)
            paths = {
                "whoami": ["/v1/whoami"],
                "get": [f"/v1/leads/{i}" for i in ids[:: max(1, len(ids) // 500)]],
                "list": [
                    f"/v1/leads?pageSize=20&filter.regions={r}&filter.grades=LEAD_GRADE_{g}"
                    f"&orderBy=score%20desc"
                    for r in REGIONS
                    for g in GRADES
                ],
            }
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                for name in paths:  # warm up (caches, pools), and prove each path answers
                    runner.run(_drive_rest(gw_port, token, paths[name], 0.5))
                for rnd in range(rounds):
                    for name in paths:
                        spies = _profilers(name, rnd, {"leads": leads.pid, "gateway": gateway.pid}, seconds)
                        before = (cpu_seconds(leads.pid), cpu_seconds(gateway.pid), _loop_seconds(leads.pid))
                        q, latencies, bad = runner.run(_drive_rest(gw_port, token, paths[name], seconds))
                        cpu[name][0] += cpu_seconds(leads.pid) - before[0]
                        cpu[name][1] += cpu_seconds(gateway.pid) - before[1]
                        cpu[name][2] += len(latencies)
                        cpu[name][3] += _loop_seconds(leads.pid) - before[2]
                        qps[name].append(q)
                        lat[name].extend(latencies)
                        failed[name] += bad
                        for spy in spies:
                            spy.wait()
                    q, bad = runner.run(_drive_grpc(f"127.0.0.1:{grpc_port}", token, ids, seconds))
                    qps["grpc_get"].append(q)
                    failed["grpc_get"] += bad
        finally:
            for proc in procs:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            redis.stop()
    med = {k: statistics.median(v) for k, v in qps.items()}
    how = f"{CONCURRENCY} in flight, median of {rounds} x {seconds:.0f} s, load {os.getloadavg()[0]:.1f}"

    def per_call(name: str, which: int) -> float:
        leads_s, gateway_s, calls, loop_s = cpu[name]
        return 1e6 * (leads_s, gateway_s, loop_s)[which] / calls if calls else float("nan")

    def cpu_figures(name: str, label: str) -> list[Figure]:
        return [
            Figure(
                f"{label}: {process} CPU per call",
                per_call(name, which),
                "us CPU/call",
                baseline=per_call("whoami", which),
                baseline_name=f"{process} CPU per WhoAmI",
                note=f"user + system, {threads}; {how}",
            )
            for which, process, threads in (
                (0, "leads", "all threads"),
                (2, "leads event loop", "its main thread only (the rest: SQLite, gRPC I/O)"),
                (1, "gateway", "all threads"),
            )
        ]

    return [
        Figure("WhoAmI via gateway", med["whoami"], "calls/s", failed=failed["whoami"], note=how),
        Figure(
            f"GetLead via gateway ({n:,} leads)",
            med["get"],
            "calls/s",
            baseline=med["whoami"],
            baseline_name="WhoAmI via gateway",
            goal=Goal(0.6, AT_LEAST),
            failed=failed["get"],
            note=f"p99 {_pct_ms(lat['get'], 0.99):.0f} ms; {how}",
        ),
        Figure(
            "ListLeads via gateway (20 a page, region + grade filter, by score)",
            med["list"],
            "calls/s",
            baseline=med["whoami"],
            baseline_name="WhoAmI via gateway",
            goal=Goal(0.6, AT_LEAST),
            failed=failed["list"],
            note=f"p99 {_pct_ms(lat['list'], 0.99):.0f} ms; {how}",
        ),
        *cpu_figures("get", "GetLead"),
        *cpu_figures("list", "ListLeads"),
        Figure(
            "GetLead via gateway vs direct gRPC",
            med["get"],
            "calls/s",
            baseline=med["grpc_get"],
            baseline_name="GetLead over gRPC",
            failed=failed["get"] + failed["grpc_get"],
            note=how,
        ),
    ]


def _main(argv: list[str]) -> Any:
    from bench.verdict import SuiteReport, table

    print(table([SuiteReport("reads", "ok", 0.0, suite("--quick" in argv))]))


if __name__ == "__main__":
    _main(sys.argv)
