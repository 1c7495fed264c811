"""The coaching view's peer figures, computed in SQL: cycle times, stage dwell, conversion, percentiles.

Percentiles are picked in SQL by rank (nearest rank below: row ((n - 1) * p / 100) + 1 of the
ordered values, integer arithmetic so SQLite and PostgreSQL agree); durations are seconds
between two timestamps in the database's own arithmetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, extract, func, literal, select

from kit.resources import UnitOfWork
from services.pipeline.store import DealChangeRow, DealRow, MemberProfileRow


def seconds_between(dialect: str, later: Any, earlier: Any) -> ColumnElement[float]:
    if dialect == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0  # type: ignore[no-any-return]
    return extract("epoch", later - earlier)  # type: ignore[return-value]


@dataclass(frozen=True)
class StageFigures:
    stage_id: str
    entered: int  # peers' closed deals that entered the stage
    won: int  # of those, won
    median_dwell: float | None  # seconds, peers' won deals
    p75_dwell: float | None
    median_to_win: float | None  # seconds from entering the stage to the win


class CoachingSums:
    def __init__(self, uow: UnitOfWork) -> None:
        self.session = uow.session
        self.dialect = self.session.get_bind().dialect.name

    def _closed_by(self, peers: Sequence[str], since: datetime) -> list[ColumnElement[bool]]:
        return [
            DealRow.owner_user_id.in_(list(peers)),
            DealRow.status.in_(("WON", "LOST")),
            DealRow.closed_at >= since,
        ]

    async def _percentiles(
        self, values: Any, key: Any, percents: Sequence[int]
    ) -> dict[tuple[Any, int], float]:
        """{(key, p): value} for each group of `key` in the subquery `values` (columns key, v)."""
        ranked = select(
            key.label("k"),
            values.c.v.label("v"),
            func.row_number().over(partition_by=key, order_by=values.c.v).label("rn"),
            func.count().over(partition_by=key).label("n"),
        ).subquery()
        out: dict[tuple[Any, int], float] = {}
        for p in percents:
            stmt = select(ranked.c.k, ranked.c.v).where(ranked.c.rn == (ranked.c.n - 1) * p // 100 + 1)
            for k, v in (await self.session.execute(stmt)).all():
                out[(k, p)] = float(v)
        return out

    async def cycle(
        self, peers: Sequence[str], since: datetime
    ) -> tuple[int, int, float | None, float | None]:
        """(won, closed, median, p75 creation-to-win seconds) of the peers' deals closed since."""
        won = DealRow.status == "WON"
        counts = select(func.sum(case((won, 1), else_=0)), func.count()).where(*self._closed_by(peers, since))
        n_won, n_closed = (await self.session.execute(counts)).one()
        secs = seconds_between(self.dialect, DealRow.closed_at, DealRow.created_at)
        values = (
            select(literal(0).label("g"), secs.label("v"))
            .where(*self._closed_by(peers, since), won)
            .subquery()
        )
        got = await self._percentiles(values, values.c.g, (50, 75))
        return int(n_won or 0), int(n_closed or 0), got.get((0, 50)), got.get((0, 75))

    async def stages(self, peers: Sequence[str], since: datetime) -> list[StageFigures]:
        """Per stage: peers' closed deals that entered it, won among them, dwell and time to win."""
        c = DealChangeRow
        nxt = func.lead(c.changed_at).over(partition_by=c.deal_id, order_by=c.change_id)
        entries = (
            select(
                c.deal_id.label("deal_id"),
                c.new_value.label("stage"),
                c.changed_at.label("entered"),
                nxt.label("left_at"),
                DealRow.status.label("status"),
                DealRow.closed_at.label("closed_at"),
            )
            .join(DealRow, and_(DealRow.tenant_id == c.tenant_id, DealRow.deal_id == c.deal_id))
            .where(c.field == "stage", *self._closed_by(peers, since))
            .subquery()
        )
        e = entries
        won = e.c.status == "WON"
        counts = select(
            e.c.stage,
            func.count(func.distinct(e.c.deal_id)),
            func.count(func.distinct(case((won, e.c.deal_id)))),
        ).group_by(e.c.stage)
        figures = {s: (int(n), int(w)) for s, n, w in (await self.session.execute(counts)).all()}
        left = func.coalesce(e.c.left_at, e.c.closed_at)
        dwell = select(e.c.stage.label("stage"), seconds_between(self.dialect, left, e.c.entered).label("v"))
        dwell_q = dwell.where(won).subquery()
        to_win = select(
            e.c.stage.label("stage"), seconds_between(self.dialect, e.c.closed_at, e.c.entered).label("v")
        )
        to_win_q = to_win.where(won).subquery()
        d = await self._percentiles(dwell_q, dwell_q.c.stage, (50, 75))
        t = await self._percentiles(to_win_q, to_win_q.c.stage, (50,))
        return [
            StageFigures(s, n, w, d.get((s, 50)), d.get((s, 75)), t.get((s, 50)))
            for s, (n, w) in sorted(figures.items())
        ]

    async def open_deals(self, owner: str, start: date, end: date, limit: int = 200) -> list[DealRow]:
        """The rep's own open deals closing in the period (the view lists them; bounded)."""
        stmt = (
            select(DealRow)
            .where(
                DealRow.owner_user_id == owner,
                DealRow.status == "OPEN",
                DealRow.expected_close_date >= start,
                DealRow.expected_close_date <= end,
            )
            .order_by(DealRow.expected_close_date, DealRow.deal_id)
            .limit(limit)
        )
        return list(await self.session.scalars(stmt))


async def unit_members(uow: UnitOfWork, org_path: str) -> list[MemberProfileRow]:
    """The active members of one org unit (a team is a handful of profiles, never deals)."""
    stmt = select(MemberProfileRow).where(
        MemberProfileRow.org_path == org_path, MemberProfileRow.active.is_(True)
    )
    return list(await uow.session.scalars(stmt.order_by(MemberProfileRow.user_id).limit(500)))


__all__ = ["CoachingSums", "StageFigures", "seconds_between", "unit_members"]
