"""Scoring over the index's unsplit strings gives exactly what scoring over word lists gives."""

from __future__ import annotations

import random

from services.knowledge.domain.search import Doc, query_terms, rank, score

WORDS = ["价格", "异议", "objection", "price", "a", "ab", "b", "预算", "decision", "maker"]
SYNONYMS: list[list[tuple[str, ...]]] = [
    [("异议",), ("objection",)],
    [("决策人",), ("decision", "maker")],
    [("价格",), ("price",)],
]


def test_strings_and_lists_score_alike() -> None:
    rng = random.Random(3)
    for _ in range(300):
        body = [rng.choice(WORDS) for _ in range(rng.randint(0, 12))]
        title = [rng.choice(WORDS) for _ in range(rng.randint(0, 3))]
        labels = [rng.choice(WORDS) for _ in range(rng.randint(0, 2))]
        terms = query_terms(
            rng.sample(["价格", "决策人", "objection", "a", "b"], rng.randint(1, 3)), SYNONYMS
        )
        as_lists = score(Doc("x", body, title, labels), terms)
        as_strings = score(Doc("x", " ".join(body), " ".join(title), " ".join(labels)), terms)
        assert as_lists == as_strings, (body, title, labels)


def test_repeated_neighbours_are_each_counted() -> None:
    terms = query_terms(["ab"], [])
    hit = score(Doc("x", "ab ab ab", "", ""), terms)
    assert hit is not None and hit.score == 11.2  # 10 + body 1 + 2 repeats x 0.1
    docs = [Doc("y", "b ab", "ab", ""), Doc("x", "ab ab ab", "", "")]
    assert [h.card_id for h in rank(docs, terms)] == ["y", "x"]
