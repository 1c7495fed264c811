"""Deal projection and outcomes for lift, and recommendation impressions (tables on the service's metadata).

`deal_outcomes` is knowledge's own projection of pipeline's deal events (deal id,
industry, current stage, owner, outcome, closed_at); `deal_stages_reached` every
stage a deal was ever in, so "comparable deals" are those of the same industry
that reached the same stage. The lift aggregates are a cache per (industry,
stage) cell, kept in step by each deal event: the deal's contribution (its cells,
and the cards used on it before it closed) is recomputed and the difference from
what it had added (`counted_*` on the deal) is applied (`lift_cells` the cell's
closed / won totals, `card_lift_stats` the per-card counts of closed deals that
used the card), so RecommendSopCards reads a few rows instead of joining a
million uses.
`rep_first_deals` is each owner's first deal: a rep is a newcomer while it is
recent (RecommendationPolicy.newcomer_tenure). `card_impressions` records each
recommendation shown, once per (user, deal or lead, card, day).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, DateTime, Index, Integer, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import TenantScoped
from services.knowledge.store import Base

TS = DateTime(timezone=True)
# deal_outcomes.outcome
OPEN, WON, LOST = 0, 1, 2


class DealOutcomeRow(TenantScoped, Base):
    """A pipeline deal as knowledge needs it; written only by the pipeline-events consumer."""

    __tablename__ = "deal_outcomes"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "deal_id"),
        Index("ix_deal_outcomes_tenant_industry_outcome", "tenant_id", "industry", "outcome"),
    )

    deal_id: Mapped[str] = mapped_column(String(64))
    industry: Mapped[str] = mapped_column(String(64), default="")
    stage_id: Mapped[str] = mapped_column(String(64), default="")
    owner_user_id: Mapped[str] = mapped_column(String(128), default="")
    outcome: Mapped[int] = mapped_column(Integer, default=OPEN)
    created_at: Mapped[datetime] = mapped_column(TS)
    closed_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    # Occurrence time of the last event applied: an older, redelivered event does not roll state back.
    event_at: Mapped[datetime] = mapped_column(TS)
    # What this deal adds to the lift cache right now (so a change subtracts exactly that):
    # counted_won -1 = nothing (open), else 0 / 1; the industry, stages and cards it was counted under.
    counted_won: Mapped[int] = mapped_column(Integer, default=-1)
    counted_industry: Mapped[str] = mapped_column(String(64), default="")
    counted_stages: Mapped[str] = mapped_column(Text, default="")  # space-joined stage ids
    counted_cards: Mapped[str] = mapped_column(
        Text, default=""
    )  # space-joined card ids used before the close


class DealStageReachedRow(TenantScoped, Base):
    __tablename__ = "deal_stages_reached"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "deal_id", "stage_id"),
        Index("ix_deal_stages_reached_tenant_stage", "tenant_id", "stage_id", "deal_id"),
    )

    deal_id: Mapped[str] = mapped_column(String(64))
    stage_id: Mapped[str] = mapped_column(String(64))
    reached_at: Mapped[datetime] = mapped_column(TS)


class LiftCellRow(TenantScoped, Base):
    """Closed and won deals of one industry that reached one stage, as of `refreshed_at`."""

    __tablename__ = "lift_cells"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "industry", "stage_id"),)

    industry: Mapped[str] = mapped_column(String(64))
    stage_id: Mapped[str] = mapped_column(String(64))
    closed: Mapped[int] = mapped_column(Integer, default=0)
    won: Mapped[int] = mapped_column(Integer, default=0)
    refreshed_at: Mapped[datetime] = mapped_column(TS)
    # +1 on every change to the cell or its cards' rows: what in-process copies of the cell check.
    version: Mapped[int] = mapped_column(Integer, default=1)


class CardLiftStatRow(TenantScoped, Base):
    """Of a cell's closed deals, those where the card was used (any use on the deal) and how many won."""

    __tablename__ = "card_lift_stats"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "industry", "stage_id", "card_id"),
        Index("ix_card_lift_stats_tenant_card", "tenant_id", "card_id"),
    )

    industry: Mapped[str] = mapped_column(String(64))
    stage_id: Mapped[str] = mapped_column(String(64))
    card_id: Mapped[str] = mapped_column(String(64))
    used_closed: Mapped[int] = mapped_column(Integer, default=0)
    used_won: Mapped[int] = mapped_column(Integer, default=0)


class RepFirstDealRow(TenantScoped, Base):
    __tablename__ = "rep_first_deals"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "user_id"),
        Index("ix_rep_first_deals_tenant_first", "tenant_id", "first_deal_at"),
    )

    user_id: Mapped[str] = mapped_column(String(128))
    first_deal_at: Mapped[datetime] = mapped_column(TS)


class CardImpressionRow(TenantScoped, Base):
    """One recommendation shown; `recommendation_id` is derived from (user, subject, card, day)."""

    __tablename__ = "card_impressions"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "recommendation_id"),
        Index("ix_card_impressions_tenant_card_shown", "tenant_id", "card_id", "shown_at"),
    )

    recommendation_id: Mapped[str] = mapped_column(String(32))
    card_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(128))
    deal_id: Mapped[str] = mapped_column(String(64), default="")
    lead_id: Mapped[str] = mapped_column(String(64), default="")
    rank: Mapped[int] = mapped_column(Integer)
    exploration: Mapped[bool] = mapped_column(default=False)
    shown_on: Mapped[date] = mapped_column(Date)
    shown_at: Mapped[datetime] = mapped_column(TS)
