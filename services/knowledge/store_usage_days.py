"""Maintained usage counters per card and UTC day (tables on the service's metadata).

`card_use_days` counts a card's uses (by the day of `used_at`) and the feedback
recorded on it (by the day it was recorded), so a card's 30-day figures
(`SopCardStats`) and the list orders by usage read at most 30 rows per card
instead of its uses. `card_newcomer_days` counts the uses by reps who were
newcomers when they used the card (first deal within `newcomer_tenure` of the use),
so "most used by newcomers this week" reads a week of rows. Both are written in
the transaction that records the use or the feedback (repositories/usage_days.py);
migration 0007 backfills them from `card_uses` and `feedback_duties`.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, Index, Integer, PrimaryKeyConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import TenantScoped
from services.knowledge.store import Base


class CardUseDayRow(TenantScoped, Base):
    __tablename__ = "card_use_days"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "card_id", "day"),
        Index("ix_card_use_days_tenant_day", "tenant_id", "day", "card_id"),
    )

    card_id: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)  # UTC
    uses: Mapped[int] = mapped_column(Integer, default=0)
    fully: Mapped[int] = mapped_column(Integer, default=0)
    partly: Mapped[int] = mapped_column(Integer, default=0)
    not_applicable: Mapped[int] = mapped_column(Integer, default=0)


class CardNewcomerDayRow(TenantScoped, Base):
    __tablename__ = "card_newcomer_days"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "day", "card_id"),
        # The week's row count and total uses without reading rows: the version recommend's copy checks.
        Index("ix_card_newcomer_days_tenant_day_uses", "tenant_id", "day", "uses"),
    )

    day: Mapped[date] = mapped_column(Date)  # UTC
    card_id: Mapped[str] = mapped_column(String(64))
    uses: Mapped[int] = mapped_column(Integer, default=0)
