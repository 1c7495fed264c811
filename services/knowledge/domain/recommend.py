# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""Which published cards to recommend for a deal or lead, in which order, and why: pure.

Score of a candidate (higher first):
- context match: 3 when the card names both the industry and the stage, 2 when it names
  one and is for all of the other, 1 when it is for every industry and stage;
- newcomer practice: + uses by newcomers in the last 7 days / the most any candidate had (0..1);
- lift, when there is enough data: + lift in percentage points / 20, clamped to -1..1, and
  + 0.5 when the whole 95 % interval is above zero (- 0.5 when it is below).
Ties break by a hash of (seed, card id): the seed is tenant + deal or lead + day, so the
same input on the same day gives the same list, and ties rotate across deals and days.

Exploration: the last slot (when 2 or more are asked for) goes to a card with little
data (fewer closed deals used it than `exploration_max_sample`) that did not make the
other slots, the one with the smallest seeded hash, so lift can be measured at all.
Each pick carries its reasons as data (kind, value, the lift figures); `reason_text`
renders them in the card's language.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from services.knowledge.domain.lift import Lift


class Why(IntEnum):
    """Mirrors RecommendationReasonKind (values equal)."""

    CONTEXT_MATCH = 1
    NEWCOMER_POPULAR = 2
    WIN_RATE_LIFT = 4
    EXPLORATION = 7


@dataclass(frozen=True)
class Candidate:
    card_id: str
    industry_named: bool  # the card lists the request's industry (else it is for all industries)
    stage_named: bool  # the card lists the stage, or is for leads on a lead (else all stages)
    newcomer_uses_week: int
    lift: Lift


@dataclass(frozen=True)
class Reason:
    kind: Why
    value: float
    lift: Lift | None = None
    most: bool = False  # NEWCOMER_POPULAR: the most of all candidates


@dataclass(frozen=True)
class Pick:
    card_id: str
    rank: int
    score: float
    exploration: bool
    reasons: list[Reason] = field(default_factory=list)


@dataclass(frozen=True)
class Policy:
    count: int = 3
    exploration: bool = True
    exploration_max_sample: int = 10


def seed_of(tenant: str, subject: str, day: str) -> str:
    return f"{tenant}|{subject}|{day}"


def tiebreak(seed: str, card_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}|{card_id}".encode()).digest()[:8], "big")


def match_level(c: Candidate) -> int:
    return 1 + int(c.industry_named) + int(c.stage_named)


def score(c: Candidate, most_newcomer_uses: int) -> float:
    s = float(match_level(c))
    if most_newcomer_uses > 0:
        s += c.newcomer_uses_week / most_newcomer_uses
    if c.lift.enough_data and c.lift.lift is not None:
        s += max(-1.0, min(1.0, c.lift.lift.rate * 100 / 20))
        if c.lift.lift.low > 0:
            s += 0.5
        elif c.lift.lift.high < 0:
            s -= 0.5
    return round(s, 6)


def _reasons(c: Candidate, most: int, exploring: bool) -> list[Reason]:
    out = [Reason(Why.EXPLORATION, c.lift.used_deals, c.lift)] if exploring else []
    out.append(Reason(Why.CONTEXT_MATCH, match_level(c)))
    if c.newcomer_uses_week > 0:
        out.append(Reason(Why.NEWCOMER_POPULAR, c.newcomer_uses_week, most=c.newcomer_uses_week == most))
    if not exploring:
        out.append(Reason(Why.WIN_RATE_LIFT, c.lift.lift_pp or 0.0, c.lift))
    if not exploring and c.lift.enough_data and c.lift.lift is not None and c.lift.lift.low > 0:
        out.insert(0, out.pop())  # a measured, positive lift is the strongest reason
    return out


@dataclass(frozen=True)
class Ranked:
    """Candidates scored and ordered by score, before any seed: what `pick` needs, the same for every
    deal and day (so it can be kept while the candidates and their figures are unchanged)."""

    by_score: list[tuple[float, Candidate]]  # best first; equal scores in candidate order
    little: list[tuple[float, Candidate]]  # exploration material: used by few closed deals, candidate order
    most: int  # the most newcomer uses of any candidate
    little_keys: list[bytes] = field(default_factory=list)  # the little ones' card ids, encoded


def rank(candidates: Sequence[Candidate], policy: Policy) -> Ranked:
    if not candidates:
        return Ranked([], [], 0)
    most = max(c.newcomer_uses_week for c in candidates)
    every = [(score(c, most), c) for c in candidates]
    little = [(s, c) for s, c in every if c.lift.used_deals < policy.exploration_max_sample]
    keys = [c.card_id.encode() for _, c in little]
    return Ranked(sorted(every, key=lambda sc: -sc[0]), little, most, keys)


def _hasher(seed: str) -> Callable[[str], int]:
    """`tiebreak` for one seed: the seed's prefix hashed once, copied per card (the same digests)."""
    prefix = hashlib.sha256(f"{seed}|".encode())

    def of(card_id: str) -> int:
        h = prefix.copy()
        h.update(card_id.encode())
        return int.from_bytes(h.digest()[:8], "big")

    return of


