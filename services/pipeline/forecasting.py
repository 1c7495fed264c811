"""The live weighted forecast of a period for a scope: SQL sums grouped at the org level asked for."""

from __future__ import annotations

from collections.abc import Mapping
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
class Covered:
    """What a report's total covers: the company, an org unit (key = its path) or one rep's own deals
    (key = the user id). Named from what the viewer actually sees, never "company" for a team's figures.
    Shared by the forecast, accuracy and won revenue reports."""

    level: f.Level
    key: str

    def name(self, names: Mapping[str, str]) -> str:
        """The total's display name (`names`: the reps' display names by user id)."""
        return "company" if self.level is f.Level.COMPANY else names.get(self.key, self.key)

    def level_below(self, users: bool) -> f.Level:
        """Default rows: reps below a team or a rep, else one level below the unit (as f.level_below)."""
        if self.level in (f.Level.TEAM, f.Level.REP):
            return f.Level.REP
        return f.level_below(self.key, users)


@dataclass(frozen=True)
class Computed:
    start: date
    end: date
    level: f.Level
    totals: f.Totals
    rows: list[f.Row]
    currency: str
    covers: Covered


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


def scope_of(who: Principal, org: str, user_ids: tuple[str, ...] = ()) -> Covered:
    """What the figures `who` gets for the asked org path (`org`, "" = all they may see) cover."""
    manager_org = who.org.strip("/") if who.has_role(*access.MANAGERS) else ""
    if not access.sees_all(who) and not manager_org:
        return Covered(f.Level.REP, who.user_id)  # a rep (or a manager without a unit) sees own deals only
    if len(user_ids) == 1:
        return Covered(f.Level.REP, user_ids[0])  # that rep's (within what the viewer sees)
    org = org or ("" if access.sees_all(who) else manager_org)
    if not org:
        return Covered(f.Level.COMPANY, "")
    if org == manager_org and who.has_role("supervisor"):
        return Covered(f.Level.TEAM, org)  # a supervisor's unit is a team, however deep its path
    return Covered(f.Level(min(len(f.segments(org)), f.Level.TEAM.value)), org)


async def compute(uow: UnitOfWork, who: Principal, q: ForecastQuery) -> Computed:
    org = q.org_path.strip("/")
    check_scope(who, org)
    covers = scope_of(who, org, q.user_ids)
    level = q.level or covers.level_below(bool(q.user_ids))
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
    return Computed(start, end, level, totals, rows, await pipeline_settings.base_currency(uow), covers)
