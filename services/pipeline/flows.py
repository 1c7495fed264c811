"""What changed between two snapshots of a period, per kind of flow, folded by org level. Never commits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement

from kit.auth import Principal
from kit.errors import InvalidArgument
from kit.resources import UnitOfWork
from services.pipeline import pipeline_settings
from services.pipeline.domain import forecast as f
from services.pipeline.forecasting import check_scope
from services.pipeline.repositories.deals import in_org, visible_where
from services.pipeline.repositories.snapshots import SnapshotFlows, Snapshots


@dataclass(frozen=True)
class Compared:
    level: f.Level
    totals: f.FlowTotals
    rows: list[tuple[str, str, f.FlowTotals]]
    currency: str


async def compare(
    uow: UnitOfWork,
    who: Principal,
    from_id: str,
    to_id: str,
    org_path: str,
    user_ids: tuple[str, ...],
    level: f.Level | None,
) -> Compared:
    org = org_path.strip("/")
    check_scope(who, org)
    repo = Snapshots(uow)
    earlier, later = await repo.get(from_id), await repo.get(to_id)
    if (earlier.granularity, earlier.period_start) != (later.granularity, later.period_start):
        raise InvalidArgument.field("to_snapshot_id", "a snapshot of the same period as from_snapshot_id")
    if later.snapshot_id <= earlier.snapshot_id:
        raise InvalidArgument.field("to_snapshot_id", "a snapshot taken after from_snapshot_id")

    def where(owner: Any, org_col: Any) -> list[ColumnElement[bool]]:
        clauses = [visible_where(who, owner, org_col)]
        if org:
            clauses.append(in_org(org_col, org))
        if user_ids:
            clauses.append(owner.in_(user_ids))
        return clauses

    sums = await SnapshotFlows(uow).between(earlier, later, where)
    chosen = level or f.level_below(org, bool(user_ids))
    flows = [f.Flow(s.kind, s.owner, s.org_path, s.count, s.amount) for s in sums]
    totals, rows = f.fold_flows(flows, chosen)
    return Compared(chosen, totals, rows, await pipeline_settings.base_currency(uow))