def _least_hashed(seed: str, ranked: Ranked, taken: set[str]) -> int:
    """Index in `ranked.little` of the card with the smallest `tiebreak` (the first of equals), not
    taken; -1 if none. The same choice as min(key=tiebreak), hashing the seed's prefix once and
    comparing the digests' first 8 bytes (big-endian, as tiebreak's integer): a few hundred
    little-data candidates are hashed on every call."""
    copy = hashlib.sha256(f"{seed}|".encode()).copy
    best, found = b"", -1
    for i, key in enumerate(ranked.little_keys):
        h = copy()
        h.update(key)
        d = h.digest()[:8]
        if (found < 0 or d < best) and ranked.little[i][1].card_id not in taken:
            best, found = d, i
    return found


def pick(ranked: Ranked, policy: Policy, seed: str) -> list[Pick]:
    """The top `policy.count` of the ranked candidates with their reasons; exploration in the last
    slot if any. Ties break by the seeded hash: only the scores reaching the top `count` are hashed
    (the same order as hashing all; a thousand candidates made the hashes a measurable share of a call)."""
    by_score = ranked.by_score
    if policy.count <= 0 or not by_score:
        return []
    tiebreak_of = _hasher(seed)
    cut = by_score[min(policy.count, len(by_score)) - 1][0]
    top = []
    for sc in by_score:
        if sc[0] < cut:
            break
        top.append(sc)
    scored = sorted(top, key=lambda sc: (-sc[0], tiebreak_of(sc[1].card_id)))
    explore = policy.exploration and policy.count >= 2 and len(by_score) >= policy.count
    head = scored[: policy.count - 1] if explore else scored[: policy.count]
    chosen = [(s, c, False) for s, c in head]
    if explore:
        found = _least_hashed(seed, ranked, {c.card_id for _, c in head})
        if found >= 0:
            s, c = ranked.little[found]
            chosen.append((s, c, True))
        else:
            chosen.append((*scored[policy.count - 1], False))
    return [
        Pick(c.card_id, rank, s, exploring, _reasons(c, ranked.most, exploring))
        for rank, (s, c, exploring) in enumerate(chosen, start=1)
    ]


def recommend(candidates: Sequence[Candidate], policy: Policy, seed: str) -> list[Pick]:
    """The top `policy.count` candidates with their reasons; exploration in the last slot if any."""
    if policy.count <= 0 or not candidates:
        return []
    return pick(rank(candidates, policy), policy, seed)


def _pp(x: float) -> str:
    return f"{x * 100:+.1f}"


def reason_text(reason: Reason, language: str) -> str:
    """The reason for people, in the card's language (zh-CN unless it is "en")."""
    en = language.lower().startswith("en")
    lift = reason.lift
    if reason.kind == Why.CONTEXT_MATCH:
        level = int(reason.value)
        if en:
            return {3: "Matches this industry and stage", 2: "Matches this industry or stage"}.get(
                level, "For every industry and stage"
            )
        return {3: "匹配当前行业和阶段", 2: "匹配当前行业或阶段"}.get(level, "适用于所有行业和阶段")
    if reason.kind == Why.NEWCOMER_POPULAR:
        n = int(reason.value)
        if en:
            return f"{'Most used' if reason.most else 'Used'} by newcomers this week ({n} uses)"
        return f"本周新人{'使用最多' if reason.most else '使用'}（{n} 次）"
    if reason.kind == Why.EXPLORATION and lift is not None:
        if en:
            return (
                f"Exploration slot: little data yet ({lift.used_deals} closed deals used it); "
                "using it lets its win-rate lift be measured"
            )
        return f"探索位：该卡片数据尚少（已结单 {lift.used_deals} 单使用过），使用后才能衡量赢单率提升"
    if reason.kind == Why.WIN_RATE_LIFT and lift is not None:
        if not lift.enough_data or lift.lift is None or lift.used is None or lift.comparable is None:
            if en:
                return (
                    f"Win-rate lift: not enough data ({lift.used_deals} closed deals with it, "
                    f"{lift.comparable_deals} without; {lift.min_sample} needed on each side)"
                )
            return (
                f"赢单率提升：数据不足（使用过的已结单 {lift.used_deals} 单，未使用 "
                f"{lift.comparable_deals} 单；每边至少需要 {lift.min_sample} 单）"
            )
        d = lift.lift
        if en:
            return (
                f"Win rate {lift.used.rate:.0%} after use vs {lift.comparable.rate:.0%} without "
                f"({_pp(d.rate)} pp, 95% CI {_pp(d.low)} to {_pp(d.high)}; "
                f"{lift.used_deals} vs {lift.comparable_deals} closed deals)"
            )
        return (
            f"使用后赢单率 {lift.used.rate:.0%}，未使用 {lift.comparable.rate:.0%}"
            f"（{_pp(d.rate)} 个百分点，95% 区间 {_pp(d.low)} ~ {_pp(d.high)}；"
            f"{lift.used_deals} 单 vs {lift.comparable_deals} 单）"
        )
    return ""
