"""The forecast roll-up: sums in SQL, grouped finely enough to fold into any org level."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import ColumnElement, func, select

from kit.resources import UnitOfWork
from services.pipeline.domain.forecast import Aggregate
from services.pipeline.store import DealRow


class ForecastSums:
    def __init__(self, uow: UnitOfWork) -> None:
        self.session = uow.session

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
            .where(
                *where,
                DealRow.status.in_(("OPEN", "WON")),
                DealRow.expected_close_date >= start,
                DealRow.expected_close_date <= end,
            )
            .group_by(*keys)
        )
        rows = (await self.session.execute(stmt)).all()
        return [
            Aggregate(
                owner, org, status, bool(frozen), category, int(amount or 0), int(weighted or 0), int(n)
            )
            for owner, org, status, frozen, category, amount, weighted, n in rows
        ]
