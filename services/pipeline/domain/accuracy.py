"""Locked calls, accuracy and bias: pure arithmetic over a few aggregate rows per subject.

The database sums deals per owner (won in the period, locked commit, Brier
terms); this module folds those rows into org levels and computes the ratios.

- Lock points of a period: after week 1, mid-period, two weeks before the end,
  the last week. Each is taken once, on the first weekly run on or after it.
- WAPE = sum |A - F| / sum |A| over the reps below a group (a group's error is
  not the error of its total: two reps' opposite misses do not cancel).
- APE of one subject = |F - A| / A (n/a when A = 0); attainment = A / F.
- Commit conversion = locked open COMMIT that closed won / locked open COMMIT.
- Brier = mean (p - outcome)^2 over deals open at the lock since won (1) or lost (0).
- Adjustment value = WAPE of the reps' own calls - WAPE of the adjusted calls.
- Bias = sum (F - A) / sum A over the periods; tracking signal = sum (F - A) / MAD.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import Enum

from services.pipeline.domain.forecast import Level, group_key


class LockPoint(Enum):
    WEEK_1 = "WEEK_1"
    MID_PERIOD = "MID_PERIOD"
    TWO_WEEKS_LEFT = "TWO_WEEKS_LEFT"
    LAST_WEEK = "LAST_WEEK"


def lock_dates(start: date, end: date) -> dict[LockPoint, date]:
    """When each lock point of the period [start, end] falls (tenant calendar)."""
    days = (end - start).days + 1
    return {
        LockPoint.WEEK_1: start + timedelta(days=7),
        LockPoint.MID_PERIOD: start + timedelta(days=days // 2),
        LockPoint.TWO_WEEKS_LEFT: end - timedelta(days=13),
        LockPoint.LAST_WEEK: end - timedelta(days=6),
    }


def due_lock_points(start: date, end: date, today: date) -> list[LockPoint]:
    """Lock points reached by `today` while the period runs (the caller skips those already taken)."""
    if not start <= today <= end:
        return []
    return [p for p, d in lock_dates(start, end).items() if d <= today]


@dataclass(frozen=True)
class Subject:
    """One rep at one lock, with the outcome: SQL aggregates, nothing per deal."""

    key: str
    org_path: str
    actual: int
    rep_call: int | None  # the rep's own locked call
    adjusted_call: int | None  # a manager's locked adjustment of it
    system_weighted: int
    system_commit: int
    locked_commit: int = 0
    won_from_commit: int = 0
    brier_sum: float = 0.0
    brier_n: int = 0

    def forecast(self, weighted: bool) -> int:
        """The figure measured: the system's weighted figure, or the call in force (adjusted first).

        A rep without a call is measured on the system commit at the lock (and counted as missing).
        """
        if weighted:
            return self.system_weighted
        if self.adjusted_call is not None:
            return self.adjusted_call
        return self.rep_call if self.rep_call is not None else self.system_commit


@dataclass
class Score:
    forecast: int = 0
    actual: int = 0
    abs_error: int = 0  # sum over reps of |A - F|
    rep_call: int = 0
    rep_abs_error: int = 0  # the same with the reps' own calls
    adjusted: int = 0
    missing: int = 0
    locked_commit: int = 0
    won_from_commit: int = 0
    brier_sum: float = 0.0
    brier_n: int = 0

    def add(self, s: Subject, weighted: bool) -> None:
        f = s.forecast(weighted)
        # The rep's own figure, before any manager's adjustment.
        own = f if weighted else (s.rep_call if s.rep_call is not None else s.system_commit)
        self.forecast += f
        self.actual += s.actual
        self.abs_error += abs(s.actual - f)
        self.rep_call += own
        self.rep_abs_error += abs(s.actual - own)
        self.adjusted += int(s.adjusted_call is not None and not weighted)
        self.missing += int(s.rep_call is None and s.adjusted_call is None and not weighted)
        self.locked_commit += s.locked_commit
        self.won_from_commit += s.won_from_commit
        self.brier_sum += s.brier_sum
        self.brier_n += s.brier_n

    @property
    def wape(self) -> float | None:
        return self.abs_error / self.actual if self.actual else None

    @property
    def ape(self) -> float | None:
        return abs(self.forecast - self.actual) / self.actual if self.actual else None

    @property
    def bias(self) -> float | None:
        return (self.forecast - self.actual) / self.actual if self.actual else None

    @property
    def attainment(self) -> float | None:
        return self.actual / self.forecast if self.forecast else None

    @property
    def commit_conversion(self) -> float | None:
        return self.won_from_commit / self.locked_commit if self.locked_commit else None

    @property
    def brier(self) -> float | None:
        return self.brier_sum / self.brier_n if self.brier_n else None

    @property
    def adjustment_value(self) -> float | None:
        """WAPE of the reps' calls minus WAPE of the adjusted calls (> 0: the managers helped)."""
        if not self.adjusted or not self.actual:
            return None
        return (self.rep_abs_error - self.abs_error) / self.actual


@dataclass
class ScoreRow:
    key: str
    org_path: str
    score: Score = field(default_factory=Score)


def fold(
    subjects: Iterable[Subject], level: Level, weighted: bool, unit_calls: dict[str, int] | None = None
) -> tuple[Score, list[ScoreRow]]:
    """Scope score and one row per group (by key). A unit's own locked call, when there is one,
    is that row's forecast (its WAPE stays the reps' below it)."""
    total = Score()
    rows: dict[str, ScoreRow] = {}
    for s in subjects:
        total.add(s, weighted)
        key, org = group_key(level, s.key, s.org_path)
        rows.setdefault(key, ScoreRow(key, org)).score.add(s, weighted)
    if unit_calls and not weighted and level is not Level.REP:
        for key, row in rows.items():
            if key in unit_calls:
                row.score.forecast = unit_calls[key]
    return total, [rows[k] for k in sorted(rows)]


class Tendency(Enum):
    BALANCED = "BALANCED"
    OVER_FORECASTING = "OVER_FORECASTING"
    UNDER_FORECASTING = "UNDER_FORECASTING"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


FLAG_PERIODS = 4  # the rule: |bias| > threshold across 4 periods flags a rep for coaching


@dataclass(frozen=True)
class Bias:
    ratio: float
    tracking_signal: float
    tendency: Tendency
    coaching_flag: bool


def bias(points: Sequence[tuple[int, int]], threshold: float, min_periods: int) -> Bias:
    """`points` = (forecast, actual) per closed period. Periods without any actual still count in the
    sums (an over-call against nothing is over-calling)."""
    n = len(points)
    errors = [f - a for f, a in points]
    actual = sum(a for _, a in points)
    ratio = sum(errors) / actual if actual else 0.0
    mad = sum(abs(e) for e in errors) / n if n else 0.0
    signal = sum(errors) / mad if mad else 0.0
    if n < max(min_periods, 1) or not actual:
        tendency = Tendency.INSUFFICIENT_DATA
    elif ratio > threshold:
        tendency = Tendency.OVER_FORECASTING
    elif ratio < -threshold:
        tendency = Tendency.UNDER_FORECASTING
    else:
        tendency = Tendency.BALANCED
    flag = n >= FLAG_PERIODS and bool(actual) and abs(ratio) > threshold
    return Bias(ratio, signal, tendency, flag)


__all__ = [
    "FLAG_PERIODS",
    "Bias",
    "LockPoint",
    "Score",
    "ScoreRow",
    "Subject",
    "Tendency",
    "bias",
    "due_lock_points",
    "fold",
    "lock_dates",
]
