"""Queries over intakes (the replay key and the record of every merged intake) and duplicate candidates."""

from __future__ import annotations

from sqlalchemy import select, update

from kit.resources import Repository
from services.leads.store import DuplicateRow, IntakeRow

OPEN, DISMISSED, MERGED = "OPEN", "DISMISSED", "MERGED"


class IntakeRepository(Repository[IntakeRow]):
    model = IntakeRow
    resource = "intake"
    key = ("intake_id",)

    async def merged_into(self, lead_id: str, limit: int = 20) -> list[IntakeRow]:
        """The latest intakes merged into the lead, newest first."""
        stmt = (
            select(IntakeRow)
            .where(IntakeRow.lead_id == lead_id, IntakeRow.outcome == MERGED)
            .order_by(IntakeRow.receive_time.desc())
            .limit(limit)
        )
        return list(await self.session.scalars(stmt))


class DuplicateRepository(Repository[DuplicateRow]):
    model = DuplicateRow
    resource = "duplicate candidate"
    key = ("lead_id", "other_lead_id", "kind")

    async def of_lead(self, lead_id: str) -> list[DuplicateRow]:
        return list(await self.session.scalars(select(DuplicateRow).where(DuplicateRow.lead_id == lead_id)))

    async def any_open(self, lead_id: str) -> bool:
        found = await self.session.scalar(
            select(DuplicateRow.lead_id)
            .where(DuplicateRow.lead_id == lead_id, DuplicateRow.state == OPEN)
            .limit(1)
        )
        return found is not None

    async def dismiss(self, lead_id: str, candidates: list[str]) -> None:
        stmt = update(DuplicateRow).where(DuplicateRow.lead_id == lead_id, DuplicateRow.state == OPEN)
        if candidates:
            stmt = stmt.where(DuplicateRow.other_lead_id.in_(candidates))
        await self.session.execute(stmt.values(state=DISMISSED).execution_options(synchronize_session=False))

    async def close_between(self, a: str, b: str) -> None:
        """Two leads merged: the candidates pairing them are settled."""
        await self.session.execute(
            update(DuplicateRow)
            .where(DuplicateRow.lead_id.in_([a, b]), DuplicateRow.other_lead_id.in_([a, b]))
            .values(state=MERGED)
            .execution_options(synchronize_session=False)
        )
