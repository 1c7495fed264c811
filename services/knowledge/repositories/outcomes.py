"""Deal projection, stages reached, the lift cache per (industry, stage), newcomers and impressions.

The monthly iteration reads the same aggregates: `LiftCells.counts` gives any
card's counts in a cell, `Usage.newcomer_uses` and `Usage.uses_by_card` usage in a window.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime

from sqlalchemy import and_, case, delete, distinct, func, insert, select

from kit.resources import UnitOfWork
from services.knowledge.domain.lift import CellCounts
from services.knowledge.store_outcomes import (
    LOST,
    WON,
    CardImpressionRow,
    CardLiftStatRow,
    DealOutcomeRow,
    DealStageReachedRow,
    LiftCellRow,
    RepFirstDealRow,
)
from services.knowledge.store_uses import CardUseRow

CLOSED = (WON, LOST)


class Deals:
    """knowledge's projection of pipeline's deals (written by the pipeline-events consumer only)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.session, self.tenant = uow.session, uow.tenant

    async def get(self, deal_id: str) -> DealOutcomeRow | None:
        return await self.session.get(DealOutcomeRow, (self.tenant, deal_id))

    async def add(self, row: DealOutcomeRow) -> DealOutcomeRow:
        self.session.add(row)
        await self.session.flush()
        return row

    async def stages_reached(self, deal_id: str) -> set[str]:
        rows = await self.session.scalars(
            select(DealStageReachedRow.stage_id).where(DealStageReachedRow.deal_id == deal_id)
        )
        return set(rows)

    async def add_stages(self, deal_id: str, stages: Iterable[str], at: datetime) -> None:
        self.session.add_all(
            DealStageReachedRow(deal_id=deal_id, stage_id=s, reached_at=at) for s in sorted(stages)
        )
        await self.session.flush()

    async def note_owner(self, user_id: str, at: datetime) -> None:
        """The owner's first deal: the earliest deal time seen for them (a newcomer while recent)."""
        row = await self.session.get(RepFirstDealRow, (self.tenant, user_id))
        if row is None:
            self.session.add(RepFirstDealRow(user_id=user_id, first_deal_at=at))
        elif at < _aware(row.first_deal_at):
            row.first_deal_at = at
        await self.session.flush()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class LiftCells:
    """The lift cache: each (industry, stage) cell rebuilt whole from the projection and card_uses."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.session, self.tenant = uow.session, uow.tenant

    async def refresh(self, industry: str, stage_id: str, at: datetime) -> None:
        """Recount the cell: closed / won deals of the industry that reached the stage, and per card
        those where it was used before the deal closed."""
        reached = and_(
            DealStageReachedRow.deal_id == DealOutcomeRow.deal_id, DealStageReachedRow.stage_id == stage_id
        )
        in_cell = [DealOutcomeRow.industry == industry, DealOutcomeRow.outcome.in_(CLOSED)]
        won = case((DealOutcomeRow.outcome == WON, 1), else_=0)
        closed_n, won_n = (
            await self.session.execute(
                select(func.count(), func.coalesce(func.sum(won), 0))
                .select_from(DealOutcomeRow)
                .join(DealStageReachedRow, reached)
                .where(*in_cell)
            )
        ).one()
        per_card = await self.session.execute(
            select(
                CardUseRow.card_id,
                func.count(distinct(DealOutcomeRow.deal_id)),
                func.count(distinct(case((DealOutcomeRow.outcome == WON, DealOutcomeRow.deal_id)))),
            )
            .select_from(CardUseRow)
            .join(DealOutcomeRow, DealOutcomeRow.deal_id == CardUseRow.deal_id)
            .join(DealStageReachedRow, reached)
            .where(*in_cell, CardUseRow.deal_id != "", CardUseRow.used_at <= DealOutcomeRow.closed_at)
            .group_by(CardUseRow.card_id)
        )
        await self.session.execute(
            delete(CardLiftStatRow)
            .where(CardLiftStatRow.industry == industry, CardLiftStatRow.stage_id == stage_id)
            .execution_options(synchronize_session=False)
        )
        rows = [
            {
                "tenant_id": self.tenant,
                "industry": industry,
                "stage_id": stage_id,
                "card_id": card_id,
                "used_closed": int(n),
                "used_won": int(w),
            }
            for card_id, n, w in per_card
        ]
        if rows:
            await self.session.execute(insert(CardLiftStatRow), rows)
        cell = await self.session.get(LiftCellRow, (self.tenant, industry, stage_id))
        if cell is None:
            cell = LiftCellRow(industry=industry, stage_id=stage_id)
            self.session.add(cell)
        cell.closed, cell.won, cell.refreshed_at = int(closed_n), int(won_n), at
        await self.session.flush()

    async def cells(self) -> list[tuple[str, str]]:
        """Every (industry, stage) with a closed deal: what a full rebuild refreshes."""
        rows = await self.session.execute(
            select(DealOutcomeRow.industry, DealStageReachedRow.stage_id)
            .join(DealStageReachedRow, DealStageReachedRow.deal_id == DealOutcomeRow.deal_id)
            .where(DealOutcomeRow.outcome.in_(CLOSED))
            .distinct()
        )
        return sorted((str(i), str(s)) for i, s in rows)

    async def counts(self, industry: str, stage_id: str, card_ids: Sequence[str]) -> dict[str, CellCounts]:
        """Each card's counts in the cell (zeros for a card never used there)."""
        cell = await self.session.get(LiftCellRow, (self.tenant, industry, stage_id))
        closed, won = (cell.closed, cell.won) if cell is not None else (0, 0)
        used: dict[str, tuple[int, int]] = {}
        if card_ids and cell is not None:
            rows = await self.session.execute(
                select(CardLiftStatRow.card_id, CardLiftStatRow.used_closed, CardLiftStatRow.used_won).where(
                    CardLiftStatRow.industry == industry,
                    CardLiftStatRow.stage_id == stage_id,
                    CardLiftStatRow.card_id.in_(list(card_ids)),
                )
            )
            used = {c: (n, w) for c, n, w in rows}
        return {c: CellCounts(closed, won, *used.get(c, (0, 0))) for c in card_ids}


