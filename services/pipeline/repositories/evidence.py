"""Evidence attached to deals."""

from __future__ import annotations

from sqlalchemy import ColumnElement

from kit.resources import Page, PageRequest, Repository, Sort
from services.pipeline.store import EvidenceRow


class EvidenceItems(Repository[EvidenceRow]):
    model = EvidenceRow
    resource = "pipeline.DealEvidence"
    key = ("evidence_id",)

    async def remove(self, row: EvidenceRow) -> None:
        await self.session.delete(row)
        await self.session.flush()

    async def page(self, deal_id: str, types: list[str], page: PageRequest, query: str) -> Page[EvidenceRow]:
        """Newest first, the id breaking ties."""
        where: list[ColumnElement[bool]] = [EvidenceRow.deal_id == deal_id]
        if types:
            where.append(EvidenceRow.evidence_type_id.in_(types))
        return await self.list(where, [Sort(EvidenceRow.created_at, descending=True)], page, query)
