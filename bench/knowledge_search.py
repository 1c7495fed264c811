"""Knowledge search benchmark: SearchSopCards' use case (segment, synonyms, candidates, rank,
highlights, page of 20) over 10,000 bilingual cards (bench/knowledge_rows.py) against the bare FTS5
query of the same words (`MATCH '"w1" OR ...' LIMIT 20`) in the same run; the figure is the ratio
of p99s.

    .venv/bin/python -m bench.bench_knowledge [--quick] search
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from bench.knowledge_rows import TENANT, _percentile, _seed_cards, _timed
from bench.verdict import Figure

QUERIES = (
    "价格",
    "预算异议",
    "competitor discount",
    "决策人 审批",
    "price objection",
    "试点 pilot",
    "续约",
    "库存 门店",
)


async def run_search(quick: bool) -> dict[str, float]:
    from kit.auth import Principal
    from kit.db import Database
    from kit.migrations import upgrade_to_head
    from salesops.knowledge.v1.knowledge_service_pb2 import SearchSopCardsRequest
    from services.knowledge import knowledge_settings, search
    from services.knowledge.domain import search as rules
    from services.knowledge.segmentation import tokens
    from services.knowledge.store import transactions

    cards = 2_000 if quick else 10_000
    rounds = 10 if quick else 40
    with tempfile.TemporaryDirectory(prefix="bench-knowledge-") as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'knowledge.db'}", pool_size=10)
        await upgrade_to_head("knowledge", db)
        figures = {"seed_cards_s": await _seed_cards(db, cards, index=True)}
        tx = transactions(db)
        who = Principal(
            "rep-0001", TENANT, frozenset({"rep"}), "east/team-a", datetime.max.replace(tzinfo=UTC)
        )
        async with tx.read(TENANT) as uow:
            synonyms = knowledge_settings.synonyms_of(await knowledge_settings.current(uow))
        words = {q: rules.candidate_words(rules.query_terms(tokens(q), synonyms)) for q in QUERIES}

        async def use_case(i: int) -> None:
            async with tx.read(TENANT) as uow:
                await search.search_cards(uow, who, SearchSopCardsRequest(query=QUERIES[i % len(QUERIES)]))

        async def bare_query(i: int, limit: str) -> None:
            match = " OR ".join(f'"{w}"' for w in words[QUERIES[i % len(QUERIES)]])
            async with db.session(TENANT, read_only=True) as session:
                rows = await session.execute(
                    text(f"SELECT rowid FROM sop_card_fts WHERE sop_card_fts MATCH :q{limit}"), {"q": match}
                )
                rows.all()

        async def bare(i: int) -> None:  # every match, unranked: what any ranked answer must enumerate
            await bare_query(i, "")

        async def bare20(i: int) -> None:  # the first 20 matches, as measured by hand before
            await bare_query(i, " LIMIT 20")

        await _timed(len(QUERIES), use_case)
        await _timed(len(QUERIES), bare)
        calls = rounds * len(QUERIES)
        mine, mine_failed = await _timed(calls, use_case)
        base, base_failed = await _timed(calls, bare)
        first20, _ = await _timed(calls, bare20)
        await db.dispose()
    figures.update(
        cards=cards, calls=calls,
        search_p50_ms=_percentile(mine, 50), search_p99_ms=_percentile(mine, 99),
        bare_p50_ms=_percentile(base, 50), bare_p99_ms=_percentile(base, 99),
        bare20_p50_ms=_percentile(first20, 50), bare20_p99_ms=_percentile(first20, 99),
        search_failed=mine_failed, bare_failed=base_failed,
    )  # fmt: skip
    return figures


def search_suite(quick: bool) -> list[Figure]:
    f = asyncio.run(run_search(quick))
    return [
        Figure(
            f"knowledge SearchSopCards p99, {int(f['cards']):,} bilingual cards", f["search_p99_ms"], "ms",
            baseline=f["bare_p99_ms"], baseline_name="bare FTS5 MATCH of the same words, every match",
            goal=None, failed=int(f["search_failed"] + f["bare_failed"]),
            note=f"p50 {f['search_p50_ms']:.1f} ms vs bare {f['bare_p50_ms']:.1f} ms; bare with LIMIT 20: "
            f"p50 {f['bare20_p50_ms']:.2f} ms, p99 {f['bare20_p99_ms']:.2f} ms; use case in-process, SQLite",
        ),
    ]  # fmt: skip
