"""Card uses and feedback duties: tables on the service's metadata.

Every RecordSopCardUse writes a row of `card_uses` (usage counts read them).
The first use of a card by a rep on a deal or lead opens a row of
`feedback_duties`; later uses of the same (rep, card, subject) point at that duty
(`card_uses.duty_id`) and open none: the unique constraint on
(tenant, user, card, deal, lead) holds it even under concurrent requests. The
subject columns are "" rather than NULL when unset so the constraint bites.

The duty carries the feedback (one per duty): rating, reason, late flag. Other
areas (outcomes and lift, monthly iteration, points) read these tables; columns
are only ever added, never renamed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, PrimaryKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import TenantScoped
from services.knowledge.store import Base

TS = DateTime(timezone=True)


class CardUseRow(TenantScoped, Base):
    """One use of a card by a rep on a deal or lead (exactly one of deal_id / lead_id is set)."""

    __tablename__ = "card_uses"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "use_id"),
        Index("ix_card_uses_tenant_card_used", "tenant_id", "card_id", "used_at"),
        Index("ix_card_uses_tenant_user_used", "tenant_id", "user_id", "used_at"),
        Index("ix_card_uses_tenant_deal", "tenant_id", "deal_id"),
        Index("ix_card_uses_tenant_used", "tenant_id", "used_at"),
    )

    use_id: Mapped[str] = mapped_column(String(64))  # client ULID
    card_id: Mapped[str] = mapped_column(String(64))
    card_version: Mapped[int] = mapped_column(Integer)  # the published version live at use
    user_id: Mapped[str] = mapped_column(String(128))  # the rep
    org_path: Mapped[str] = mapped_column(String(256), default="")  # the rep's org unit at use
    deal_id: Mapped[str] = mapped_column(String(64), default="")
    lead_id: Mapped[str] = mapped_column(String(64), default="")
    customer_id: Mapped[str] = mapped_column(String(64), default="")
    industry: Mapped[str] = mapped_column(String(64), default="")
    stage_id: Mapped[str] = mapped_column(String(64), default="")
    recommendation_id: Mapped[str] = mapped_column(String(64), default="")
    used_at: Mapped[datetime] = mapped_column(TS)  # device time (validated), else receive time
    recorded_at: Mapped[datetime] = mapped_column(TS)  # server receive time
    # The duty this use belongs to: its own use_id when it opened one, else the earlier use's.
    duty_id: Mapped[str] = mapped_column(String(64))
    # SHA-256 of the request as sanitised: a replay with the same use_id and content is the same use.
    request_digest: Mapped[str] = mapped_column(String(64))


class FeedbackDutyRow(TenantScoped, Base):
    """The feedback a rep owes on a card used on a deal or lead, and the feedback once given."""

    __tablename__ = "feedback_duties"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "duty_id"),
        # One duty per (rep, card, deal or lead).
        UniqueConstraint("tenant_id", "user_id", "card_id", "deal_id", "lead_id"),
        Index("ix_feedback_duties_tenant_user_state_due", "tenant_id", "user_id", "state", "due_at"),
        Index("ix_feedback_duties_tenant_state_due", "tenant_id", "state", "due_at"),
        Index("ix_feedback_duties_tenant_card_recorded", "tenant_id", "card_id", "recorded_at"),
    )

    duty_id: Mapped[str] = mapped_column(String(64))  # = use_id of the use that opened it
    use_id: Mapped[str] = mapped_column(String(64))  # that first use
    card_id: Mapped[str] = mapped_column(String(64))
    card_version: Mapped[int] = mapped_column(Integer)  # version used by the first use
    card_title: Mapped[str] = mapped_column(String(200), default="")  # title at use, for to-do lists
    user_id: Mapped[str] = mapped_column(String(128))  # who owes the feedback
    org_path: Mapped[str] = mapped_column(String(256), default="")  # supervisors see their subtree
    deal_id: Mapped[str] = mapped_column(String(64), default="")
    lead_id: Mapped[str] = mapped_column(String(64), default="")
    industry: Mapped[str] = mapped_column(String(64), default="")
    stage_id: Mapped[str] = mapped_column(String(64), default="")
    used_at: Mapped[datetime] = mapped_column(TS)
    due_at: Mapped[datetime] = mapped_column(TS)
    state: Mapped[int] = mapped_column(Integer)  # FeedbackState: PENDING, OVERDUE, SUBMITTED
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    reminded_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)  # last reminder
    overdue_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)  # marked overdue
    # The feedback (rating 0 = none yet).
    rating: Mapped[int] = mapped_column(Integer, default=0)  # FeedbackRating
    reason_category: Mapped[int] = mapped_column(Integer, default=0)  # FeedbackReasonCategory
    reason: Mapped[str] = mapped_column(String(1000), default="")
    submitted_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)  # device time
    recorded_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)  # server time
    late: Mapped[bool] = mapped_column(default=False)
    workflow_id: Mapped[str] = mapped_column(String(200), default="")  # the duty's timer
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)
    version: Mapped[int] = mapped_column(Integer, default=1)
