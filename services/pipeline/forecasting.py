"""The live weighted forecast of a period for a scope: SQL sums grouped at the org level asked for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement

from kit.auth import Principal
from kit.errors import InvalidArgument, PermissionDenied
from kit.resources import UnitOfWork
from services.pipeline import access, pipeline_settings, target_cascade
from services.pipeline.domain import forecast as f
from services.pipeline.repositories.deals import in_org, visible_to
from services.pipeline.repositories.forecast import ForecastSums
from services.pipeline.store import DealRow


@dataclass(frozen=True)
class ForecastQuery:
    granularity: f.Granularity
    day: date
    org_path: str = ""
    user_ids: tuple[str, ...] = ()
    level: f.Level | None = None


@dataclass(frozen=True)
class Computed:
    start: date
    end: date
    level: f.Level
    totals: f.Totals
    rows: list[f.Row]
    currency: str


def check_scope(who: Principal, org_path: str) -> None:
    """A scope must be within what the caller sees: an org above or beside theirs is refused."""
    if not org_path or access.sees_all(who):
        return
    mine = f.segments(who.org)
    theirs = f.segments(org_path)
    if mine and theirs[: len(mine)] == mine:
        return
    if theirs and mine[: len(theirs)] == theirs and not who.has_role(*access.MANAGERS):
        return  # a rep naming their own team or region: their own deals are what they see of it
    raise PermissionDenied(f"the scope {org_path!r} is outside your org", reason="SCOPE_OUT_OF_ORG")


async def compute(uow: UnitOfWork, who: Principal, q: ForecastQuery) -> Computed:
    org = q.org_path.strip("/")
    check_scope(who, org)
    level = q.level or f.level_below(org, bool(q.user_ids))
    if level is f.Level.COMPANY and org:
        raise InvalidArgument.field("group_by", "a scoped forecast is grouped below the company")
    start, end = f.period_bounds(q.granularity, q.day)
    where: list[ColumnElement[bool]] = [visible_to(who)]
    if org:
        where.append(in_org(DealRow.org_path, org))
    if q.user_ids:
        where.append(DealRow.owner_user_id.in_(q.user_ids))
    sums = await ForecastSums(uow).at_level(where, start, end, level)
    totals, rows = f.fold(sums, level)
    await target_cascade.beside_forecast(uow, who, q.granularity, start, org, q.user_ids, level, totals, rows)
    return Computed(start, end, level, totals, rows, await pipeline_settings.base_currency(uow))
