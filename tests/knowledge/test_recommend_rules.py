# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""Recommendation ranking, exploration slot and reasons against fixtures (domain/recommend.py, pure);
rank-then-pick against the one-pass ranking it replaced, on random candidates."""

from __future__ import annotations

import random

from services.knowledge.domain.lift import CellCounts, lift_of
from services.knowledge.domain.recommend import (
    Candidate,
    Policy,
    Why,
    pick,
    rank,
    reason_text,
    recommend,
    score,
    seed_of,
    tiebreak,
)

SEED = seed_of("demo", "deal-1", "2026-12-06")


def cand(
    card_id: str,
    industry: bool = True,
    stage: bool = True,
    newcomer: int = 0,
    used: tuple[int, int] = (0, 0),
    cell: tuple[int, int] = (60, 30),
) -> Candidate:
    counts = CellCounts(cell[0], cell[1], used[0], used[1])
    return Candidate(card_id, industry, stage, newcomer, lift_of(counts, 10))


FIXTURE = [
    cand("generic", industry=False, stage=False),  # 1.0
    cand("stage-only", industry=False, newcomer=2),  # 2.0 + 2/8
    cand("proven", used=(20, 16)),  # 3 + lift 80 % vs 35 % -> +1 (clamped) + 0.5
    cand("popular", newcomer=8),  # 3 + 1
    cand("hurts", used=(20, 2)),  # 3 + lift 10 % vs 70 % -> -1 - 0.5
    cand("fresh-a"),  # 3, no data
    cand("fresh-b"),  # 3, no data
]


def test_ranking_with_an_exploration_slot() -> None:
    picks = recommend(FIXTURE, Policy(count=3), SEED)
    assert [p.card_id for p in picks[:2]] == ["proven", "popular"]
    assert [p.rank for p in picks] == [1, 2, 3]
    third = picks[2]
    assert third.exploration and third.card_id in {"fresh-a", "fresh-b", "stage-only", "generic"}
    assert [r.kind for r in third.reasons][:2] == [Why.EXPLORATION, Why.CONTEXT_MATCH]
    assert picks[0].score == 4.5 and picks[1].score == 4.0


def test_reasons_are_data_most_important_first() -> None:
    proven, popular = recommend(FIXTURE, Policy(count=3), SEED)[:2]
    lift = proven.reasons[0]
    assert lift.kind == Why.WIN_RATE_LIFT  # a measured positive lift leads
    assert lift.lift is not None and lift.lift.enough_data
    assert (
        lift.lift.used_deals,
        lift.lift.used_won,
        lift.lift.comparable_deals,
        lift.lift.comparable_won,
    ) == (20, 16, 40, 14)
    assert round(lift.value, 1) == 45.0
    assert [r.kind for r in proven.reasons] == [Why.WIN_RATE_LIFT, Why.CONTEXT_MATCH]
    assert [r.kind for r in popular.reasons] == [Why.CONTEXT_MATCH, Why.NEWCOMER_POPULAR, Why.WIN_RATE_LIFT]
    newcomer = popular.reasons[1]
    assert newcomer.value == 8 and newcomer.most
    no_data = popular.reasons[2]
    assert no_data.lift is not None and not no_data.lift.enough_data and no_data.value == 0


def test_deterministic_for_the_same_input_and_day_and_seeded_by_it() -> None:
    runs = {tuple(p.card_id for p in recommend(FIXTURE, Policy(count=3), SEED)) for _ in range(5)}
    assert len(runs) == 1
    reversed_input = recommend(list(reversed(FIXTURE)), Policy(count=3), SEED)
    assert tuple(p.card_id for p in reversed_input) in runs
    # Another deal or day may explore another little-data card.
    explored = {
        recommend(FIXTURE, Policy(count=3), seed_of("demo", f"deal-{n}", "2026-12-06"))[2].card_id
        for n in range(40)
    }
    assert {"fresh-a", "fresh-b"} <= explored


def test_without_exploration_or_little_data_the_slots_go_by_score() -> None:
    picks = recommend(FIXTURE, Policy(count=3, exploration=False), SEED)
    assert [p.card_id for p in picks][:2] == ["proven", "popular"]
    assert picks[2].card_id in {"fresh-a", "fresh-b"} and not picks[2].exploration
    measured = [cand(f"m{i}", used=(20, 10)) for i in range(4)]
    assert not any(p.exploration for p in recommend(measured, Policy(count=3), SEED))
    assert recommend([], Policy(), SEED) == []
    one = recommend(FIXTURE, Policy(count=1), SEED)
    assert [p.card_id for p in one] == ["proven"] and not one[0].exploration


def test_texts_in_both_languages() -> None:
    proven, popular, third = recommend(FIXTURE, Policy(count=3), SEED)
    en = [reason_text(r, "en") for r in proven.reasons]
    assert en[0].startswith("Win rate 80% after use vs 35% without (+45.0 pp, 95% CI")
    assert en[1] == "Matches this industry and stage"
    zh = [reason_text(r, "zh-CN") for r in popular.reasons]
    assert zh[0] == "匹配当前行业和阶段"
    assert zh[1] == "本周新人使用最多（8 次）"
    assert zh[2].startswith("赢单率提升：数据不足")
    assert reason_text(third.reasons[0], "en").startswith("Exploration slot: little data yet")


def reference(candidates: list[Candidate], policy: Policy, seed: str) -> list[tuple[str, int, float, bool]]:
    """The ranking as first written (every candidate scored, hashed and sorted in one go): rank and
    pick, with the ranking kept across deals and the exploration hashes compared as bytes, answer
    the same."""
    if policy.count <= 0 or not candidates:
        return []
    most = max(c.newcomer_uses_week for c in candidates)
    every = [(score(c, most), c) for c in candidates]
    ordered = sorted(every, key=lambda sc: (-sc[0], tiebreak(seed, sc[1].card_id)))
    explore = policy.exploration and policy.count >= 2 and len(every) >= policy.count
    head = ordered[: policy.count - 1] if explore else ordered[: policy.count]
    chosen = [(s, c, False) for s, c in head]
    if explore:
        taken = {c.card_id for _, c in head}
        little = [
            (s, c)
            for s, c in every
            if c.card_id not in taken and c.lift.used_deals < policy.exploration_max_sample
        ]
        if little:
            s, c = min(little, key=lambda sc: tiebreak(seed, sc[1].card_id))
            chosen.append((s, c, True))
        else:
            chosen.append((*ordered[policy.count - 1], False))
    return [(c.card_id, rank, s, e) for rank, (s, c, e) in enumerate(chosen, start=1)]


def test_rank_then_pick_answers_as_the_one_pass_ranking() -> None:
    rng = random.Random(3)
    for round_ in range(300):
        candidates = [
            cand(
                f"c{n:03d}",
                industry=rng.random() < 0.6,
                stage=rng.random() < 0.6,
                newcomer=rng.choice([0, 0, 0, 1, 2, 5]),
                used=rng.choice([(0, 0), (3, 1), (12, 9), (15, 3), (30, 20)]),
            )
            for n in range(rng.randint(0, 40))
        ]
        policy = Policy(
            count=rng.randint(0, 5),
            exploration=rng.random() < 0.8,
            exploration_max_sample=rng.choice([5, 10, 20]),
        )
        ranked = rank(candidates, policy)
        for deal in range(3):
            seed = seed_of("demo", f"deal-{round_}-{deal}", "2026-12-06")
            got = [(p.card_id, p.rank, p.score, p.exploration) for p in pick(ranked, policy, seed)]
            assert got == reference(candidates, policy, seed)
            assert [(p.card_id, p.rank) for p in recommend(candidates, policy, seed)] == [g[:2] for g in got]
