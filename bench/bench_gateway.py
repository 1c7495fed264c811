"""Gateway overhead: authenticated WhoAmI as REST through the gateway vs the same RPC over gRPC.

A third figure, `bare_proxy`, is the floor of this architecture: a bare ASGI app on
the same uvicorn settings forwarding the call over one grpc.aio channel, with no
routing, auth, rate limits, tracing or logging; the gap between it and the gateway
is what the gateway's features cost.

One backend process (the kit's server pipeline, as `grpc_overhead` runs it), one
gateway process (`python -m gateway`: uvicorn + httptools + uvloop, real Redis
rate limits, default logging) in front of it. The same client process drives
64 requests in flight at each, alternating rounds so drift hits both alike. The
REST client is a minimal keep-alive HTTP/1.1 client on raw sockets, so the
figure measures the gateway rather than a heavyweight client library.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.grpc_overhead import CONCURRENCY, _drive, _pct
from bench.procs import cpu_seconds as _cpu_seconds
from bench.verdict import Figure, Goal, pick
from deploy.local.infra import free_port, start_redis, wait_port

ROOT = Path(__file__).resolve().parent.parent


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def _drive_rest(port: int, token: str, seconds: float) -> tuple[float, list[float]]:
    request = (
        f"GET /v1/whoami HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CONCURRENCY)]
    for reader, writer in conns:  # warm up, and prove the call works
        writer.write(request)
        status = await _read_response(reader)
        if status != 200:
            raise RuntimeError(f"gateway answered {status}")
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal errors
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            writer.write(request)
            if await _read_response(reader) != 200:
                errors += 1
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(worker(r, w) for r, w in conns))
    elapsed = time.perf_counter() - start
    for _, writer in conns:
        writer.close()
    if errors:
        raise RuntimeError(f"{errors} gateway calls failed")
    return len(latencies) / elapsed, latencies


def _bare_proxy(backend: str) -> Any:
    """The bare baseline: HTTP in, WhoAmI over gRPC, JSON out."""
    import grpc
    from google.protobuf import json_format

    from salesops.common.v1 import diagnostics_pb2

    calls: list[Any] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                channel = grpc.aio.insecure_channel(backend)
                calls.append(
                    channel.unary_unary(
                        "/salesops.common.v1.DiagnosticsService/WhoAmI",
                        request_serializer=diagnostics_pb2.WhoAmIRequest.SerializeToString,
                        response_deserializer=diagnostics_pb2.WhoAmIResponse.FromString,
                    )
                )
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        auth = next(v for k, v in scope["headers"] if k == b"authorization").decode()
        reply = await calls[0](
            diagnostics_pb2.WhoAmIRequest(), metadata=(("authorization", auth),), timeout=10
        )
        body = json.dumps(json_format.MessageToDict(reply)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


def run(seconds: float = 4.0, rounds: int = 3) -> dict[str, float]:
    from kit.auth import AuthConfig, TokenMinter

    token = TokenMinter(AuthConfig.from_env()).mint("rep-a1", "demo", ["rep"], org="east/team-a")
    qps: dict[str, list[float]] = {"grpc": [], "rest": [], "bare": []}
    lat: dict[str, list[float]] = {"grpc": [], "rest": [], "bare": []}
    cpu = {"backend_grpc": 0.0, "backend_rest": 0.0, "gateway": 0.0, "bare": 0.0}
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        redis = start_redis(Path(tmp), persist=False)
        try:
            grpc_port, gw_port = free_port(), free_port()
            backend = subprocess.Popen(
                [sys.executable, "-m", "bench.grpc_overhead", "serve", "kit", str(grpc_port)], cwd=ROOT
            )
            procs.append(backend)
            wait_port("127.0.0.1", grpc_port, 20, backend)
            env = {
                **os.environ,
                "SALESOPS_LEADS_ADDR": f"127.0.0.1:{grpc_port}",
                "SALESOPS_GATEWAY_PORT": str(gw_port),
                "SALESOPS_REDIS_URL": redis.address.rsplit("/", 1)[0] + "/0",
                "SALESOPS_GATEWAY_RATE_TENANT": "1000000000",
                "SALESOPS_GATEWAY_RATE_USER": "1000000000",
            }
            gateway = subprocess.Popen(
                [sys.executable, "-m", "gateway"], cwd=ROOT, env=env, stderr=subprocess.DEVNULL
            )
            procs.append(gateway)
            wait_port("127.0.0.1", gw_port, 30, gateway)
            bare_port = free_port()
            bare = subprocess.Popen(
                [sys.executable, "-m", "bench.bench_gateway", "serve-bare", str(bare_port), str(grpc_port)],
                cwd=ROOT,
            )
            procs.append(bare)
            wait_port("127.0.0.1", bare_port, 30, bare)
            for _ in range(rounds):
                b0 = _cpu_seconds(backend.pid)
                q, latencies = asyncio.run(_drive(f"127.0.0.1:{grpc_port}", token, seconds))
                cpu["backend_grpc"] += _cpu_seconds(backend.pid) - b0
                qps["grpc"].append(q)
                lat["grpc"].extend(latencies)
                b0, g0 = _cpu_seconds(backend.pid), _cpu_seconds(gateway.pid)
                q, latencies = asyncio.run(_drive_rest(gw_port, token, seconds))
                cpu["backend_rest"] += _cpu_seconds(backend.pid) - b0
                cpu["gateway"] += _cpu_seconds(gateway.pid) - g0
                qps["rest"].append(q)
                lat["rest"].extend(latencies)
                p0 = _cpu_seconds(bare.pid)
                q, latencies = asyncio.run(_drive_rest(bare_port, token, seconds))
                cpu["bare"] += _cpu_seconds(bare.pid) - p0
                qps["bare"].append(q)
                lat["bare"].extend(latencies)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)
            redis.stop()
    direct, rest = statistics.median(qps["grpc"]), statistics.median(qps["rest"])
    n_grpc, n_rest = len(lat["grpc"]), len(lat["rest"])
    bare_qps = statistics.median(qps["bare"])
    return {
        "grpc_direct_qps": direct,
        "gateway_rest_qps": rest,
        "ratio": rest / direct,
        "grpc_p50_ms": _pct(lat["grpc"], 50),
        "grpc_p99_ms": _pct(lat["grpc"], 99),
        "gateway_p50_ms": _pct(lat["rest"], 50),
        "gateway_p99_ms": _pct(lat["rest"], 99),
        "bare_proxy_qps": bare_qps,
        "bare_proxy_ratio": bare_qps / direct,
        "gateway_vs_bare_proxy": rest / bare_qps,
        # CPU per call: what the gateway adds, next to what the service itself spends.
        "backend_cpu_us_per_call": cpu["backend_grpc"] / n_grpc * 1e6,
        "gateway_cpu_us_per_call": cpu["gateway"] / n_rest * 1e6,
        "backend_cpu_us_per_rest_call": cpu["backend_rest"] / n_rest * 1e6,
        "bare_proxy_cpu_us_per_call": cpu["bare"] / len(lat["bare"]) * 1e6,
    }


def suite(quick: bool) -> list[Figure]:
    """Verdict figures: REST through the gateway vs direct gRPC (median of rounds; 3 in the full run)."""
    f = run(2.0, 1) if quick else run()
    return [
        pick(
            f,
            "gateway_rest_qps",
            "calls/s",
            name="WhoAmI REST via gateway",
            baseline="grpc_direct_qps",
            goal=Goal(0.6),
            note="median of 3 rounds of 4 s, 64 in flight" if not quick else "1 round of 2 s",
        ),
        pick(f, "gateway_rest_qps", "calls/s", name="gateway vs bare ASGI proxy", baseline="bare_proxy_qps"),
        pick(f, "gateway_p99_ms", "ms", name="gateway p99", baseline="grpc_p99_ms"),
        pick(
            f,
            "gateway_cpu_us_per_call",
            "us CPU/call",
            name="gateway CPU per call",
            baseline="bare_proxy_cpu_us_per_call",
        ),
    ]


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "serve-bare":
        import uvicorn

        uvicorn.run(
            _bare_proxy(f"127.0.0.1:{sys.argv[3]}"),
            host="127.0.0.1",
            port=int(sys.argv[2]),
            loop="uvloop",
            http="httptools",
            log_config=None,
            access_log=False,
        )
    else:
        print(run())
