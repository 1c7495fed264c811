"""Monthly iteration rules: which cards retire, which go back to review, and why (pure, no I/O).

Per card and month: a usage rate (per `Policy.basis`) and a negative feedback rate
(NOT_APPLICABLE, and PARTLY as half when the policy says so, over all feedback).
A card with usage under `retire_max_usage` AND negative over `retire_min_negative`
retires; then the `return_count` most criticised of the cards left go back to review.

Guardrails, in this order: a card first published less than `grace` before the
month's end is EXEMPT (and not counted as considered); a card with fewer than
`min_feedback` feedbacks is EXEMPT (its rates are noise); a card is never retired
(nor sent to review) when that would leave an industry x stage cell it covers with
no published card: it is KEPT and the reason says which cell. Cards are taken worst
first, so the cell keeps its least bad card.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum
from itertools import product

ANY = "*"  # a card with no industries (or stages) applies to all of them


class Basis(Enum):
    IMPRESSIONS = "impressions"  # uses / times recommended
    AUDIENCE = "audience"  # distinct users of the card / active users


class Action(Enum):
    KEEP = "keep"
    RETIRE = "retire"
    RETURN_TO_REVIEW = "return_to_review"
    EXEMPT = "exempt"


@dataclass(frozen=True)
class Policy:
    retire_max_usage: float = 0.15
    retire_min_negative: float = 0.40
    return_count: int = 3
    min_feedback: int = 5
    grace: timedelta = timedelta(days=30)
    partly_half_negative: bool = False
    basis: Basis = Basis.IMPRESSIONS


@dataclass(frozen=True)
class CardMonth:
    """One published card's figures for the month (what the repositories aggregate)."""

    card_id: str
    first_published_at: datetime
    industries: tuple[str, ...] = ()
    stage_ids: tuple[str, ...] = ()
    uses: int = 0
    users: int = 0  # distinct users who used it
    impressions: int | None = None  # None: not recommended this month (or not recorded)
    recommended_uses: int | None = None  # uses that came from a recommendation; None = all uses
    fully: int = 0
    partly: int = 0
    not_applicable: int = 0

    @property
    def feedback(self) -> int:
        return self.fully + self.partly + self.not_applicable


@dataclass(frozen=True)
class Decision:
    card_id: str
    usage_rate: float
    negative_rate: float
    action: Action
    reason: str


@dataclass
class Outcome:
    decisions: list[Decision] = field(default_factory=list)  # worst first
    retired: list[str] = field(default_factory=list)
    returned: list[str] = field(default_factory=list)
    considered: int = 0


def pct(rate: float) -> str:
    return f"{round(rate * 100)} %"


def negative_rate(card: CardMonth, policy: Policy) -> float:
    if not card.feedback:
        return 0.0
    negative = card.not_applicable + (card.partly / 2 if policy.partly_half_negative else 0)
    return negative / card.feedback


def feedback_negative_rate(fully: int, partly: int, not_applicable: int, partly_half_negative: bool) -> float:
    """Negative share of some feedback, as `negative_rate` counts it (SopCardStats over 30 days)."""
    rated = fully + partly + not_applicable
    if not rated:
        return 0.0
    return (not_applicable + (partly / 2 if partly_half_negative else 0)) / rated


def usage_rate(card: CardMonth, policy: Policy, active_users: int) -> float:
    """Uses from recommendations per impression (capped at 1); by audience when asked, or for a
    card not recommended in the month (used from search or a link: its impressions say nothing)."""
    if policy.basis is Basis.IMPRESSIONS and card.impressions:
        used = card.uses if card.recommended_uses is None else card.recommended_uses
        return min(1.0, used / card.impressions)
    return min(1.0, card.users / active_users) if active_users else 0.0


def cells(card: CardMonth) -> list[tuple[str, str]]:
    return list(product(card.industries or (ANY,), card.stage_ids or (ANY,)))


def covers(card: CardMonth, cell: tuple[str, str]) -> bool:
    industry, stage = cell
    by_industry = not card.industries or industry in card.industries
    by_stage = not card.stage_ids or stage in card.stage_ids
    return by_industry and by_stage


def orphaned_cell(card: CardMonth, live: Iterable[CardMonth]) -> tuple[str, str] | None:
    """A cell of `card` no other live card covers, if any (the first, in a stable order)."""
    others = [c for c in live if c.card_id != card.card_id]
    for cell in sorted(cells(card)):
        if not any(covers(other, cell) for other in others):
            return cell
    return None


