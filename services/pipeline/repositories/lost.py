"""Lost deals counted in SQL: by reason category and refinement, and by competitor."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select

from kit.resources import UnitOfWork
from services.pipeline.store import DealRow


@dataclass(frozen=True)
class Count:
    category: str
    code: str
    count: int
    amount: int


class LostDeals:
    def __init__(self, uow: UnitOfWork) -> None:
        self.session = uow.session

    async def by_reason(self, where: Sequence[ColumnElement[bool]]) -> list[Count]:
        stmt = (
            select(
                DealRow.lost_category, DealRow.lost_reason_code, func.count(), func.sum(DealRow.amount_minor)
            )
            .where(DealRow.status == "LOST", *where)
            .group_by(DealRow.lost_category, DealRow.lost_reason_code)
        )
        return [
            Count(c, code, int(n), int(a or 0)) for c, code, n, a in (await self.session.execute(stmt)).all()
        ]

    async def by_competitor(self, where: Sequence[ColumnElement[bool]]) -> list[Count]:
        stmt = (
            select(DealRow.lost_competitor, func.count(), func.sum(DealRow.amount_minor))
            .where(DealRow.status == "LOST", DealRow.lost_competitor != "", *where)
            .group_by(DealRow.lost_competitor)
        )
        return [
            Count("", name, int(n), int(a or 0)) for name, n, a in (await self.session.execute(stmt)).all()
        ]
