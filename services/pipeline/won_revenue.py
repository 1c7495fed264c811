"""Won revenue over time (use case): per rep or org unit and period, the amount won, the deals won
and their average size, within what the caller sees (the same scope rules as the forecast)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import ColumnElement

from kit.auth import Principal
from kit.errors import InvalidArgument
from kit.resources import UnitOfWork
from services.pipeline import pipeline_settings
from services.pipeline.domain import forecast as f
from services.pipeline.forecasting import Covered, check_scope, scope_of
from services.pipeline.repositories.deals import in_org, visible_to
from services.pipeline.repositories.won import WonRevenue
from services.pipeline.store import DealRow

MAX_PERIODS = 24
MAX_ROWS = 500  # subjects per answer: a dashboard's rows, never a page of a whole tenant's reps


@dataclass
class Series:
    key: str
    amounts: list[int]
    counts: list[int]

    @property
    def total(self) -> int:
        return sum(self.amounts)


@dataclass
class Won:
    level: f.Level
    periods: list[tuple[date, date]]
    total: Series
    scope: Covered
    rows: list[Series] = field(default_factory=list)
    currency: str = ""


def periods_ending(granularity: f.Granularity, today: date, count: int) -> list[tuple[date, date]]:
    """`count` consecutive periods of `granularity`, the last one holding `today`, oldest first."""
    out = [f.period_bounds(granularity, today)]
    while len(out) < count:
        out.insert(0, f.period_bounds(granularity, out[0][0] - timedelta(days=1)))
    return out


async def won_revenue(
    uow: UnitOfWork,
    who: Principal,
    granularity: f.Granularity,
    today: date,
    count: int,
    org_path: str = "",
    user_ids: tuple[str, ...] = (),
    level: f.Level | None = None,
) -> Won:
    org = org_path.strip("/")
    check_scope(who, org)
    scope = scope_of(who, org, user_ids)
    level = level or scope.level_below(bool(user_ids))
    if level is f.Level.COMPANY and org:
        raise InvalidArgument.field("group_by", "a scoped report is grouped below the company")
    if not 1 <= count <= MAX_PERIODS:
        raise InvalidArgument.field("period_count", f"1 to {MAX_PERIODS} (0 = 6)")
    periods = periods_ending(granularity, today, count)
    where: list[ColumnElement[bool]] = [visible_to(who)]
    if org:
        where.append(in_org(DealRow.org_path, org))
    if user_ids:
        where.append(DealRow.owner_user_id.in_(user_ids))
    sums = await WonRevenue(uow).by_period(where, periods, level)
    by_key: dict[str, Series] = {}
    total = Series(scope.key, [0] * count, [0] * count)
    for s in sums:
        series = by_key.setdefault(s.key, Series(s.key, [0] * count, [0] * count))
        series.amounts[s.period] += s.amount
        series.counts[s.period] += s.count
        total.amounts[s.period] += s.amount
        total.counts[s.period] += s.count
    rows = sorted(by_key.values(), key=lambda x: (-x.total, x.key))[:MAX_ROWS]
    return Won(level, periods, total, scope, rows, await pipeline_settings.base_currency(uow))


__all__ = ["MAX_PERIODS", "Series", "Won", "periods_ending", "won_revenue"]
