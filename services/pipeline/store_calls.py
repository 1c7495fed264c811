"""Tables of the pipeline service: forecast submissions, manager adjustments, locked calls and accuracy.

Submissions (calls and managers' adjustments) are stored apart from the system
figure and never deleted: an org move re-homes them and is written to their
history. A lock copies, at a lock point of a period, the latest submission per
subject and level together with the system figure; the copies are immutable
(accuracy and bias are measured against them). They register on the service's
one metadata (`store.Base`), so migrations and the runtime see them; `store`
imports this module at its end.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import TenantScoped
from services.pipeline.store import Base

TS = DateTime(timezone=True)


class SubmissionRow(TenantScoped, Base):
    """A call or an adjustment; the latest per (period, level, kind, subject) is the one in force."""

    __tablename__ = "forecast_submissions"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "submission_id"),
        Index(
            "ix_forecast_submissions_subject",
            "tenant_id",
            "granularity",
            "period_start",
            "level",
            "kind",
            "subject_key",
            "submitted_at",
        ),
        Index("ix_forecast_submissions_org", "tenant_id", "org_path"),
    )

    submission_id: Mapped[str] = mapped_column(String(64))
    granularity: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    level: Mapped[str] = mapped_column(String(16))  # REP, TEAM, CITY, REGION, COMPANY
    kind: Mapped[str] = mapped_column(String(16))  # CALL or ADJUSTMENT
    # The user id for REP level, else the unit's org path.
    subject_key: Mapped[str] = mapped_column(String(200))
    # Where the subject sits now (re-homed when the rep moves).
    org_path: Mapped[str] = mapped_column(String(200), default="")
    submitter_user_id: Mapped[str] = mapped_column(String(128))
    commit_minor: Mapped[int] = mapped_column(BigInteger)
    best_case_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    system_weighted_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    system_commit_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    submitted_at: Mapped[datetime] = mapped_column(TS)
    # SHA-256 of the request as sanitised: a replay with the same id and content is the same submission.
    request_digest: Mapped[str] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the ForecastSubmission proto (note, deal ids...)


class SubmissionChangeRow(TenantScoped, Base):
    """Append-only audit of a submission: created, re-homed (ids are ULIDs: time-ordered)."""

    __tablename__ = "forecast_submission_changes"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "change_id"),
        Index("ix_forecast_submission_changes_sub", "tenant_id", "submission_id", "change_id"),
    )

    change_id: Mapped[str] = mapped_column(String(26))
    submission_id: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str] = mapped_column(String(200), default="")
    new_value: Mapped[str] = mapped_column(String(200), default="")
    changed_by: Mapped[str] = mapped_column(String(128))
    changed_at: Mapped[datetime] = mapped_column(TS)
    reason: Mapped[str] = mapped_column(String(300), default="")


class CallLockRow(TenantScoped, Base):
    """One lock of one period at one lock point: taken once (the unique key makes replays no-ops)."""

    __tablename__ = "forecast_call_locks"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "lock_id"),
        # Named explicitly: the convention's name is past PostgreSQL's 63 characters.
        UniqueConstraint(
            "tenant_id", "granularity", "period_start", "lock_point", name="uq_forecast_call_locks_point"
        ),
    )

    lock_id: Mapped[str] = mapped_column(String(26))
    granularity: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    lock_point: Mapped[str] = mapped_column(String(24))
    lock_date: Mapped[date] = mapped_column(Date)  # tenant-calendar date of locked_at
    locked_at: Mapped[datetime] = mapped_column(TS)
    # The snapshot taken with the lock: the system figure and each deal as it stood.
    snapshot_id: Mapped[str] = mapped_column(String(26))
    currency: Mapped[str] = mapped_column(String(3))


class LockedCallRow(TenantScoped, Base):
    """A subject's call at a lock: the latest call and adjustment then, beside the system figure."""

    __tablename__ = "forecast_locked_calls"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "lock_id", "level", "subject_key"),
        Index("ix_forecast_locked_calls_lock", "tenant_id", "lock_id", "level"),
    )

    lock_id: Mapped[str] = mapped_column(String(26))
    level: Mapped[str] = mapped_column(String(16))
    subject_key: Mapped[str] = mapped_column(String(200))
    org_path: Mapped[str] = mapped_column(String(200), default="")
    call_submission_id: Mapped[str] = mapped_column(String(64), default="")
    call_by: Mapped[str] = mapped_column(String(128), default="")
    call_commit_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    call_best_case_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    adjustment_submission_id: Mapped[str] = mapped_column(String(64), default="")
    adjusted_by: Mapped[str] = mapped_column(String(128), default="")
    adjusted_commit_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The system figure of the subject at the lock (from the lock's snapshot): weighted open + won,
    # and open unfrozen COMMIT + won.
    system_weighted_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    system_commit_minor: Mapped[int] = mapped_column(BigInteger, default=0)


class CoachingViewRow(TenantScoped, Base):
    """A coaching view shown to a rep (its id is quoted by the submission that follows it)."""

    __tablename__ = "forecast_coaching_views"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "coaching_view_id"),
        Index("ix_forecast_coaching_views_user", "tenant_id", "user_id", "period_start"),
    )

    coaching_view_id: Mapped[str] = mapped_column(String(26))
    user_id: Mapped[str] = mapped_column(String(128))
    granularity: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[date] = mapped_column(Date)
    in_coaching_period: Mapped[bool] = mapped_column(Boolean)
    peer_count: Mapped[int] = mapped_column(Integer, default=0)
    generated_at: Mapped[datetime] = mapped_column(TS)


__all__ = ["CallLockRow", "CoachingViewRow", "LockedCallRow", "SubmissionChangeRow", "SubmissionRow"]
