"""Deal projection, stages reached, the lift cache per (industry, stage), newcomers and impressions.

The monthly iteration reads the same aggregates: `LiftCells.counts` gives any
card's counts in a cell, `Usage.uses_by_card` usage in a window.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from kit.resources import UnitOfWork
from services.knowledge.domain.lift import CellCounts, Lift, lift_of
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
# Each cell's lifts per (database, tenant, industry, stage, min sample), with the cell row they match.
MAX_CACHED_CELLS = 512


@dataclass(frozen=True)
class CellLifts:
    by_card: dict[str, Lift]  # the cards used in the cell
    unused: Lift  # any other card: 0 deals with it, the whole cell without

    def of(self, card_id: str) -> Lift:
        return self.by_card.get(card_id, self.unused)


_CELLS: dict[tuple[str, str, str, str, int], tuple[tuple[int, int, int, datetime], CellLifts]] = {}


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
    """The lift cache per (industry, stage) cell: totals of closed deals and per-card counts."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.session, self.tenant = uow.session, uow.tenant
        self.dialect = self.session.get_bind().dialect.name

    def _insert(self, table: Any) -> Any:
        return (pg_insert if self.dialect == "postgresql" else sqlite_insert)(table)

    async def bump(
        self, industry: str, stage_id: str, card_ids: Iterable[str], closed: int, won: int, at: datetime
    ) -> None:
        """Add (or, negative, remove) one deal's contribution to a cell and its cards' rows."""
        cell = self._insert(LiftCellRow.__table__).values(
            tenant_id=self.tenant,
            industry=industry,
            stage_id=stage_id,
            closed=closed,
            won=won,
            refreshed_at=at,
            version=1,
        )
        await self.session.execute(
            cell.on_conflict_do_update(
                index_elements=["tenant_id", "industry", "stage_id"],
                set_={
                    "closed": LiftCellRow.__table__.c.closed + closed,
                    "won": LiftCellRow.__table__.c.won + won,
                    "refreshed_at": at,
                    "version": LiftCellRow.__table__.c.version + 1,
                },
            )
        )
        rows = [
            {
                "tenant_id": self.tenant,
                "industry": industry,
                "stage_id": stage_id,
                "card_id": card_id,
                "used_closed": closed,
                "used_won": won,
            }
            for card_id in sorted(set(card_ids))
        ]
        if rows:
            stmt = self._insert(CardLiftStatRow.__table__)
            table = CardLiftStatRow.__table__.c
            await self.session.execute(
                stmt.on_conflict_do_update(
                    index_elements=["tenant_id", "industry", "stage_id", "card_id"],
                    set_={
                        "used_closed": table.used_closed + stmt.excluded.used_closed,
                        "used_won": table.used_won + stmt.excluded.used_won,
                    },
                ),
                rows,
            )

    async def cards_used_before(self, deal_id: str, closed_at: datetime) -> set[str]:
        """Cards used on the deal up to its close (a use after the outcome cannot have caused it).
        The time is compared here: with it in SQL, SQLite ranged over every use by time instead."""
        rows = await self.session.execute(
            select(CardUseRow.card_id, CardUseRow.used_at).where(CardUseRow.deal_id == deal_id)
        )
        return {card_id for card_id, used_at in rows if _aware(used_at) <= closed_at}

    async def clear(self) -> None:
        for model in (CardLiftStatRow, LiftCellRow):
            await self.session.execute(delete(model).execution_options(synchronize_session=False))

    async def closed_deals(self) -> list[DealOutcomeRow]:
        return list(
            await self.session.scalars(select(DealOutcomeRow).where(DealOutcomeRow.outcome.in_(CLOSED)))
        )

    async def reached_by_closed(self) -> dict[str, set[str]]:
        rows = await self.session.execute(
            select(DealStageReachedRow.deal_id, DealStageReachedRow.stage_id)
            .join(DealOutcomeRow, DealOutcomeRow.deal_id == DealStageReachedRow.deal_id)
            .where(DealOutcomeRow.outcome.in_(CLOSED))
        )
        out: dict[str, set[str]] = {}
        for deal_id, stage_id in rows:
            out.setdefault(deal_id, set()).add(stage_id)
        return out

    async def cards_by_closed(self) -> dict[str, set[str]]:
        rows = await self.session.execute(
            select(CardUseRow.deal_id, CardUseRow.card_id)
            .join(DealOutcomeRow, DealOutcomeRow.deal_id == CardUseRow.deal_id)
            .where(
                DealOutcomeRow.outcome.in_(CLOSED),
                CardUseRow.deal_id != "",
                CardUseRow.used_at <= DealOutcomeRow.closed_at,
            )
            .distinct()
        )
        out: dict[str, set[str]] = {}
        for deal_id, card_id in rows:
            out.setdefault(deal_id, set()).add(card_id)
        return out

    async def load(
        self,
        cells: Mapping[tuple[str, str], tuple[int, int]],
        cards: Mapping[tuple[str, str, str], tuple[int, int]],
        at: datetime,
    ) -> None:
        """Bulk-write a rebuilt cache (after `clear`)."""
        cell_rows = [
            {
                "tenant_id": self.tenant,
                "industry": i,
                "stage_id": s,
                "closed": n,
                "won": w,
                "refreshed_at": at,
                "version": 1,
            }
            for (i, s), (n, w) in sorted(cells.items())
        ]
        card_rows = [
            {
                "tenant_id": self.tenant,
                "industry": i,
                "stage_id": s,
                "card_id": c,
                "used_closed": n,
                "used_won": w,
            }
            for (i, s, c), (n, w) in sorted(cards.items())
        ]
        for model, rows in ((LiftCellRow, cell_rows), (CardLiftStatRow, card_rows)):
            for start in range(0, len(rows), 5000):
                await self.session.execute(insert(model), rows[start : start + 5000])

    async def lifts(self, industry: str, stage_id: str, min_sample: int) -> CellLifts:
        """Every card's lift in the cell, computed once per version of the cell: kept in memory per
        database, tenant, cell and minimum sample while the cell row is unchanged (every bump adds 1
        to its version; a rebuild writes it anew at its own time), so a call reads one row and no
        interval is computed again."""
        cell = (
            await self.session.execute(
                select(
                    LiftCellRow.version, LiftCellRow.closed, LiftCellRow.won, LiftCellRow.refreshed_at
                ).where(LiftCellRow.industry == industry, LiftCellRow.stage_id == stage_id)
            )
        ).first()
        version = None if cell is None else (int(cell[0]), int(cell[1]), int(cell[2]), _aware(cell[3]))
        return await self.lifts_at(industry, stage_id, min_sample, version)

    async def lifts_at(
        self, industry: str, stage_id: str, min_sample: int, version: tuple[int, int, int, datetime] | None
    ) -> CellLifts:
        """`lifts` with the cell row's (version, closed, won, refreshed_at) already read (None: no row)."""
        if version is None:
            return CellLifts({}, lift_of(CellCounts(0, 0, 0, 0), min_sample))
        key = (str(self.session.get_bind().engine.url), self.tenant, industry, stage_id, min_sample)
        cached = _CELLS.get(key)
        if cached is None or cached[0] != version:
            rows = await self.session.execute(
                select(CardLiftStatRow.card_id, CardLiftStatRow.used_closed, CardLiftStatRow.used_won).where(
                    CardLiftStatRow.industry == industry, CardLiftStatRow.stage_id == stage_id
                )
            )
            closed, won = version[1], version[2]
            by_card = {
                str(c): lift_of(CellCounts(closed, won, int(n), int(w)), min_sample) for c, n, w in rows
            }
            cached = (version, CellLifts(by_card, lift_of(CellCounts(closed, won, 0, 0), min_sample)))
            if len(_CELLS) >= MAX_CACHED_CELLS:
                _CELLS.pop(next(iter(_CELLS)))
            _CELLS[key] = cached
        return cached[1]

    async def counts(self, industry: str, stage_id: str, card_ids: Sequence[str]) -> dict[str, CellCounts]:
        """Each card's counts in the cell (zeros for a card never used there)."""
        cell = await self.session.get(LiftCellRow, (self.tenant, industry, stage_id))
        if cell is None:
            return {c: CellCounts(0, 0, 0, 0) for c in card_ids}
        rows = await self.session.execute(
            select(CardLiftStatRow.card_id, CardLiftStatRow.used_closed, CardLiftStatRow.used_won).where(
                CardLiftStatRow.industry == industry,
                CardLiftStatRow.stage_id == stage_id,
                CardLiftStatRow.card_id.in_(list(card_ids)),
            )
        )
        used = {str(c): (int(n), int(w)) for c, n, w in rows}
        return {c: CellCounts(cell.closed, cell.won, *used.get(c, (0, 0))) for c in card_ids}

    async def pooled(self, card_ids: Sequence[str]) -> dict[str, CellCounts]:
        """Per card, its closed deals with and without it pooled over the cells it was used in."""
        if not card_ids:
            return {}
        return await pooled_counts(self.session, card_ids)


