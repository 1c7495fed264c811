"""Reading targets against the pipeline: the cascade of a period (attrition, won, weighted) and the
targets beside a forecast (for coverage). Deals are summed in SQL; targets of one period are few
(one per unit and rep), so they are read as rows. Never commit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement

from kit.auth import Principal
from kit.errors import NotFound
from kit.resources import UnitOfWork
from services.pipeline import access
from services.pipeline.domain import forecast as f
from services.pipeline.domain import targets as t
from services.pipeline.repositories.deals import in_org, visible_to
from services.pipeline.repositories.forecast import ForecastSums
from services.pipeline.repositories.targets import Targets
from services.pipeline.store import DealRow
from services.pipeline.store_targets import TargetRow
from services.pipeline.targets import Period, can_view


@dataclass(frozen=True)
class Cascade:
    period: Period
    tree: t.CascadeNode
    levels: list[t.LevelSum]
    rows: dict[str, TargetRow]  # by target id, for the documents
    names: dict[str, str]  # display names by user id (reps)
    currency: str


def node_of(row: TargetRow) -> t.Node:
    return t.Node(
        row.target_id,
        row.parent_target_id,
        row.level,
        row.org_path,
        row.user_id,
        row.committed_minor,
        row.challenge_minor,
    )


async def _root(repo: Targets, who: Principal, period: Period, org: str) -> TargetRow | None:
    """The node asked for; without a path: the company (admins), the caller's unit (managers), own target."""
    g = period.granularity.value
    if not org and not access.sees_all(who):
        if not who.has_role(*access.MANAGERS) or not who.org.strip("/"):
            return await repo.by_unit(g, period.start, t.unit_key("REP", "", who.user_id))
        org = who.org.strip("/")
    return await repo.by_unit(g, period.start, t.unit_key("COMPANY", org, ""))


async def cascade(uow: UnitOfWork, who: Principal, period: Period, org_path: str, depth: int) -> Cascade:
    """The caller's scope is checked by the API (forecasting.check_scope) before this runs."""
    org = org_path.strip("/")
    repo = Targets(uow)
    root = await _root(repo, who, period, org)
    if root is None or not can_view(who, root):
        raise NotFound(repo.resource, f"{period.granularity.value} {period.start} {org or '(your target)'}")
    rows = {r.target_id: r for r in await repo.in_period(root.granularity, root.period_start, root.org_path)}
    nodes = [node_of(r) for r in rows.values() if can_view(who, r)]
    where: list[ColumnElement[bool]] = [visible_to(who)]
    if root.level == "REP":
        where.append(DealRow.owner_user_id == root.user_id)
    elif root.org_path:
        where.append(in_org(DealRow.org_path, root.org_path))
    sums = await ForecastSums(uow).by_owner(where, period.start, period.end)
    tree, levels = t.build_cascade(node_of(root), nodes, sums, depth)
    reps = [n.user_id for n in nodes if n.level == "REP"]
    names = {p.user_id: p.display_name for p in await repo.profiles_of(reps)} if reps else {}
    return Cascade(period, tree, levels, rows, names, root.currency)


async def beside_forecast(
    uow: UnitOfWork,
    who: Principal,
    granularity: f.Granularity,
    start: date,
    org: str,
    user_ids: tuple[str, ...],
    level: f.Level,
    totals: f.Totals,
    rows: list[f.Row],
) -> None:
    """Put the committed and challenge targets of the scope and of each row beside the forecast.

    The scope's target: the listed reps' (summed, when each has one), the rep's own for a rep,
    else the unit's (the caller's unit when no path is named). Targets the caller may not see
    are left out, so a row holding only part of a unit never shows the unit's target.
    """
    if granularity not in t.PERIODS:
        return  # targets are set per month, quarter or year
    repo = Targets(uow)
    g = granularity.value
    reps: tuple[str, ...] = user_ids
    unit: str | None = None
    if not reps:
        if access.sees_all(who):
            unit = org
        elif who.has_role(*access.MANAGERS) and who.org.strip("/"):
            unit = org or who.org.strip("/")
        else:
            reps = (who.user_id,)  # a rep's forecast is their own deals, whatever unit they name
    row_reps = [r.key for r in rows] if level is f.Level.REP else []
    row_units = [r.key for r in rows] if level is not f.Level.REP else []
    found_units = {
        x.org_path: x
        for x in await repo.units_at(g, start, [*row_units, *([unit] if unit is not None else [])])
    }
    found_reps = (
        {x.user_id: x for x in await repo.reps(g, start, [*row_reps, *reps])} if row_reps or reps else {}
    )
    seen = {k: v for k, v in found_units.items() if can_view(who, v)}
    seen_reps = {k: v for k, v in found_reps.items() if can_view(who, v)}
    if reps:
        mine = [seen_reps.get(u) for u in reps]
        if all(x is not None for x in mine):
            _set(totals, [x for x in mine if x is not None])
    elif unit is not None and unit in seen:
        _set(totals, [seen[unit]])
    for r in rows:
        target = (seen_reps if level is f.Level.REP else seen).get(r.key)
        if target is not None:
            _set(r.totals, [target])


def _set(totals: f.Totals, targets: list[TargetRow]) -> None:
    totals.target = sum(x.committed_minor for x in targets)
    totals.challenge = sum(
        x.committed_minor if x.challenge_minor is None else x.challenge_minor for x in targets
    )


__all__ = ["Cascade", "beside_forecast", "cascade", "node_of"]
