"""Iteration reports, and the month's aggregates the monthly iteration decides from (every query here).

Uses and feedback come from `card_uses` / `feedback_duties` (store_uses); impressions,
deal owners and the lift cache from `card_impressions` / `deal_outcomes` / `card_lift_stats`
and `lift_cells` (store_outcomes).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, case, distinct, func, select, union

from kit.db import Database
from kit.resources import Page, PageRequest, Repository, Sort, UnitOfWork
from salesops.knowledge.v1.usage_pb2 import FeedbackRating
from services.knowledge.domain.cards import PUBLISHED
from services.knowledge.domain.contributions import ACCEPTED
from services.knowledge.domain.lift import CellCounts
from services.knowledge.repositories.cards import INDUSTRY, STAGE
from services.knowledge.repositories.outcomes import pooled_counts
from services.knowledge.store import SopCardFacetRow, SopCardRow, SopCardVersionRow
from services.knowledge.store_contributions import ContributionRow
from services.knowledge.store_iteration import IterationReportRow
from services.knowledge.store_outcomes import CardImpressionRow, DealOutcomeRow
from services.knowledge.store_uses import CardUseRow, FeedbackDutyRow

FULLY = FeedbackRating.FEEDBACK_RATING_FULLY
PARTLY = FeedbackRating.FEEDBACK_RATING_PARTLY
NOT_APPLICABLE = FeedbackRating.FEEDBACK_RATING_NOT_APPLICABLE


class IterationReports(Repository[IterationReportRow]):
    model, resource, key = IterationReportRow, "knowledge.IterationReport", ("report_id",)

    async def by_slot(self, slot: str) -> IterationReportRow | None:
        return await self.session.scalar(  # type: ignore[no-any-return]
            select(IterationReportRow).where(IterationReportRow.slot == slot)
        )

    async def page(self, year: int, page: PageRequest, query: str) -> Page[IterationReportRow]:
        """Newest month first; a month's dry runs after its real report, newest first."""
        where = [IterationReportRow.year == year] if year else []
        order = [
            Sort(IterationReportRow.year, descending=True),
            Sort(IterationReportRow.month, descending=True),
            Sort(IterationReportRow.report_id, descending=True),
        ]
        return await self.list(where, order, page, query)


@dataclass
class PublishedCard:
    card_id: str
    title: str
    version: int
    first_published_at: datetime
    industries: list[str] = field(default_factory=list)
    stage_ids: list[str] = field(default_factory=list)


@dataclass
class CardFigures:
    uses: int = 0
    users: int = 0
    recommended_uses: int = 0
    impressions: int | None = None
    ratings: dict[int, int] = field(default_factory=dict)  # FeedbackRating -> count
    reasons: dict[int, int] = field(default_factory=dict)  # negative feedback's category -> count


@dataclass
class MonthTotals:
    uses: int = 0
    using_users: int = 0
    active_users: int = 0
    feedback: int = 0
    feedback_on_time: int = 0
    negative: float = 0.0
    contributions_submitted: int = 0
    contributions_accepted: int = 0