async def pooled_counts(session: Any, card_ids: Sequence[str] | None = None) -> dict[str, CellCounts]:
    """Per card (those given, else every card with lift stats), its closed deals with and without
    it pooled over the cells it was used in: the card stats' lift and the iteration's lift cache."""
    stmt = (
        select(
            CardLiftStatRow.card_id,
            func.sum(LiftCellRow.closed),
            func.sum(LiftCellRow.won),
            func.sum(CardLiftStatRow.used_closed),
            func.sum(CardLiftStatRow.used_won),
        )
        .join(
            LiftCellRow,
            and_(
                LiftCellRow.industry == CardLiftStatRow.industry,
                LiftCellRow.stage_id == CardLiftStatRow.stage_id,
            ),
        )
        .group_by(CardLiftStatRow.card_id)
    )
    if card_ids is not None:
        stmt = stmt.where(CardLiftStatRow.card_id.in_(sorted(set(card_ids))))
    rows = await session.execute(stmt)
    return {c: CellCounts(int(a or 0), int(b or 0), int(u or 0), int(w or 0)) for c, a, b, u, w in rows}


class Usage:
    """Card use figures over a window, from card_uses."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.session = uow.session

    async def uses_by_card(self, since: datetime, until: datetime) -> dict[str, int]:
        rows = await self.session.execute(
            select(CardUseRow.card_id, func.count())
            .where(CardUseRow.used_at >= since, CardUseRow.used_at < until)
            .group_by(CardUseRow.card_id)
        )
        return {c: int(n) for c, n in rows}

    async def recently_used_on(self, user_id: str, deal_id: str, lead_id: str, since: datetime) -> set[str]:
        """Cards the user already used on this deal or lead since `since` (skipped by recommend).
        A deal's uses by the deal index, filtered here (a time range in SQL made SQLite scan by time)."""
        if deal_id:
            rows = await self.session.execute(
                select(CardUseRow.card_id, CardUseRow.user_id, CardUseRow.used_at).where(
                    CardUseRow.deal_id == deal_id
                )
            )
            return {c for c, u, at in rows if u == user_id and _aware(at) >= since}
        found = await self.session.scalars(
            select(CardUseRow.card_id).where(
                CardUseRow.user_id == user_id, CardUseRow.lead_id == lead_id, CardUseRow.used_at >= since
            )
        )
        return set(found)


class Impressions:
    def __init__(self, uow: UnitOfWork) -> None:
        self.session, self.tenant = uow.session, uow.tenant

    async def record(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert the impressions not yet recorded (one per user, subject, card and day), in one statement."""
        if not rows:
            return
        values = [{**r, "tenant_id": self.tenant} for r in rows]
        table: Any = CardImpressionRow.__table__
        stmt = (pg_insert if self.session.get_bind().dialect.name == "postgresql" else sqlite_insert)(table)
        await self.session.execute(stmt.on_conflict_do_nothing(), values)

    async def by_card(self, since: datetime, until: datetime) -> dict[str, int]:
        rows = await self.session.execute(
            select(CardImpressionRow.card_id, func.count())
            .where(CardImpressionRow.shown_at >= since, CardImpressionRow.shown_at < until)
            .group_by(CardImpressionRow.card_id)
        )
        return {c: int(n) for c, n in rows}