def cell_name(cell: tuple[str, str]) -> str:
    industry, stage = cell
    return f"{'all industries' if industry == ANY else industry} x {'all stages' if stage == ANY else stage}"


def decide(cards: Sequence[CardMonth], policy: Policy, active_users: int, month_end: datetime) -> Outcome:
    """The month's decisions for the tenant's published cards (all of them: cells are judged over all)."""
    rated = {c.card_id: (usage_rate(c, policy, active_users), negative_rate(c, policy)) for c in cards}
    # Worst first: most negative, then least used, then id (deterministic).
    order = sorted(cards, key=lambda c: (-rated[c.card_id][1], rated[c.card_id][0], c.card_id))
    by_id: dict[str, Decision] = {}
    judged: list[CardMonth] = []
    considered = 0
    for c in order:
        usage, negative = rated[c.card_id]
        if c.first_published_at > month_end - policy.grace:
            reason = (
                f"new card: first published {c.first_published_at.date().isoformat()}, in its grace period"
            )
            by_id[c.card_id] = Decision(c.card_id, usage, negative, Action.EXEMPT, reason)
            continue
        considered += 1
        if c.feedback < policy.min_feedback:
            reason = f"too little feedback: {c.feedback} < {policy.min_feedback}"
            by_id[c.card_id] = Decision(c.card_id, usage, negative, Action.EXEMPT, reason)
            continue
        judged.append(c)
        by_id[c.card_id] = Decision(c.card_id, usage, negative, Action.KEEP, "within thresholds")

    live = list(cards)
    spared: set[str] = set()  # kept for a cell: not sent to review either (that empties the cell too)
    out = Outcome(considered=considered)

    def remove(c: CardMonth, action: Action, why: str) -> bool:
        usage, negative = rated[c.card_id]
        cell = orphaned_cell(c, live)
        if cell is not None:
            kept = f"{why}; kept: the only published card of {cell_name(cell)}"
            by_id[c.card_id] = Decision(c.card_id, usage, negative, Action.KEEP, kept)
            spared.add(c.card_id)
            return False
        live.remove(c)
        by_id[c.card_id] = Decision(c.card_id, usage, negative, action, why)
        return True

    for c in judged:
        usage, negative = rated[c.card_id]
        if usage < policy.retire_max_usage and negative > policy.retire_min_negative:
            why = (
                f"usage {pct(usage)} < {pct(policy.retire_max_usage)} and "
                f"negative {pct(negative)} > {pct(policy.retire_min_negative)}"
            )
            if remove(c, Action.RETIRE, why):
                out.retired.append(c.card_id)

    # The most criticised of the cards still judged and kept: most negative, then most negative feedbacks.
    def criticism(c: CardMonth) -> tuple[float, float, str]:
        negative = rated[c.card_id][1]
        return (-negative, -negative * c.feedback, c.card_id)

    kept = (c for c in judged if by_id[c.card_id].action is Action.KEEP and c.card_id not in spared)
    candidates = sorted((c for c in kept if rated[c.card_id][1] > 0), key=criticism)
    for c in candidates:
        if len(out.returned) >= policy.return_count:
            break
        negative = rated[c.card_id][1]
        why = f"among the {policy.return_count} most criticised: negative {pct(negative)} of {c.feedback} feedbacks"
        if remove(c, Action.RETURN_TO_REVIEW, why):
            out.returned.append(c.card_id)

    out.decisions = [by_id[c.card_id] for c in order]
    return out


def spare(outcome: Outcome, excluded: Iterable[str], by: str) -> Outcome:
    """The outcome with the admin's exclusions kept as they are (ApplyIterationReport.excluded_card_ids)."""
    skip = set(excluded)
    decisions = [
        replace(d, action=Action.KEEP, reason=f"{d.reason}; spared by {by}")
        if d.card_id in skip and d.action in (Action.RETIRE, Action.RETURN_TO_REVIEW)
        else d
        for d in outcome.decisions
    ]
    return Outcome(
        decisions,
        [c for c in outcome.retired if c not in skip],
        [c for c in outcome.returned if c not in skip],
        outcome.considered,
    )


def month_bounds(year: int, month: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(year, month) of the month and of the next one: the window is [first day, next first day)."""
    return (year, month), (year + month // 12, month % 12 + 1)


def previous_month(year: int, month: int) -> tuple[int, int]:
    return (year, month - 1) if month > 1 else (year - 1, 12)
