"""Knowledge recommend benchmark: RecommendSopCards with 10,000 cards and 1,000,000 uses (cards from
bench/knowledge_rows.py, deals and uses from bench/knowledge_history.py).

A real gRPC server in this process (the tests' shape), RecommendSopCards for random deals,
industries, stages and reps (each call also records its impressions); the baseline is a bare
indexed query of a cell's cards (the facet index, industry and stage) on the same database in the
same run; GetSopCard on the same server is in the note. Goal: p99 <= 20 ms. Also round trips and
CPU per call, and a DealWon applied (projection + lift cache).

    .venv/bin/python -m bench.bench_knowledge [--quick] recommend
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import text

from bench.knowledge_history import _seed_history
from bench.knowledge_rows import INDUSTRIES, STAGES, TENANT, _percentile, _seed_cards, _timed
from bench.verdict import AT_MOST, Figure, Goal

BARE_CELL = text(
    "SELECT card_id FROM sop_card_facets WHERE tenant_id = :t AND facet = 'industry' AND value = :i "
    "INTERSECT SELECT card_id FROM sop_card_facets WHERE tenant_id = :t AND facet = 'stage' AND value = :s"
)


class _Trips:
    """Round trips to the database while counting: statements, BEGINs, COMMITs and ROLLBACKs (also the
    pool's rollback when a connection is returned), from SQLAlchemy's events on the bench's engine."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.counting, self.statements, self.transactions = False, 0, 0
        sync = engine.sync_engine
        event.listen(sync, "before_cursor_execute", self._statement)
        for name in ("begin", "commit", "rollback"):
            event.listen(sync, name, self._transaction)
        event.listen(sync.pool, "reset", lambda *_: self._transaction())

    def _statement(self, *_: Any) -> None:
        self.statements += self.counting

    def _transaction(self, *_: Any) -> None:
        self.transactions += self.counting

    async def measure(self, calls: int, call: Callable[[int], Awaitable[Any]]) -> dict[str, float]:
        """Statements, transaction round trips and process CPU (client and server: one process) per call."""
        self.counting, self.statements, self.transactions = True, 0, 0
        cpu = time.process_time()
        _, failed = await _timed(calls, call)
        cpu = time.process_time() - cpu
        self.counting = False
        return {
            "statements": self.statements / calls,
            "transactions": self.transactions / calls,
            "cpu_ms": cpu * 1000 / calls,
            "failed": failed,
        }


async def run_recommend(quick: bool) -> dict[str, float]:
    import grpc

    from deploy.local.infra import free_port
    from kit.auth import AuthConfig, TokenMinter, TokenVerifier
    from kit.config import GrpcSettings
    from kit.db import Database
    from kit.grpc.server import GrpcServer
    from kit.migrations import upgrade_to_head
    from salesops.knowledge.v1 import knowledge_service_pb2 as pb
    from salesops.knowledge.v1 import knowledge_service_pb2_grpc
    from services.knowledge import api

    cards, deals, uses, reps = (2_000, 10_000, 100_000, 100) if quick else (10_000, 60_000, 1_000_000, 300)
    calls = 200 if quick else 1_000
    with tempfile.TemporaryDirectory(prefix="bench-knowledge-") as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'knowledge.db'}", pool_size=10)
        await upgrade_to_head("knowledge", db)
        figures = {"seed_cards_s": await _seed_cards(db, cards, index=False)}
        figures.update(await _seed_history(db, cards, deals, uses, reps))
        config = AuthConfig.from_env({})
        minter = TokenMinter(config)
        settings = GrpcSettings(
            listen=f"127.0.0.1:{free_port()}", reflection=False, grace_seconds=1.0,
            default_deadline_seconds=30.0, max_message_bytes=16 * 1024 * 1024,
            keepalive_time_ms=30_000, keepalive_timeout_ms=10_000,
        )  # fmt: skip
        rt: Any = SimpleNamespace(db=db)  # what the servicers read of the runtime
        server = GrpcServer("knowledge", settings, TokenVerifier(config), api.registrations(rt))
        await server.start()
        channel = grpc.aio.insecure_channel(server.address)
        stub: Any = knowledge_service_pb2_grpc.KnowledgeServiceStub(channel)
        tokens = {
            f"rep-{r:04d}": minter.mint(f"rep-{r:04d}", TENANT, roles=["rep"], org="east/team-a")
            for r in range(0, reps, max(1, reps // 50))
        }
        users = sorted(tokens)
        rng = random.Random(5)

        def md(i: int) -> tuple[tuple[str, str], ...]:
            return (("authorization", f"Bearer {tokens[users[i % len(users)]]}"),)

        async def recommend(i: int) -> None:
            request = pb.RecommendSopCardsRequest(
                deal_id=f"deal-{rng.randrange(deals):06d}",
                industry=rng.choice(INDUSTRIES),
                stage_id=rng.choice(STAGES),
            )
            got = await stub.RecommendSopCards(request, metadata=md(i), timeout=30)
            assert len(got.recommendations) == 3

        async def bare_cell(i: int) -> None:
            """The baseline: one bare indexed query of a cell's cards (those naming the industry and the
            stage, by the facet index), on the same database and pool."""
            params = {"t": TENANT, "i": rng.choice(INDUSTRIES), "s": rng.choice(STAGES)}
            async with db.session(TENANT, read_only=True) as session:
                rows = await session.execute(BARE_CELL, params)
                rows.all()

        async def get_card(i: int) -> None:
            request = pb.GetSopCardRequest(card_id=f"card-{rng.randrange(cards):05d}")
            await stub.GetSopCard(request, metadata=md(i), timeout=30)

        from salesops.pipeline.v1 import deal_pb2
        from salesops.pipeline.v1 import events_pb2 as ev
        from services.knowledge import deal_outcomes
        from services.knowledge.consumers import on_session

        async def close_one(i: int) -> None:
            """The consumer's work for one DealWon of a deal with uses: projection + lift cache."""
            deal = ev.DealContext(
                deal_id=f"deal-{i:06d}", industry=INDUSTRIES[i % 3], owner_user_id="rep-0001",
                stage_id="negotiation", status=deal_pb2.DEAL_STATUS_WON,
            )  # fmt: skip
            async with db.session(TENANT) as session:
                won = ev.DealWon(deal=deal, from_stage_id="negotiation")
                await deal_outcomes.apply_deal_event(on_session(session, TENANT), won, datetime.now(UTC))
                await session.commit()

        try:
            await _timed(20, recommend)  # warm: jieba is not involved, but caches and the pool are
            await _timed(20, get_card)
            await _timed(20, bare_cell)
            trips = _Trips(db.engine)
            per_rec = await trips.measure(calls // 4, recommend)
            per_cell = await trips.measure(calls // 4, bare_cell)
            rec, rec_failed = await _timed(calls, recommend)
            cell, cell_failed = await _timed(calls, bare_cell)
            base, base_failed = await _timed(calls, get_card)
            load = os.getloadavg()[0]
            closes, closes_failed = await _timed(50 if quick else 200, close_one)
        finally:
            await channel.close(None)
            await server.stop(0)
            await db.dispose()
    figures.update(
        cards=cards, uses=uses, deals=deals, calls=calls,
        recommend_p50_ms=_percentile(rec, 50), recommend_p99_ms=_percentile(rec, 99),
        get_p50_ms=_percentile(base, 50), get_p99_ms=_percentile(base, 99),
        recommend_failed=rec_failed, get_failed=base_failed,
        cell_p50_ms=_percentile(cell, 50), cell_p99_ms=_percentile(cell, 99), cell_failed=cell_failed,
        load=load,
        rec_statements=per_rec["statements"], rec_transactions=per_rec["transactions"],
        rec_cpu_ms=per_rec["cpu_ms"], cell_statements=per_cell["statements"],
        cell_transactions=per_cell["transactions"], cell_cpu_ms=per_cell["cpu_ms"],
        recommend_failed_counted=per_rec["failed"] + per_cell["failed"],
        close_p50_ms=_percentile(closes, 50), close_p99_ms=_percentile(closes, 99), close_failed=closes_failed,
    )  # fmt: skip
    return figures


def recommend_suite(quick: bool) -> list[Figure]:
    f = asyncio.run(run_recommend(quick))
    size = f"{int(f['cards']):,} cards, {int(f['uses']):,} uses"
    return [
        Figure(
            f"knowledge RecommendSopCards p99, {size}", f["recommend_p99_ms"], "ms",
            baseline=f["cell_p99_ms"], baseline_name="bare indexed query of a cell's cards p99, same run",
            goal=Goal(20.0, AT_MOST, on="value"),
            failed=int(f["recommend_failed"] + f["get_failed"] + f["cell_failed"] + f["recommend_failed_counted"]),
            note=f"p50 {f['recommend_p50_ms']:.1f} ms (bare cell query {f['cell_p50_ms']:.1f}; GetSopCard p50 "
            f"{f['get_p50_ms']:.1f}, p99 {f['get_p99_ms']:.1f}); load {f['load']:.1f}; SQLite, in-process gRPC",
        ),
        Figure(
            "knowledge RecommendSopCards database round trips per call", f["rec_statements"] + f["rec_transactions"],
            "round trips", baseline=f["cell_statements"] + f["cell_transactions"],
            baseline_name="bare indexed query of a cell's cards in its own read session",
            note=f"{f['rec_statements']:.2f} statements + {f['rec_transactions']:.2f} begin / commit / rollback "
            f"(bare: {f['cell_statements']:.2f} + {f['cell_transactions']:.2f}); counted by SQLAlchemy events",
        ),
        Figure(
            "knowledge RecommendSopCards CPU per call (client and server, one process)", f["rec_cpu_ms"],
            "ms CPU/call", baseline=f["cell_cpu_ms"], baseline_name="bare indexed query of a cell's cards",
            note=f"load {f['load']:.1f}",
        ),
        Figure(
            f"knowledge DealWon applied (projection + lift cache), {size}, p99", f["close_p99_ms"], "ms",
            failed=int(f["close_failed"]),
            note=f"p50 {f['close_p50_ms']:.1f} ms; full lift rebuild {f['lift_rebuild_s']:.1f} s "
            f"(seeding uses {f['seed_uses_s']:.0f} s)",
        ),
    ]  # fmt: skip