class MonthFigures:
    """The aggregates of one window [start, end) for the monthly iteration."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.session = uow.session

    async def published_cards(self) -> list[PublishedCard]:
        first = (
            select(SopCardVersionRow.card_id, func.min(SopCardVersionRow.published_at).label("first"))
            .group_by(SopCardVersionRow.card_id)
            .subquery()
        )
        rows = (
            await self.session.execute(
                select(SopCardRow.card_id, SopCardRow.title, SopCardRow.published_version, first.c.first)
                .join(first, first.c.card_id == SopCardRow.card_id)
                .where(SopCardRow.status == PUBLISHED)
                .order_by(SopCardRow.card_id)
            )
        ).all()
        cards = {r[0]: PublishedCard(r[0], r[1], r[2], r[3]) for r in rows}
        if not cards:
            return []
        facets = await self.session.execute(
            select(SopCardFacetRow.card_id, SopCardFacetRow.facet, SopCardFacetRow.value)
            .where(SopCardFacetRow.facet.in_([INDUSTRY, STAGE]))
            .order_by(SopCardFacetRow.card_id, SopCardFacetRow.value)
        )
        for card_id, facet, value in facets:
            card = cards.get(card_id)
            if card is not None:
                (card.industries if facet == INDUSTRY else card.stage_ids).append(value)
        return list(cards.values())

    async def per_card(self, start: datetime, end: datetime, partly_negative: bool) -> dict[str, CardFigures]:
        out: dict[str, CardFigures] = defaultdict(CardFigures)
        in_month = and_(CardUseRow.used_at >= start, CardUseRow.used_at < end)
        recommended = func.sum(case((CardUseRow.recommendation_id != "", 1), else_=0))
        for card_id, uses, users, from_recs in await self.session.execute(
            select(CardUseRow.card_id, func.count(), func.count(distinct(CardUseRow.user_id)), recommended)
            .where(in_month)
            .group_by(CardUseRow.card_id)
        ):
            f = out[card_id]
            f.uses, f.users, f.recommended_uses = int(uses), int(users), int(from_recs or 0)
        rated = and_(
            FeedbackDutyRow.rating != 0,
            FeedbackDutyRow.recorded_at >= start,
            FeedbackDutyRow.recorded_at < end,
        )
        for card_id, rating, count in await self.session.execute(
            select(FeedbackDutyRow.card_id, FeedbackDutyRow.rating, func.count())
            .where(rated)
            .group_by(FeedbackDutyRow.card_id, FeedbackDutyRow.rating)
        ):
            out[card_id].ratings[int(rating)] = int(count)
        negative = [NOT_APPLICABLE, PARTLY] if partly_negative else [NOT_APPLICABLE]
        for card_id, category, count in await self.session.execute(
            select(FeedbackDutyRow.card_id, FeedbackDutyRow.reason_category, func.count())
            .where(rated, FeedbackDutyRow.rating.in_(negative))
            .group_by(FeedbackDutyRow.card_id, FeedbackDutyRow.reason_category)
        ):
            out[card_id].reasons[int(category)] = int(count)
        shown = CardImpressionRow
        for card_id, count in await self.session.execute(
            select(shown.card_id, func.count())
            .where(shown.shown_at >= start, shown.shown_at < end)
            .group_by(shown.card_id)
        ):
            out[card_id].impressions = int(count)
        return out

    async def lift_counts(self) -> dict[str, CellCounts]:
        """Per card, its closed deals with and without it pooled over the cells it was used in (the lift cache)."""
        return await pooled_counts(self.session)

    async def totals(self, start: datetime, end: datetime) -> MonthTotals:
        t = MonthTotals()
        used = and_(CardUseRow.used_at >= start, CardUseRow.used_at < end)
        uses, users = (
            await self.session.execute(
                select(func.count(), func.count(distinct(CardUseRow.user_id))).where(used)
            )
        ).one()
        t.uses, t.using_users = int(uses), int(users)
        # Active reps: anyone who used a card, was shown one, or owns a deal that moved in the month.
        active = [select(CardUseRow.user_id.label("user_id")).where(used)]
        shown = CardImpressionRow
        active.append(
            select(shown.user_id.label("user_id")).where(shown.shown_at >= start, shown.shown_at < end)
        )
        deals = DealOutcomeRow
        active.append(
            select(deals.owner_user_id.label("user_id")).where(
                deals.event_at >= start, deals.event_at < end, deals.owner_user_id != ""
            )
        )
        everyone = union(*active).subquery()
        t.active_users = int(await self.session.scalar(select(func.count()).select_from(everyone)) or 0)
        rated = and_(
            FeedbackDutyRow.rating != 0,
            FeedbackDutyRow.recorded_at >= start,
            FeedbackDutyRow.recorded_at < end,
        )
        feedback, late = (
            await self.session.execute(
                select(
                    func.count(), func.coalesce(func.sum(case((FeedbackDutyRow.late, 1), else_=0)), 0)
                ).where(rated)
            )
        ).one()
        t.feedback, t.feedback_on_time = int(feedback), int(feedback) - int(late)
        t.contributions_submitted = int(
            await self.session.scalar(
                select(func.count()).where(
                    ContributionRow.submitted_at >= start, ContributionRow.submitted_at < end
                )
            )
            or 0
        )
        t.contributions_accepted = int(
            await self.session.scalar(
                select(func.count()).where(
                    ContributionRow.status == ACCEPTED,
                    ContributionRow.reviewed_at >= start,
                    ContributionRow.reviewed_at < end,
                )
            )
            or 0
        )
        return t


async def tenants_with_cards(db: Database) -> list[str]:
    """Every tenant with a card (a cross-tenant read: the iteration schedules are per tenant)."""
    async with db.system_session() as session:
        found = await session.scalars(select(SopCardRow.tenant_id).distinct().order_by(SopCardRow.tenant_id))
        return list(found)
