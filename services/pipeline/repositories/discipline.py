"""The SQL of update discipline and dwell: overdue deals, unflagged stays, the team's own p90 in a stage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Float, and_, exists, func, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from kit.resources import UnitOfWork
from services.pipeline.store import DealChangeRow, DealRow
from services.pipeline.store_discipline import DwellFlagRow

OPEN = "OPEN"


class seconds_between(FunctionElement[float]):
    """Seconds from the first timestamp to the second, in SQL on either database."""

    type = Float()
    inherit_cache = True


@compiles(seconds_between)
def _seconds_pg(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = list(element.clauses)
    return f"EXTRACT(EPOCH FROM ({compiler.process(b, **kw)} - {compiler.process(a, **kw)}))"


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = list(element.clauses)
    return f"((julianday({compiler.process(b, **kw)}) - julianday({compiler.process(a, **kw)})) * 86400.0)"


def stays(tenant: str) -> Any:
    """Finished stays in a stage, from the change history: (deal, stage, entered, left, seconds, exit).

    A stay starts at a `stage` change and ends at the deal's next stage change or its
    win / loss; `exit` is the next stage id, or WON / LOST.
    """
    c = DealChangeRow
    events = (
        select(
            c.deal_id,
            c.field,
            c.new_value,
            c.changed_at,
            func.lead(c.changed_at).over(partition_by=c.deal_id, order_by=c.change_id).label("left_at"),
            func.lead(c.new_value).over(partition_by=c.deal_id, order_by=c.change_id).label("exit"),
        )
        .where(
            c.tenant_id == tenant,
            or_(c.field == "stage", and_(c.field == "status", c.new_value.in_(("WON", "LOST")))),
        )
        .subquery("stage_events")
    )
    return (
        select(
            events.c.deal_id,
            DealRow.org_path,
            events.c.new_value.label("stage_id"),
            events.c.changed_at.label("entered_at"),
            events.c.left_at,
            seconds_between(events.c.changed_at, events.c.left_at).label("seconds"),
            events.c.exit,
        )
        .join(DealRow, and_(DealRow.tenant_id == tenant, DealRow.deal_id == events.c.deal_id))
        .where(events.c.field == "stage", events.c.left_at.is_not(None))
        .subquery("stays")
    )


@dataclass(frozen=True)
class Waiting:
    """Open deals of one team and stage not yet flagged for their current stay, earliest entry first."""

    org_path: str
    stage_id: str
    first_entered_at: datetime


class DisciplineRecords:
    def __init__(self, uow: UnitOfWork) -> None:
        self.session = uow.session
        self.tenant = uow.tenant

    async def overdue(self, cutoff: datetime, limit: int, after: str = "") -> list[DealRow]:
        """Open, unfrozen deals last updated at or before `cutoff`, by id after `after` (locked for the freeze)."""
        stmt = (
            select(DealRow)
            .where(
                DealRow.status == OPEN,
                DealRow.frozen.is_(False),
                DealRow.last_confirm_at <= cutoff,
                DealRow.deal_id > after,
            )
            .order_by(DealRow.deal_id)
            .limit(limit)
            .with_for_update()
        )
        return list(await self.session.scalars(stmt))

    def _unflagged(self) -> Any:
        f = DwellFlagRow
        return ~exists().where(
            f.tenant_id == DealRow.tenant_id,
            f.deal_id == DealRow.deal_id,
            f.stage_id == DealRow.stage_id,
            f.stage_entered_at == DealRow.stage_entered_at,
        )

    async def waiting(self, stage_ids: Sequence[str]) -> list[Waiting]:
        """Per team and stage (of those with a limit), the earliest entry among unflagged open deals."""
        if not stage_ids:
            return []
        stmt = (
            select(DealRow.org_path, DealRow.stage_id, func.min(DealRow.stage_entered_at))
            .where(DealRow.status == OPEN, DealRow.stage_id.in_(list(stage_ids)), self._unflagged())
            .group_by(DealRow.org_path, DealRow.stage_id)
        )
        return [Waiting(org, stage, first) for org, stage, first in (await self.session.execute(stmt)).all()]

    async def entered_before(
        self, org_path: str, stage_id: str, cutoff: datetime, limit: int
    ) -> list[DealRow]:
        """Unflagged open deals of the team in the stage that entered it at or before `cutoff`."""
        stmt = (
            select(DealRow)
            .where(
                DealRow.status == OPEN,
                DealRow.org_path == org_path,
                DealRow.stage_id == stage_id,
                DealRow.stage_entered_at <= cutoff,
                self._unflagged(),
            )
            .order_by(DealRow.stage_entered_at, DealRow.deal_id)
            .limit(limit)
        )
        return list(await self.session.scalars(stmt))

    async def flagged(self, deal_id: str, stage_id: str, entered: datetime) -> DwellFlagRow | None:
        stmt = select(DwellFlagRow).where(
            DwellFlagRow.deal_id == deal_id,
            DwellFlagRow.stage_id == stage_id,
            DwellFlagRow.stage_entered_at == entered,
        )
        return await self.session.scalar(stmt)  # type: ignore[no-any-return]

    async def flag(self, row: DwellFlagRow) -> None:
        self.session.add(row)
        await self.session.flush()

    async def team_p90(self, min_sample: int, percent: int) -> dict[tuple[str, str], int]:
        """The nearest-rank p90 of finished stays per (team, stage), where a team has `min_sample` of them."""
        s = stays(self.tenant)
        ranked = select(
            s.c.org_path,
            s.c.stage_id,
            s.c.seconds,
            func.row_number()
            .over(partition_by=(s.c.org_path, s.c.stage_id), order_by=s.c.seconds)
            .label("rn"),
            func.count().over(partition_by=(s.c.org_path, s.c.stage_id)).label("n"),
        ).subquery("ranked")
        # The nearest rank rn = ceil(percent * n / 100), in integers: no float rounding at the edge.
        stmt = select(ranked.c.org_path, ranked.c.stage_id, ranked.c.seconds).where(
            ranked.c.n >= min_sample,
            ranked.c.rn * 100 >= ranked.c.n * percent,
            (ranked.c.rn - 1) * 100 < ranked.c.n * percent,
        )
        rows = (await self.session.execute(stmt)).all()
        return {(org, stage): max(1, round(float(sec))) for org, stage, sec in rows}


__all__ = ["DisciplineRecords", "Waiting", "seconds_between", "stays"]
