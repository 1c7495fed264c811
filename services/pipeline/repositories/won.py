"""Won revenue per subject and period: one grouped query over the won deals (ix_deals_tenant_status_close)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, select

from kit.resources import UnitOfWork
from services.pipeline.domain.forecast import Level
from services.pipeline.repositories.forecast import org_prefix
from services.pipeline.store import DealRow


@dataclass(frozen=True)
class WonSum:
    key: str  # the owner for reps, the org path cut at the level, "" for the company
    period: int  # index into the periods asked for
    amount: int
    count: int


class WonRevenue:
    def __init__(self, uow: UnitOfWork) -> None:
        self.session = uow.session

    async def by_period(
        self, where: Sequence[ColumnElement[bool]], periods: Sequence[tuple[date, date]], level: Level
    ) -> list[WonSum]:
        """Won deals with a close date in one of `periods` (contiguous, oldest first), summed per
        subject at `level` and period: the period is a CASE over the bounds, so one statement serves
        any granularity on SQLite and PostgreSQL."""
        close = DealRow.expected_close_date
        bucket = case(*((and_(close >= s, close <= e), i) for i, (s, e) in enumerate(periods)), else_=-1)
        key: Any
        keys: list[Any]
        if level is Level.REP:
            key = DealRow.owner_user_id
            keys = [key]
        elif level is Level.COMPANY:
            key, keys = literal(""), []  # one subject: grouped by period only
        else:
            key = org_prefix(DealRow.org_path, level.value)
            keys = [key]
        stmt = (
            select(key, bucket, func.sum(DealRow.amount_minor), func.count())
            .where(
                *where,
                DealRow.status == "WON",
                close >= periods[0][0],
                close <= periods[-1][1],
            )
            .group_by(*keys, bucket)
        )
        rows = (await self.session.execute(stmt)).all()
        return [WonSum(str(k or ""), int(p), int(a or 0), int(n)) for k, p, a, n in rows if p >= 0]
