"""History of the knowledge recommend benchmark (bench/knowledge_recommend.py), seeded straight into
its SQLite file: deals of knowledge's projection with the stages they reached and their outcomes,
first deals per rep, 1,000,000 card uses spread over a year (2 % in the last week, a tenth of the reps
newcomers) with the counters record_use keeps; then the lift cells are rebuilt once, as the
consumer does per close.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.knowledge_rows import INDUSTRIES, STAGES, TENANT, _insert


def _bulk_load(path: str, table: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """A million rows the fast way (the bench's own file only): sqlite3 directly, the table's
    secondary indexes dropped during the load and built again after, one transaction."""
    import sqlite3

    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA synchronous=OFF")
        indexes = con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
            (table,),
        ).fetchall()
        width = len(con.execute(f"SELECT * FROM {table} LIMIT 0").description)
        con.execute("BEGIN")
        for name, _ in indexes:
            con.execute(f"DROP INDEX {name}")
        con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * width)})", rows)
        for _, sql in indexes:
            con.execute(sql)
        con.execute(
            "COMMIT"
        )  # no ANALYZE: the service never runs one, so the planner has no stats here either
    finally:
        con.close()


async def _seed_history(db: Any, cards: int, deals: int, uses: int, reps: int) -> dict[str, float]:
    """Deals with stages reached and outcomes, first deals per rep, `uses` card uses; lift rebuilt."""
    from services.knowledge import deal_outcomes
    from services.knowledge.consumers import on_session
    from services.knowledge.store_outcomes import (
        LOST,
        OPEN,
        WON,
        DealOutcomeRow,
        DealStageReachedRow,
        RepFirstDealRow,
    )

    rng = random.Random(11)
    now = datetime.now(UTC)
    t0 = time.perf_counter()
    deal_rows: list[dict[str, Any]] = []
    reached: list[dict[str, Any]] = []
    owners: dict[str, datetime] = {}
    for d in range(deals):
        industry = INDUSTRIES[d % 3]
        depth = rng.randint(1, 6)
        outcome = rng.choices((OPEN, WON, LOST), (2, 4, 4))[0]
        owner = f"rep-{rng.randrange(reps):04d}"
        created = now - timedelta(days=rng.uniform(10, 400))
        owners[owner] = min(owners.get(owner, created), created)
        deal_rows.append(
            {
                "tenant_id": TENANT, "deal_id": f"deal-{d:06d}", "industry": industry,
                "stage_id": STAGES[depth - 1], "owner_user_id": owner, "outcome": outcome,
                "created_at": created, "closed_at": now - timedelta(hours=1) if outcome != OPEN else None,
                "event_at": now,
            }
        )  # fmt: skip
        reached += [
            {"tenant_id": TENANT, "deal_id": f"deal-{d:06d}", "stage_id": s, "reached_at": created}
            for s in STAGES[:depth]
        ]
    # A tenth of the reps are newcomers: their first deal 30 days ago.
    for n, owner in enumerate(sorted(owners)):
        if n % 10 == 0:
            owners[owner] = now - timedelta(days=30)
    await _insert(db, DealOutcomeRow.__table__, deal_rows)
    await _insert(db, DealStageReachedRow.__table__, reached)
    await _insert(
        db,
        RepFirstDealRow.__table__,
        [{"tenant_id": TENANT, "user_id": u, "first_deal_at": at} for u, at in owners.items()],
    )
    t_deals = time.perf_counter() - t0
    t1 = time.perf_counter()
    ts = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's SQLite DATETIME text

    # The maintained counters per card and day, as record_use keeps them (newcomer: first deal within
    # the default 180 days of the use).
    days: dict[tuple[str, str], int] = {}
    newcomer_days: dict[tuple[str, str], int] = {}

    def use_rows() -> Iterator[tuple[Any, ...]]:
        for u in range(uses):
            deal = deal_rows[rng.randrange(deals)]
            recent = rng.random() < 0.02
            at = now - timedelta(days=rng.uniform(0.1, 6.9) if recent else rng.uniform(7, 365))
            used_at, card, owner = at.strftime(ts), f"card-{rng.randrange(cards):05d}", deal["owner_user_id"]
            day = at.date().isoformat()
            days[card, day] = days.get((card, day), 0) + 1
            if owners[owner] >= at - timedelta(days=180):
                newcomer_days[day, card] = newcomer_days.get((day, card), 0) + 1
            yield (
                TENANT, f"use-{u:07d}", card, 1, owner, "east/team-a",
                deal["deal_id"], "", "", deal["industry"], deal["stage_id"], "", used_at, used_at, f"use-{u:07d}", "",
            )  # fmt: skip

    await asyncio.to_thread(_bulk_load, db.url.database, "card_uses", use_rows())
    await asyncio.to_thread(
        _bulk_load,
        db.url.database,
        "card_use_days",
        ((TENANT, c, d, n, 0, 0, 0) for (c, d), n in days.items()),
    )
    await asyncio.to_thread(
        _bulk_load,
        db.url.database,
        "card_newcomer_days",
        ((TENANT, d, c, n) for (d, c), n in newcomer_days.items()),
    )
    t_uses = time.perf_counter() - t1
    async with db.session(TENANT) as session:
        uow = on_session(session, TENANT)
        t2 = time.perf_counter()
        cells = await deal_outcomes.rebuild_lift(uow, now)
        t_lift = time.perf_counter() - t2
        await session.commit()
    return {
        "seed_deals_s": t_deals,
        "seed_uses_s": t_uses,
        "lift_rebuild_s": t_lift,
        "lift_cells": cells,
    }
