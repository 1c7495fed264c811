"""Leads mixed-load benchmark: SQLite under 16 GetLead readers alone, then beside 4 CreateLead
writers, then 64 concurrent CreateLead writers: read p99 as a ratio to reads alone, failed requests
counted.

    .venv/bin/python -m bench.bench_leads mixed
"""

from __future__ import annotations

import asyncio
import random
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.leads_rows import _in_flight, _insert, _lead_pb, _lead_rows, _pct

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
