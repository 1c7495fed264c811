"""The append-only records of a deal: tracked-field changes and gate reviews."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement
from ulid import ULID

from kit.resources import Page, PageRequest, Repository, Sort
from services.pipeline.domain.history import Change
from services.pipeline.store import DealChangeRow, GateReviewRow


class DealChanges(Repository[DealChangeRow]):
    model = DealChangeRow
    resource = "pipeline.DealChange"
    key = ("change_id",)

    async def append(self, deal_id: str, changes: Sequence[Change], actor: str, at: datetime) -> None:
        """One row per changed field; ULIDs keep the write order within one instant."""
        for c in changes:
            self.session.add(
                DealChangeRow(
                    change_id=str(ULID()),
                    deal_id=deal_id,
                    field=c.field,
                    old_value=c.before[:200],
                    new_value=c.after[:200],
                    changed_by=actor,
                    changed_at=at,
                )
            )
        await self.session.flush()

    async def page(
        self, deal_id: str, fields: Sequence[str], before: datetime | None, page: PageRequest, query: str
    ) -> Page[DealChangeRow]:
        where: list[ColumnElement[bool]] = [DealChangeRow.deal_id == deal_id]
        if fields:
            where.append(DealChangeRow.field.in_(list(fields)))
        if before is not None:
            where.append(DealChangeRow.changed_at < before)
        return await self.list(where, [Sort(DealChangeRow.change_id)], page, query)


class GateReviews(Repository[GateReviewRow]):
    model = GateReviewRow
    resource = "pipeline.GateReview"
    key = ("review_id",)

    async def page(self, deal_id: str, outcome: str, page: PageRequest, query: str) -> Page[GateReviewRow]:
        where: list[ColumnElement[bool]] = [GateReviewRow.deal_id == deal_id]
        if outcome:
            where.append(GateReviewRow.outcome == outcome)
        return await self.list(where, [Sort(GateReviewRow.review_id, descending=True)], page, query)


__all__ = ["DealChanges", "GateReviews"]
