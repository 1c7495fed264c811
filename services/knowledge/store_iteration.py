"""Monthly iteration reports: one row per tenant and month (a dry run has its own slot).

`slot` is "YYYY-MM" for a real run and "dry:<report_id>" for a dry run, unique per
tenant: so a month has one report, which a re-run replaces while it is only
proposed, and dry runs never collide with it. `body` is the IterationReport proto
(per-card rows and actions); the columns hold what lists and the state machine read.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, LargeBinary, PrimaryKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import TenantScoped
from services.knowledge.store import Base

TS = DateTime(timezone=True)


class IterationReportRow(TenantScoped, Base):
    __tablename__ = "iteration_reports"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "report_id"),
        UniqueConstraint("tenant_id", "slot"),
        Index("ix_iteration_reports_tenant_month", "tenant_id", "year", "month"),
    )

    report_id: Mapped[str] = mapped_column(String(26))
    slot: Mapped[str] = mapped_column(String(40))
    year: Mapped[int] = mapped_column(Integer)
    month: Mapped[int] = mapped_column(Integer)
    state: Mapped[int] = mapped_column(Integer)  # IterationReportState
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(128))
    completed_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    applied_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    applied_by: Mapped[str] = mapped_column(String(128), default="")
    version: Mapped[int] = mapped_column(Integer, default=1)  # the etag; compare-and-set on apply
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the IterationReport proto
