"""Tables of the pipeline service: targets, their cascade and weekly calibrations.

They register on the service's one metadata (`store.Base`), so migrations and
the runtime see them; `store` imports this module at its end.

Money is integer minor units in the tenant's base currency (`currency` kept beside
it). Everything a cascade, a forecast or a reason count sums or filters on is a
column; a calibration also keeps its TargetCalibration proto (deal ids, notes).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
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


class TargetRow(TenantScoped, Base):
    """One node of the cascade for one period (a unit's target, or a rep's)."""

    __tablename__ = "targets"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "target_id"),
        # One target per unit ("o:<org path>") or rep ("u:<user id>") and period.
        UniqueConstraint("tenant_id", "granularity", "period_start", "unit_key"),
        Index("ix_targets_tenant_period_org", "tenant_id", "granularity", "period_start", "org_path"),
        Index("ix_targets_tenant_parent", "tenant_id", "parent_target_id"),
    )

    target_id: Mapped[str] = mapped_column(String(64))
    granularity: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    level: Mapped[str] = mapped_column(String(16))
    org_path: Mapped[str] = mapped_column(String(200), default="")
    user_id: Mapped[str] = mapped_column(String(128), default="")  # the rep of a REP target
    unit_key: Mapped[str] = mapped_column(String(210))
    owner_user_id: Mapped[str] = mapped_column(String(128))
    # Found by org path in the same period; re-pointed when a unit target is added in between.
    parent_target_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    currency: Mapped[str] = mapped_column(String(3))
    assigned_minor: Mapped[int] = mapped_column(BigInteger)
    committed_minor: Mapped[int] = mapped_column(BigInteger)
    challenge_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    signed_by: Mapped[str] = mapped_column(String(128), default="")
    signed_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    signed_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    statement: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(TS)
    updated_by: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer, default=1)
    # SHA-256 of the create request as sanitised: a replay with the same id and content is the same target.
    request_digest: Mapped[str] = mapped_column(String(64))


class TargetChangeRow(TenantScoped, Base):
    """The append-only audit of a target: created, amounts and owner changed, signed, signature voided."""

    __tablename__ = "target_changes"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "change_id"),
        Index("ix_target_changes_tenant_target", "tenant_id", "target_id", "change_id"),
    )

    change_id: Mapped[str] = mapped_column(String(26))
    target_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    field: Mapped[str] = mapped_column(String(32), default="")
    old_value: Mapped[str] = mapped_column(String(200), default="")
    new_value: Mapped[str] = mapped_column(String(200), default="")
    changed_by: Mapped[str] = mapped_column(String(128))
    changed_at: Mapped[datetime] = mapped_column(TS)


class TargetCalibrationRow(TenantScoped, Base):
    """A weekly calibration of a target: the gap and its structured reason (one per target and week)."""

    __tablename__ = "target_calibrations"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "calibration_id"),
        UniqueConstraint("tenant_id", "target_id", "week_start"),
        Index("ix_target_calibrations_tenant_week", "tenant_id", "week_start"),
    )

    calibration_id: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[str] = mapped_column(String(64))
    week_start: Mapped[date] = mapped_column(Date)
    # Copied from the target, so reasons are counted per level and scope without a join.
    granularity: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[date] = mapped_column(Date)
    level: Mapped[str] = mapped_column(String(16))
    org_path: Mapped[str] = mapped_column(String(200), default="")
    user_id: Mapped[str] = mapped_column(String(128), default="")
    owner_user_id: Mapped[str] = mapped_column(String(128))
    currency: Mapped[str] = mapped_column(String(3))
    forecast_minor: Mapped[int] = mapped_column(BigInteger)
    target_minor: Mapped[int] = mapped_column(BigInteger)
    gap_minor: Mapped[int] = mapped_column(BigInteger)
    reason_type: Mapped[str] = mapped_column(String(48))
    reason_detail: Mapped[str] = mapped_column(String(2000), default="")  # clustered by keywords
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(128))
    request_digest: Mapped[str] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the TargetCalibration proto (notes, deal ids)


__all__ = ["TargetCalibrationRow", "TargetChangeRow", "TargetRow"]
