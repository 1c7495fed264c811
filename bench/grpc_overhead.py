"""Kit overhead: an authenticated WhoAmI through our server pipeline vs a bare grpc.aio echo.

Both servers run the same proto method in their own process on uvloop; the
client drives 64 calls in flight from this process. The ratio (ours / bare)
is the figure; absolute QPS depends on the machine and its neighbours.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import grpc

from bench.procs import cpu_seconds as _cpu_seconds
from bench.verdict import Figure, Goal, pick
from deploy.local.infra import free_port, wait_port
from salesops.common.v1 import diagnostics_pb2, diagnostics_pb2_grpc

CONCURRENCY = 64


class Bare(diagnostics_pb2_grpc.DiagnosticsServiceServicer):
    async def WhoAmI(self, request: Any, context: Any) -> diagnostics_pb2.WhoAmIResponse:
        return diagnostics_pb2.WhoAmIResponse(user_id="rep-a1", tenant="demo", service="bare")


async def _serve(kind: str, port: int) -> None:
    listen = f"127.0.0.1:{port}"
    if kind == "bare":
        server = grpc.aio.server()
        diagnostics_pb2_grpc.add_DiagnosticsServiceServicer_to_server(Bare(), server)
        server.add_insecure_port(listen)
        await server.start()
        await server.wait_for_termination()
        return
    from kit.auth import AuthConfig, TokenVerifier
    from kit.config import GrpcSettings
    from kit.grpc import diagnostics
    from kit.grpc.server import GrpcServer
    from kit.heap import tune_gc
    from kit.telemetry import setup_tracing

    setup_tracing("bench")  # spans recorded as in a real deployment, not exported

    settings = GrpcSettings(listen, True, 1.0, 10.0, 8 << 20, 30_000, 10_000)
    ours = GrpcServer(
        "bench", settings, TokenVerifier(AuthConfig.from_env()), [diagnostics.registration("bench")]
    )
    await ours.start()
    tune_gc()  # as kit.runtime does once a service has started
    await ours.server.wait_for_termination()


async def _drive(address: str, token: str, seconds: float) -> tuple[float, list[float]]:
    metadata = (("authorization", f"Bearer {token}"),)
    # Several channels: one channel is one HTTP/2 connection and would cap the client.
    channels = [grpc.aio.insecure_channel(address) for _ in range(4)]
    stubs = [diagnostics_pb2_grpc.DiagnosticsServiceStub(c) for c in channels]
    request = diagnostics_pb2.WhoAmIRequest()
    for stub in stubs:
        await stub.WhoAmI(request, metadata=metadata, timeout=5)
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        stub = stubs[i % len(stubs)]
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            await stub.WhoAmI(request, metadata=metadata, timeout=5)
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(CONCURRENCY)))
    elapsed = time.perf_counter() - start
    for c in channels:
        await c.close(None)
    return len(latencies) / elapsed, latencies


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000 if len(values) > 100 else float("nan")


def run(seconds: float = 5.0, rounds: int = 3) -> dict[str, float]:
    from kit.auth import AuthConfig, TokenMinter

    token = TokenMinter(AuthConfig.from_env()).mint("rep-a1", "demo", ["rep"], org="east/team-a")
    results: dict[str, list[float]] = {"bare": [], "kit": []}
    p99: dict[str, list[float]] = {"bare": [], "kit": []}
    cpu = {"bare": 0.0, "kit": 0.0}
    calls = {"bare": 0, "kit": 0}
    procs = {}
    try:
        for kind in ("bare", "kit"):
            port = free_port()
            procs[kind] = (
                subprocess.Popen(
                    [sys.executable, "-m", "bench.grpc_overhead", "serve", kind, str(port)], env=os.environ
                ),
                f"127.0.0.1:{port}",
            )
            wait_port("127.0.0.1", port, 60, procs[kind][0])  # a loaded machine starts slowly
        # Alternate the two so drift on a shared machine hits both alike.
        for _ in range(rounds):
            for kind in ("bare", "kit"):
                before = _cpu_seconds(procs[kind][0].pid)
                qps, lat = asyncio.run(_drive(procs[kind][1], token, seconds))
                cpu[kind] += _cpu_seconds(procs[kind][0].pid) - before
                calls[kind] += len(lat)
                results[kind].append(qps)
                p99[kind].append(_pct(lat, 99))
    finally:
        for proc, _ in procs.values():
            proc.terminate()
            proc.wait(10)
    bare, kit = statistics.median(results["bare"]), statistics.median(results["kit"])
    return {
        "bare_qps": bare,
        "kit_qps": kit,
        "ratio": kit / bare,
        "bare_p99_ms": statistics.median(p99["bare"]),
        "kit_p99_ms": statistics.median(p99["kit"]),
        # The server's own CPU per call: steadier than QPS on a shared machine.
        "bare_cpu_us_per_call": cpu["bare"] / max(calls["bare"], 1) * 1e6,
        "kit_cpu_us_per_call": cpu["kit"] / max(calls["kit"], 1) * 1e6,
    }


def suite(quick: bool) -> list[Figure]:
    """Verdict figures (bench.verdict): ours vs the bare grpc.aio server, median of the rounds."""
    f = run(2.0, 1) if quick else run()
    return [
        pick(
            f,
            "kit_qps",
            "calls/s",
            name="WhoAmI through the kit pipeline",
            baseline="bare_qps",
            goal=Goal(0.5),
            note="64 in flight, median of rounds",
        ),
        pick(f, "kit_p99_ms", "ms", name="WhoAmI p99", baseline="bare_p99_ms"),
        pick(
            f,
            "kit_cpu_us_per_call",
            "us CPU/call",
            name="server CPU per WhoAmI",
            baseline="bare_cpu_us_per_call",
        ),
    ]


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(_serve(sys.argv[2], int(sys.argv[3])))
    else:
        print(run())