class Usage:
    """Card use figures over a window, from card_uses."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.session = uow.session

    async def newcomer_uses(
        self, card_ids: Sequence[str], since: datetime, newcomer_since: datetime
    ) -> dict[str, int]:
        """Uses since `since` by reps whose first deal is at or after `newcomer_since`, per card."""
        if not card_ids:
            return {}
        rows = await self.session.execute(
            select(CardUseRow.card_id, func.count())
            .join(RepFirstDealRow, RepFirstDealRow.user_id == CardUseRow.user_id)
            .where(
                CardUseRow.card_id.in_(list(card_ids)),
                CardUseRow.used_at >= since,
                RepFirstDealRow.first_deal_at >= newcomer_since,
            )
            .group_by(CardUseRow.card_id)
        )
        return {c: int(n) for c, n in rows}

    async def uses_by_card(self, since: datetime, until: datetime) -> dict[str, int]:
        rows = await self.session.execute(
            select(CardUseRow.card_id, func.count())
            .where(CardUseRow.used_at >= since, CardUseRow.used_at < until)
            .group_by(CardUseRow.card_id)
        )
        return {c: int(n) for c, n in rows}

    async def recently_used_on(self, user_id: str, deal_id: str, lead_id: str, since: datetime) -> set[str]:
        """Cards the user already used on this deal or lead since `since` (skipped by recommend)."""
        subject = CardUseRow.deal_id == deal_id if deal_id else CardUseRow.lead_id == lead_id
        rows = await self.session.scalars(
            select(CardUseRow.card_id).where(
                subject, CardUseRow.user_id == user_id, CardUseRow.used_at >= since
            )
        )
        return set(rows)


class Impressions:
    def __init__(self, uow: UnitOfWork) -> None:
        self.session, self.tenant = uow.session, uow.tenant

    async def record(self, rows: Sequence[CardImpressionRow]) -> None:
        """Insert the impressions not yet recorded (one per user, subject, card and day)."""
        if not rows:
            return
        ids = [r.recommendation_id for r in rows]
        seen = set(
            await self.session.scalars(
                select(CardImpressionRow.recommendation_id).where(
                    CardImpressionRow.recommendation_id.in_(ids)
                )
            )
        )
        fresh = [r for r in rows if r.recommendation_id not in seen]
        if fresh:
            self.session.add_all(fresh)
            await self.session.flush()

    async def by_card(self, since: datetime, until: datetime) -> dict[str, int]:
        rows = await self.session.execute(
            select(CardImpressionRow.card_id, func.count())
            .where(CardImpressionRow.shown_at >= since, CardImpressionRow.shown_at < until)
            .group_by(CardImpressionRow.card_id)
        )
        return {c: int(n) for c, n in rows}
