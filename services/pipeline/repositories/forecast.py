"""The forecast roll-up: sums in SQL, grouped at the org level asked for (or finely enough to fold)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, String, func, literal, literal_column, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from kit.resources import UnitOfWork
from services.pipeline.domain.forecast import Aggregate, Level
from services.pipeline.store import DealRow


class org_prefix(FunctionElement[str]):
    """The first `depth` segments of an org path ("east/ningbo/team-a", 2 -> "east/ningbo"), in SQL.

    Paths are stored without leading or trailing slashes; a shorter path is itself.
    """

    type = String()
    inherit_cache = True

    def __init__(self, column: Any, depth: int) -> None:
        # The depth rides as a literal clause: part of the statement cache key (two levels never
        # share a compiled statement) and never a bound parameter.
        super().__init__(column, literal_column(str(int(depth))))


def _parts(element: org_prefix, compiler: SQLCompiler, **kw: Any) -> tuple[str, int]:
    column, depth = list(element.clauses)
    return compiler.process(column, **kw), int(str(depth))


@compiles(org_prefix)
def _prefix_pg(element: org_prefix, compiler: SQLCompiler, **kw: Any) -> str:
    col, depth = _parts(element, compiler, **kw)
    parts = [f"split_part({col}, '/', {i})" for i in range(1, depth + 1)]
    if len(parts) == 1:
        return parts[0]
    return "rtrim(" + " || '/' || ".join(parts) + ", '/')"


@compiles(org_prefix, "sqlite")
def _prefix_sqlite(element: org_prefix, compiler: SQLCompiler, **kw: Any) -> str:
    # The position of the depth-th slash of path || '/', found one segment at a time (a missing
    # segment leaves the position where it was, so a shorter path comes back whole).
    col, depth = _parts(element, compiler, **kw)
    s = f"({col} || '/')"
    pos = f"instr({s}, '/')"
    for _ in range(depth - 1):
        pos = f"({pos} + instr(substr({s}, {pos} + 1), '/'))"
    return f"substr({s}, 1, {pos} - 1)"


class ForecastSums:
    def __init__(self, uow: UnitOfWork) -> None:
        self.session = uow.session

    def _where(
        self, where: Sequence[ColumnElement[bool]], start: date, end: date
    ) -> list[ColumnElement[bool]]:
        return [
            *where,
            DealRow.status.in_(("OPEN", "WON")),
            DealRow.expected_close_date >= start,
            DealRow.expected_close_date <= end,
        ]

    async def by_owner(self, where: Sequence[ColumnElement[bool]], start: date, end: date) -> list[Aggregate]:
        """Open and won deals closing in [start, end], summed per owner, org path, status, frozen, category."""
        keys = (
            DealRow.owner_user_id,
            DealRow.org_path,
            DealRow.status,
            DealRow.frozen,
            DealRow.forecast_category,
        )
        stmt = (
            select(*keys, func.sum(DealRow.amount_minor), func.sum(DealRow.weighted_minor), func.count())
            .where(*self._where(where, start, end))
            .group_by(*keys)
        )
        return self._aggregates((await self.session.execute(stmt)).all())

    async def at_level(
        self, where: Sequence[ColumnElement[bool]], start: date, end: date, level: Level
    ) -> list[Aggregate]:
        """The same sums grouped at `level` in SQL: per rep (their latest org path named), per org path
        cut at the level's depth, or the whole scope; `fold` then only adds a few rows per group.

        The frozen flag is summed apart (FILTER) instead of grouped on: half the estimated groups,
        so the hash table the planner expects stays within its memory. Grouped on it, with the org
        path's max beside, a rep roll-up of 1,000,000 deals (PostgreSQL 15, default work_mem) was
        planned as a parallel sort spilling to disk, ~1.5x the server CPU of the bare aggregate's
        hash; now the same plan as the bare aggregate."""
        owner: Any
        org: Any
        keys: list[Any]
        if level is Level.REP:
            owner, org, keys = DealRow.owner_user_id, func.max(DealRow.org_path), [DealRow.owner_user_id]
        elif level is Level.COMPANY:
            owner, org, keys = literal(""), literal(""), []
        else:
            prefix = org_prefix(DealRow.org_path, level.value)
            owner, org, keys = literal(""), prefix, [prefix]
        frozen = DealRow.frozen.is_(True)
        stmt = (
            select(
                owner,
                org,
                DealRow.status,
                DealRow.forecast_category,
                func.sum(DealRow.amount_minor),
                func.sum(DealRow.weighted_minor),
                func.count(),
                func.sum(DealRow.amount_minor).filter(frozen),
                func.sum(DealRow.weighted_minor).filter(frozen),
                func.count().filter(frozen),
            )
            .where(*self._where(where, start, end))
            .group_by(*keys, DealRow.status, DealRow.forecast_category)
        )
        out: list[Aggregate] = []
        for owner_, org_, status, category, amount, weighted, n, f_amount, f_weighted, f_n in (
            await self.session.execute(stmt)
        ).all():
            # PostgreSQL sums bigints as numeric (Decimal); a FILTER sum over no row is NULL.
            amount, weighted = int(amount or 0), int(weighted or 0)
            f_amount, f_weighted, n, f_n = int(f_amount or 0), int(f_weighted or 0), int(n), int(f_n or 0)
            if n > f_n:  # the group's deals not frozen, then the frozen ones (what grouping on it gave)
                out.append(
                    Aggregate(
                        owner_,
                        org_,
                        status,
                        False,
                        category,
                        amount - f_amount,
                        weighted - f_weighted,
                        n - f_n,
                    )
                )
            if f_n:
                out.append(Aggregate(owner_, org_, status, True, category, f_amount, f_weighted, f_n))
        return out

    @staticmethod
    def _aggregates(rows: Sequence[Any]) -> list[Aggregate]:
        return [
            Aggregate(
                owner, org, status, bool(frozen), category, int(amount or 0), int(weighted or 0), int(n)
            )
            for owner, org, status, frozen, category, amount, weighted, n in rows
        ]
