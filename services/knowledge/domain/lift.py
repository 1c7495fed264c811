"""Win-rate lift of a card: the arithmetic, pure (the counts come from repositories/outcomes.py).

A card's lift in one (industry, stage) cell compares closed deals of that industry
that reached that stage: those where the card was used against the rest (the
comparable deals where it was not). Each win rate gets a 95 % Wilson score
interval; the difference gets Newcombe's hybrid score interval (method 10 of
Newcombe 1998), built from the two Wilson intervals. Below `min_sample` closed
deals on either side there is no figure: `enough_data` is False and callers say
"not enough data".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054  # two-sided 95 %
DEFAULT_MIN_SAMPLE = 10


@dataclass(frozen=True)
class Interval:
    rate: float
    low: float
    high: float


def wilson(successes: int, n: int, z: float = Z95) -> Interval:
    """Wilson score interval of successes / n; n = 0 gives rate 0 on [0, 1]."""
    if n <= 0:
        return Interval(0.0, 0.0, 1.0)
    if not 0 <= successes <= n:
        raise ValueError(f"successes {successes} out of 0..{n}")
    p = successes / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return Interval(p, max(0.0, centre - half), min(1.0, centre + half))


def difference(a: Interval, b: Interval) -> Interval:
    """Newcombe's interval for rate(a) - rate(b) from the two Wilson intervals."""
    d = a.rate - b.rate
    low = d - math.sqrt((a.rate - a.low) ** 2 + (b.high - b.rate) ** 2)
    high = d + math.sqrt((a.high - a.rate) ** 2 + (b.rate - b.low) ** 2)
    return Interval(d, max(-1.0, low), min(1.0, high))


@dataclass(frozen=True)
class CellCounts:
    """Closed deals of one (industry, stage) cell, and those of them where one card was used."""

    cell_closed: int
    cell_won: int
    used_closed: int
    used_won: int

    @property
    def comparable_closed(self) -> int:
        return max(0, self.cell_closed - self.used_closed)

    @property
    def comparable_won(self) -> int:
        return max(0, min(self.cell_won - self.used_won, self.comparable_closed))


@dataclass(frozen=True)
class Lift:
    used_deals: int
    used_won: int
    comparable_deals: int
    comparable_won: int
    min_sample: int
    enough_data: bool
    used: Interval | None = None
    comparable: Interval | None = None
    lift: Interval | None = None  # used - comparable, as a fraction (x100 for percentage points)

    @property
    def lift_pp(self) -> float | None:
        return None if self.lift is None else self.lift.rate * 100


def lift_of(counts: CellCounts, min_sample: int = DEFAULT_MIN_SAMPLE) -> Lift:
    """The card's lift in the cell, or "not enough data" below `min_sample` deals on either side."""
    min_sample = max(2, min_sample)
    used_n, used_w = counts.used_closed, min(counts.used_won, counts.used_closed)
    comp_n, comp_w = counts.comparable_closed, counts.comparable_won
    enough = used_n >= min_sample and comp_n >= min_sample
    if not enough:
        return Lift(used_n, used_w, comp_n, comp_w, min_sample, False)
    used, comparable = wilson(used_w, used_n), wilson(comp_w, comp_n)
    return Lift(
        used_n, used_w, comp_n, comp_w, min_sample, True, used, comparable, difference(used, comparable)
    )
