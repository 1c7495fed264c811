"""Shared rows and helpers of the knowledge benchmarks (bench/knowledge_*.py): published cards over
three industries and the six default stages (a tenth for every industry, a tenth for every stage),
their facets and segmented search rows (jieba, as the service indexes them), inserted in batches
straight into the service's own tables; a timed loop of calls and percentiles.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from bench.knowledge_words import EN, _text

INDUSTRIES = ("manufacturing", "retail", "healthcare")
STAGES = (
    "initial_contact",
    "needs_confirmed",
    "solution_confirmed",
    "proposal_quote",
    "negotiation",
    "contract_approval",
)
TENANT = "bench"


def _percentile(values: Sequence[float], q: int) -> float:
    if len(values) < 2:
        return float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _card_rows(n: int, rng: random.Random, index: bool) -> tuple[list[dict[str, Any]], ...]:
    from salesops.knowledge.v1.sop_card_pb2 import CardAction, SopCard
    from services.knowledge.domain.cards import PUBLISHED
    from services.knowledge.knowledge_settings import SCENARIOS
    from services.knowledge.segmentation import tokens

    now = datetime.now(UTC)
    cards, facets, search = [], [], []
    for i in range(n):
        card_id = f"card-{i:05d}"
        zh = i % 2 == 0
        industries = [] if i % 10 == 0 else [INDUSTRIES[i % 3]]
        stages = [] if i % 10 == 1 else [STAGES[(i // 3) % 6]]
        card = SopCard(
            card_id=card_id,
            title=_text(rng, zh, 4),
            scenario=SCENARIOS[i % len(SCENARIOS)][0],
            summary=_text(rng, zh, 14),
            language_code="zh-CN" if zh else "en",
            must_do_actions=[CardAction(text=_text(rng, zh, 6), example=_text(rng, zh, 6)) for _ in range(3)],
            industries=industries,
            stage_ids=stages,
            tags=[rng.choice(EN)],
        )
        cards.append(
            {
                "tenant_id": TENANT, "card_id": card_id, "title": card.title, "scenario": card.scenario,
                "language_code": card.language_code, "status": PUBLISHED, "kind": 1, "visibility": 1,
                "applies_to_leads": False, "author_user_id": "admin", "owner_user_id": "admin",
                "published_version": 1, "published_at": now, "status_reason": "", "status_changed_at": now,
                "status_changed_by": "admin", "created_at": now, "created_by": "admin", "updated_at": now,
                "updated_by": "admin", "version": 1, "request_digest": "", "body": card.SerializeToString(),
            }
        )  # fmt: skip
        for facet, values in (("industry", industries), ("stage", stages), ("tag", list(card.tags))):
            facets += [{"tenant_id": TENANT, "card_id": card_id, "facet": facet, "value": v} for v in values]
        if index:
            title = tokens(card.title)
            key, name_zh, name_en = SCENARIOS[i % len(SCENARIOS)]
            labels = list(
                dict.fromkeys(tokens(" ".join([key.replace("_", " "), name_zh, name_en, *card.tags])))
            )
            body = tokens(card.summary)
            for a in card.must_do_actions:
                body += tokens(a.text) + tokens(a.example)
            search.append(
                {
                    "tenant_id": TENANT, "card_id": card_id, "tokens": " ".join([*title, *labels, *body]),
                    "title_tokens": " ".join(title), "label_tokens": " ".join(labels), "lexemes": "",
                }
            )  # fmt: skip
    return cards, facets, search


async def _insert(db: Any, table: Any, rows: list[dict[str, Any]], batch: int = 5000) -> None:
    from sqlalchemy import insert

    async with db.system_session() as session:
        for start in range(0, len(rows), batch):
            await session.execute(insert(table), rows[start : start + batch])
        await session.commit()


async def _seed_cards(db: Any, n: int, index: bool) -> float:
    from services.knowledge.store import SopCardFacetRow, SopCardRow, SopCardSearchRow

    t = time.perf_counter()
    cards, facets, search = _card_rows(n, random.Random(7), index)
    await _insert(db, SopCardRow.__table__, cards)
    await _insert(db, SopCardFacetRow.__table__, facets)
    if search:
        await _insert(db, SopCardSearchRow.__table__, search)
    return time.perf_counter() - t


async def _timed(calls: int, call: Callable[[int], Awaitable[Any]]) -> tuple[list[float], int]:
    latencies, failed = [], 0
    for i in range(calls):
        t = time.perf_counter()
        try:
            await call(i)
        except Exception:
            failed += 1
            continue
        latencies.append((time.perf_counter() - t) * 1000)
    return latencies, failed
