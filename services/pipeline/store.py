"""Tables of the pipeline service (its own database; no other service reads them).

Deals keep what is queried, filtered, summed or compared-and-set in columns
(owner, org path, stage, status, money as integer minor units + currency, close
date, version) and the rest of the Deal proto in `body`. The change history and
gate reviews are append-only. The stage model is a versioned tenant settings
document (kit's one settings store: every version kept).
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
    MetaData,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.db import NAMING_CONVENTION, Database, TenantScoped
from kit.events import outbox_table, processed_events_table
from kit.resources import Transactions, settings_tables

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Events leave through the outbox in the same transaction as the change they announce.
outbox = outbox_table(metadata)
# Ids of events this service has applied, so redelivered events apply once.
processed_events = processed_events_table(metadata)
# The stage model (and later the pipeline settings): kit's versioned settings documents.
settings = settings_tables(metadata)

TS = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = metadata


class DealRow(TenantScoped, Base):
    __tablename__ = "deals"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "deal_id"),
        # One deal per converted lead (NULL for deals not from a lead: NULLs never collide).
        UniqueConstraint("tenant_id", "lead_id"),
        Index("ix_deals_tenant_owner_status", "tenant_id", "owner_user_id", "status"),
        Index("ix_deals_tenant_org_status", "tenant_id", "org_path", "status"),
        Index("ix_deals_tenant_status_close", "tenant_id", "status", "expected_close_date"),
        Index("ix_deals_tenant_updated", "tenant_id", "updated_at"),
        Index("ix_deals_tenant_status_closed", "tenant_id", "status", "closed_at"),
    )

    deal_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    customer_id: Mapped[str] = mapped_column(String(64), default="")
    customer_name: Mapped[str] = mapped_column(String(300))
    industry: Mapped[str] = mapped_column(String(64), default="")
    owner_user_id: Mapped[str] = mapped_column(String(64))
    org_path: Mapped[str] = mapped_column(String(200), default="")
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    weighted_minor: Mapped[int] = mapped_column(BigInteger)
    stage_id: Mapped[str] = mapped_column(String(64))
    stage_model_version: Mapped[int] = mapped_column(Integer)
    probability: Mapped[int] = mapped_column(Integer)
    stage_probability: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    forecast_category: Mapped[str] = mapped_column(String(32))
    expected_close_date: Mapped[date] = mapped_column(Date)
    lead_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    origin: Mapped[str] = mapped_column(String(32))
    frozen: Mapped[bool] = mapped_column(Boolean, default=False)
    # Outcome, in columns so "why we lose" and closed periods are counted in SQL.
    closed_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    lost_category: Mapped[str] = mapped_column(String(48), default="")
    lost_reason_code: Mapped[str] = mapped_column(String(64), default="")
    lost_competitor: Mapped[str] = mapped_column(String(200), default="")
    lost_stage_id: Mapped[str] = mapped_column(String(64), default="")
    stage_entered_at: Mapped[datetime] = mapped_column(TS)
    last_confirm_at: Mapped[datetime] = mapped_column(TS)
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(TS)
    updated_by: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer, default=1)
    # SHA-256 of the create request as sanitised: a replay with the same id and content is the same deal.
    request_digest: Mapped[str] = mapped_column(String(64))
    # The Deal proto: working data (qualification, line items, checklist...); columns win over it.
    body: Mapped[bytes] = mapped_column(LargeBinary)


class EvidenceRow(TenantScoped, Base):
    __tablename__ = "deal_evidence"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "evidence_id"),
        Index("ix_deal_evidence_tenant_deal", "tenant_id", "deal_id"),
    )

    evidence_id: Mapped[str] = mapped_column(String(64))
    deal_id: Mapped[str] = mapped_column(String(64))
    evidence_type_id: Mapped[str] = mapped_column(String(64))
    stage_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(128))
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the DealEvidence proto


class GateReviewRow(TenantScoped, Base):
    """Every MoveStage / MarkWon review, passed or refused (append-only)."""

    __tablename__ = "gate_reviews"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "review_id"),
        Index("ix_gate_reviews_tenant_deal", "tenant_id", "deal_id", "review_id"),
    )

    review_id: Mapped[str] = mapped_column(String(26))
    deal_id: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(TS)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the GateReview proto


class DealChangeRow(TenantScoped, Base):
    """The append-only change history of tracked deal fields (ids are ULIDs: time-ordered)."""

    __tablename__ = "deal_changes"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "change_id"),
        Index("ix_deal_changes_tenant_deal", "tenant_id", "deal_id", "change_id"),
    )

    change_id: Mapped[str] = mapped_column(String(26))
    deal_id: Mapped[str] = mapped_column(String(64))
    field: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str] = mapped_column(String(200))
    new_value: Mapped[str] = mapped_column(String(200))
    changed_by: Mapped[str] = mapped_column(String(128))
    changed_at: Mapped[datetime] = mapped_column(TS)


class MemberProfileRow(TenantScoped, Base):
    """Who is where in the sales org (the directory's view): the owner's team places a deal."""

    __tablename__ = "member_profiles"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "user_id"),
        Index("ix_member_profiles_tenant_org", "tenant_id", "org_path"),
    )

    user_id: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str] = mapped_column(String(200))
    org_path: Mapped[str] = mapped_column(String(200), default="")
    manager_user_id: Mapped[str] = mapped_column(String(128), default="")
    # ",legal,gm," so one role is matched exactly with LIKE (the roles are keys, no commas).
    approver_roles: Mapped[str] = mapped_column(String(500), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(TS)
    updated_by: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer, default=1)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the MemberProfile proto


class SnapshotRow(TenantScoped, Base):
    """A forecast frozen at a moment (the ForecastSnapshot message with every row), kept for accuracy."""

    __tablename__ = "forecast_snapshots"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "snapshot_id"),
        # A replayed TakeForecastSnapshot (same request_id) is the same snapshot; NULL for scheduled ones.
        UniqueConstraint("tenant_id", "request_id"),
        Index("ix_forecast_snapshots_tenant_period", "tenant_id", "granularity", "period_start"),
    )

    snapshot_id: Mapped[str] = mapped_column(String(26))
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    granularity: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    take_time: Mapped[datetime] = mapped_column(TS)
    take_date: Mapped[date] = mapped_column(Date)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the ForecastSnapshot proto, rows included


class SnapshotDealRow(TenantScoped, Base):
    """Each deal of a snapshot as it stood, so flows between two snapshots are a join, not a replay."""

    __tablename__ = "forecast_snapshot_deals"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "snapshot_id", "deal_id"),)

    snapshot_id: Mapped[str] = mapped_column(String(26))
    deal_id: Mapped[str] = mapped_column(String(64))
    owner_user_id: Mapped[str] = mapped_column(String(64))
    org_path: Mapped[str] = mapped_column(String(200))
    stage_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    forecast_category: Mapped[str] = mapped_column(String(32))
    frozen: Mapped[bool] = mapped_column(Boolean)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    weighted_minor: Mapped[int] = mapped_column(BigInteger)
    probability: Mapped[int] = mapped_column(Integer)
    expected_close_date: Mapped[date] = mapped_column(Date)


def transactions(db: Database) -> Transactions:
    """The service's units of work: its database, its outbox, one commit per piece of work."""
    return Transactions(db, source="pipeline", outbox=outbox)


# Each area's tables live in their own module on the same metadata; importing them
# here is what makes `store.metadata` complete for the runtime and the migrations.
from services.pipeline import (  # noqa: E402
    store_approvals,
    store_calls,
    store_customers,
    store_discipline,
    store_targets,
)

__all__ = ["store_approvals", "store_calls", "store_customers", "store_discipline", "store_targets"]
