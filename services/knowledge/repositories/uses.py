"""Card uses and feedback duties: every query over `card_uses` and `feedback_duties`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, select

from kit.auth import Principal
from kit.resources import Page, PageRequest, Repository, Sort
from services.knowledge import use_access
from services.knowledge.store_uses import CardUseRow, FeedbackDutyRow


@dataclass(frozen=True)
class UseQuery:
    """A checked CardUseFilter: every set field must match."""

    card_id: str = ""
    user_id: str = ""
    deal_id: str = ""
    lead_id: str = ""
    states: tuple[int, ...] = ()
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class DutyQuery:
    """Whose duties (a user, an org subtree, or both) in which states."""

    states: tuple[int, ...]
    user_id: str = ""
    org_path: str = ""


class CardUses(Repository[CardUseRow]):
    model, resource, key = CardUseRow, use_access.USE, ("use_id",)

    async def page(self, who: Principal, q: UseQuery, page: PageRequest, query: str) -> Page[CardUseRow]:
        """Uses `who` may see matching `q`, newest first."""
        where: list[ColumnElement[bool]] = [use_access.scope(who, CardUseRow.user_id, CardUseRow.org_path)]
        for name in ("card_id", "user_id", "deal_id", "lead_id"):
            if getattr(q, name):
                where.append(getattr(CardUseRow, name) == getattr(q, name))
        if q.start is not None:
            where.append(CardUseRow.used_at >= q.start)
        if q.end is not None:
            where.append(CardUseRow.used_at < q.end)
        stmt = select(CardUseRow).where(*where)
        states = list(q.states)
        if states:
            stmt = stmt.where(
                CardUseRow.duty_id.in_(
                    select(FeedbackDutyRow.duty_id).where(
                        FeedbackDutyRow.tenant_id == self.uow.tenant, FeedbackDutyRow.state.in_(states)
                    )
                )
            )
        order = [Sort(CardUseRow.used_at, descending=True), Sort(CardUseRow.use_id, descending=True)]
        return await self.paginate(stmt, order, page, query)


class FeedbackDuties(Repository[FeedbackDutyRow]):
    model, resource, key = FeedbackDutyRow, use_access.USE, ("duty_id",)

    async def for_subject(
        self, user_id: str, card_id: str, deal_id: str, lead_id: str
    ) -> FeedbackDutyRow | None:
        """The one duty of (rep, card, deal or lead), if any."""
        return await self.session.scalar(  # type: ignore[no-any-return]
            select(FeedbackDutyRow).where(
                FeedbackDutyRow.user_id == user_id,
                FeedbackDutyRow.card_id == card_id,
                FeedbackDutyRow.deal_id == deal_id,
                FeedbackDutyRow.lead_id == lead_id,
            )
        )

    async def by_ids(self, duty_ids: Sequence[str]) -> dict[str, FeedbackDutyRow]:
        if not duty_ids:
            return {}
        rows = await self.session.scalars(
            select(FeedbackDutyRow).where(FeedbackDutyRow.duty_id.in_(list(set(duty_ids))))
        )
        return {r.duty_id: r for r in rows}

    async def page(
        self, who: Principal, q: DutyQuery, page: PageRequest, query: str
    ) -> Page[FeedbackDutyRow]:
        """Duties `who` may see matching `q`, soonest deadline first, with the total."""
        clauses = [
            use_access.scope(who, FeedbackDutyRow.user_id, FeedbackDutyRow.org_path),
            FeedbackDutyRow.state.in_(list(q.states)),
        ]
        if q.user_id:
            clauses.append(FeedbackDutyRow.user_id == q.user_id)
        if q.org_path:
            clauses.append(use_access.in_subtree(FeedbackDutyRow.org_path, q.org_path))
        order = [Sort(FeedbackDutyRow.due_at)]
        return await self.list(clauses, order, page, query, count=True)

    async def touch(self, row: FeedbackDutyRow, at: datetime) -> FeedbackDutyRow:
        """Write the row's changes, compare-and-set on its version (ABORTED if someone else moved it)."""
        row.updated_at = at
        return await self.update_if_etag(row, "")
