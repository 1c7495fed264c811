"""Forecast arithmetic: sales periods, and folding SQL aggregates into org-tree rows.

The database sums deals (per owner, org path, status, frozen flag and category);
this module only folds those few aggregate rows into the requested level, so a
forecast never loads deals. Weighted = sum(amount x probability) of open deals
closing in the period; a frozen COMMIT counts as BEST_CASE; lost deals are out;
OMITTED deals are shown in their category but not in the weighted figure.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from enum import Enum


class Granularity(Enum):
    WEEK = "WEEK"
    MONTH = "MONTH"
    QUARTER = "QUARTER"
    YEAR = "YEAR"


def period_bounds(granularity: Granularity, day: date) -> tuple[date, date]:
    """First and last day (inclusive) of the period holding `day` (ISO weeks start on Monday)."""
    if granularity is Granularity.WEEK:
        start = date.fromordinal(day.toordinal() - day.weekday())
        return start, date.fromordinal(start.toordinal() + 6)
    if granularity is Granularity.MONTH:
        return day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1])
    if granularity is Granularity.QUARTER:
        first = 3 * ((day.month - 1) // 3) + 1
        last = first + 2
        return date(day.year, first, 1), date(day.year, last, calendar.monthrange(day.year, last)[1])
    return date(day.year, 1, 1), date(day.year, 12, 31)


class Level(Enum):
    COMPANY = 0
    REGION = 1
    CITY = 2
    TEAM = 3
    REP = 4


def segments(path: str) -> list[str]:
    return [p for p in path.strip("/").split("/") if p]


def level_below(scope_org: str, users: bool) -> Level:
    """Default rows: one level below the scope (company -> regions, ..., team -> reps)."""
    if users:
        return Level.REP
    depth = len(segments(scope_org))
    return Level(min(depth + 1, Level.REP.value))


def group_key(level: Level, owner: str, org_path: str) -> tuple[str, str]:
    """(key, org path of the group): the owner for reps, else the org path cut at the level."""
    if level is Level.REP:
        return owner, org_path
    if level is Level.COMPANY:
        return "", ""
    cut = "/".join(segments(org_path)[: level.value])
    return cut, cut


@dataclass(frozen=True)
class Aggregate:
    """One row of the SQL roll-up."""

    owner: str
    org_path: str
    status: str  # OPEN or WON
    frozen: bool
    category: str  # the rep's category (COMMIT, BEST_CASE, ...)
    amount: int
    weighted: int
    count: int


@dataclass
class CategorySum:
    amount: int = 0
    weighted: int = 0
    count: int = 0


@dataclass
class Totals:
    weighted: int = 0
    won_amount: int = 0
    won_count: int = 0
    open_count: int = 0
    frozen_amount: int = 0
    frozen_count: int = 0
    categories: dict[str, CategorySum] = field(default_factory=dict)
    open_amount: int = 0  # open pipeline: amounts of open deals not OMITTED (coverage's numerator)
    # Targets beside the forecast (target_cascade.beside_forecast): committed and challenge, None
    # without one (snapshots do not look them up).
    target: int | None = None
    challenge: int | None = None

    def add(self, a: Aggregate) -> None:
        category = effective_category(a.status, a.frozen, a.category)
        c = self.categories.get(category)
        if c is None:  # not setdefault: that builds a CategorySum per call
            c = self.categories[category] = CategorySum()
        c.amount, c.weighted, c.count = c.amount + a.amount, c.weighted + a.weighted, c.count + a.count
        if a.status == "WON":
            self.won_amount += a.amount
            self.won_count += a.count
            return
        if category == "OMITTED":
            return
        self.weighted += a.weighted
        self.open_count += a.count
        self.open_amount += a.amount
        if a.frozen:
            self.frozen_amount += a.amount
            self.frozen_count += a.count

    def merge(self, other: Totals) -> None:
        """Add another group's sums (its targets aside: those are set beside the forecast)."""
        for name, o in other.categories.items():
            c = self.categories.setdefault(name, CategorySum())
            c.amount, c.weighted, c.count = c.amount + o.amount, c.weighted + o.weighted, c.count + o.count
        self.weighted += other.weighted
        self.won_amount += other.won_amount
        self.won_count += other.won_count
        self.open_count += other.open_count
        self.open_amount += other.open_amount
        self.frozen_amount += other.frozen_amount
        self.frozen_count += other.frozen_count


def effective_category(status: str, frozen: bool, category: str) -> str:
    if status == "WON":
        return "CLOSED"
    if frozen and category == "COMMIT":
        return "BEST_CASE"
    return category


@dataclass
class Row:
    key: str
    org_path: str
    totals: Totals


def fold(aggregates: Iterable[Aggregate], level: Level) -> tuple[Totals, list[Row]]:
    """Scope totals and one row per group, largest weighted first (then by key).

    Each aggregate is added to its group only; the scope's totals are the groups' merged (a rep
    roll-up folds ~5 aggregates per rep: one add per aggregate and one merge per rep, not two adds)."""
    rows: dict[str, Row] = {}
    get = rows.get
    for a in aggregates:
        key, org = group_key(level, a.owner, a.org_path)
        row = get(key)
        if row is None:
            row = rows[key] = Row(key, org, Totals())
        elif org > row.org_path:  # a rep's deals under several paths: the greatest, in any row order
            row.org_path = org
        row.totals.add(a)
    total = Totals()
    for row in rows.values():
        total.merge(row.totals)
    ordered = sorted(rows.values(), key=lambda r: (-r.totals.weighted, r.key))
    return total, ordered


@dataclass(frozen=True)
class Flow:
    """Deals of one kind of flow for one owner and org path (an SQL aggregate)."""

    kind: str
    owner: str
    org_path: str
    count: int
    amount: int


FlowTotals = dict[str, tuple[int, int]]  # kind -> (deal count, amount)


def _add(into: FlowTotals, f: Flow) -> None:
    n, a = into.get(f.kind, (0, 0))
    into[f.kind] = (n + f.count, a + f.amount)


def fold_flows(flows: Iterable[Flow], level: Level) -> tuple[FlowTotals, list[tuple[str, str, FlowTotals]]]:
    """Scope totals per kind, and (key, org path, totals per kind) per group, by key."""
    total: FlowTotals = {}
    rows: dict[str, tuple[str, FlowTotals]] = {}
    for f in flows:
        _add(total, f)
        key, org = group_key(level, f.owner, f.org_path)
        _add(rows.setdefault(key, (org, {}))[1], f)
    return total, [(k, org, t) for k, (org, t) in sorted(rows.items())]


__all__ = [
    "Aggregate",
    "Flow",
    "Granularity",
    "Level",
    "Row",
    "Totals",
    "effective_category",
    "fold",
    "fold_flows",
    "group_key",
    "level_below",
    "period_bounds",
    "segments",
]
