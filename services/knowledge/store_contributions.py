"""Contributions (field cases reps submit) and the points ledger.

A contribution's content is the Contribution proto in `body`; review state and
what lists filter on are columns. Points are an append-only ledger: each entry
has a `source_key` unique per tenant ("accepted:<contribution>", "used:<use>",
"praised:<use>", "adjust:<request>"...), so an event or a request delivered twice
books once. The leaderboard is a SQL sum over it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, LargeBinary, PrimaryKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import TenantScoped
from services.knowledge.store import Base

TS = DateTime(timezone=True)


class ContributionRow(TenantScoped, Base):
    __tablename__ = "contributions"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "contribution_id"),
        Index("ix_contributions_tenant_status_submitted", "tenant_id", "status", "submitted_at"),
        Index("ix_contributions_tenant_contributor", "tenant_id", "contributor_user_id", "submitted_at"),
        Index("ix_contributions_tenant_card", "tenant_id", "published_card_id"),
    )

    contribution_id: Mapped[str] = mapped_column(String(64))
    contributor_user_id: Mapped[str] = mapped_column(String(128))
    # The contributor's org path at submission (the leaderboard's org filter).
    contributor_org: Mapped[str] = mapped_column(String(200))
    kind: Mapped[int] = mapped_column(Integer)  # ContributionKind
    status: Mapped[int] = mapped_column(Integer)  # ContributionStatus
    title: Mapped[str] = mapped_column(String(200))
    submitted_at: Mapped[datetime] = mapped_column(TS)  # device time (offline-safe)
    received_at: Mapped[datetime] = mapped_column(TS)  # server time
    reviewer_user_id: Mapped[str] = mapped_column(String(128), default="")
    reviewed_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    rejection_reason: Mapped[int] = mapped_column(Integer, default=0)
    review_comment: Mapped[str] = mapped_column(String(2000), default="")
    published_card_id: Mapped[str] = mapped_column(String(64), default="")
    # SHA-256 of the submission as sanitised: a replay with the same id and content is the same case.
    request_digest: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(TS)
    updated_by: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer, default=1)  # the etag
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the Contribution proto, server-set fields cleared


class PointEntryRow(TenantScoped, Base):
    __tablename__ = "point_entries"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "entry_id"),
        UniqueConstraint("tenant_id", "source_key"),
        Index("ix_point_entries_tenant_user_created", "tenant_id", "user_id", "created_at"),
        Index("ix_point_entries_tenant_created", "tenant_id", "created_at"),
        Index("ix_point_entries_tenant_card_reason", "tenant_id", "card_id", "reason", "created_at"),
    )

    entry_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(128))
    user_org: Mapped[str] = mapped_column(String(200))
    points: Mapped[int] = mapped_column(Integer)
    reason: Mapped[int] = mapped_column(Integer)  # PointReason
    contribution_id: Mapped[str] = mapped_column(String(64), default="")
    card_id: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str] = mapped_column(String(1000), default="")
    source_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(128))
