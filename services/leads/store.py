"""Tables of the leads service (its own database; no other service reads them).

Descriptive lead data lives in `body` (the proto as JSON); columns hold what is
queried, filtered, or changed by compare-and-set (ownership, status, clocks).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column

from kit.db import NAMING_CONVENTION, Database, TenantScoped
from kit.events import outbox_table, processed_events_table
from kit.resources import Transactions, settings_tables

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Events leave through the outbox in the same transaction as the change they announce.
outbox = outbox_table(metadata)
# Ids of events this service has applied, so redelivered events apply once.
processed_events = processed_events_table(metadata)
# Tenant policies (grading, routing, pool, SLA, intake, follow-up): kit's versioned settings documents.
settings = settings_tables(metadata)

TS = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = metadata


class LeadRow(TenantScoped, Base):
    __tablename__ = "leads"
    # Client-made ids are per tenant: the same id in two tenants is two leads.
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "lead_id"),
        Index("ix_leads_tenant_phone", "tenant_id", "phone"),
        Index("ix_leads_tenant_email", "tenant_id", "email"),
        Index("ix_leads_tenant_owner_status", "tenant_id", "owner_user_id", "status"),
        Index("ix_leads_tenant_status_pool", "tenant_id", "status", "pool_id"),
        Index("ix_leads_tenant_created", "tenant_id", "created_at"),
        # The fuzzy company match's block, and the names nearest a new one in it (sorted neighbourhood),
        # covering what that read returns and filters on (migration 0007).
        Index(
            "ix_leads_tenant_company_near",
            "tenant_id",
            "company_key",
            "company_norm",
            "lead_id",
            "status",
            "display_name",
        ),
    )

    lead_id: Mapped[str] = mapped_column(String(64))
    # Old values loaded on change: the rep load counters (repositories/rep_loads.py) need them.
    status: Mapped[str] = mapped_column(String(16), active_history=True)
    display_name: Mapped[str] = mapped_column(String(300), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    company_norm: Mapped[str] = mapped_column(String(200), default="")
    # Blocking key of the fuzzy company match (first characters of company_norm), indexed.
    company_key: Mapped[str] = mapped_column(String(8), default="")
    region: Mapped[str] = mapped_column(String(128), default="")
    language: Mapped[str] = mapped_column(String(16), default="")
    channel: Mapped[str] = mapped_column(String(32), default="")
    source_code: Mapped[str] = mapped_column(String(64), default="")
    grade: Mapped[str] = mapped_column(String(1), default="")
    score: Mapped[int] = mapped_column(Integer, default=0)
    grading: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    owner_user_id: Mapped[str | None] = mapped_column(String(64), nullable=True, active_history=True)
    team_path: Mapped[str] = mapped_column(String(200), default="")
    supervisor_user_id: Mapped[str] = mapped_column(String(64), default="")
    pool_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    pool_entry_reason: Mapped[str] = mapped_column(String(32), default="")
    assignment_reason: Mapped[str] = mapped_column(String(32), default="")
    assign_time: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    last_decision_id: Mapped[str] = mapped_column(String(26), default="")
    last_activity_time: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    activity_count: Mapped[int] = mapped_column(Integer, default=0)
    # First-response clock.
    sla_state: Mapped[str] = mapped_column(String(24), default="NOT_APPLICABLE")
    sla_grade: Mapped[str] = mapped_column(String(1), default="")
    sla_start: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    sla_due: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    sla_reminder: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    sla_reminded: Mapped[bool] = mapped_column(Boolean, default=False)
    sla_response_time: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    sla_response_activity_id: Mapped[str] = mapped_column(String(64), default="")
    sla_responder: Mapped[str] = mapped_column(String(64), default="")
    sla_business_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    sla_breach_time: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    sla_breach_action: Mapped[str] = mapped_column(String(24), default="")
    sla_reassignments: Mapped[int] = mapped_column(Integer, default=0)
    # Follow-up watch.
    needs_attention: Mapped[bool] = mapped_column(Boolean, default=False)
    recycle_warned: Mapped[bool] = mapped_column(Boolean, default=False)
    # Duplicates, intakes, closing.
    duplicate_review_needed: Mapped[bool] = mapped_column(Boolean, default=False)
    intake_count: Mapped[int] = mapped_column(Integer, default=1)
    merged_into: Mapped[str] = mapped_column(String(64), default="")
    converted_opportunity_id: Mapped[str] = mapped_column(String(64), default="")
    close_time: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(TS)
    updated_at: Mapped[datetime] = mapped_column(TS)
    # Since when the lead has waited (the supervisor board's order): last contact, else assignment, else intake.
    attention_since: Mapped[datetime] = column_property(
        func.coalesce(last_activity_time, assign_time, created_at)
    )


# ListLeads by region + grade, by score best first then lead_id (the keyset's order, so no sort:
# migration 0008); status is covered so the bounded count never reads the table.
Index(
    "ix_leads_tenant_region_grade_score_desc",
    LeadRow.tenant_id,
    LeadRow.region,
    LeadRow.grade,
    LeadRow.score.desc(),
    LeadRow.lead_id,
    LeadRow.status,
)


class IntakeRow(TenantScoped, Base):
    """Every intake, created or merged: the replay key and the record nothing is lost."""

    __tablename__ = "lead_intakes"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "intake_id"),
        Index("ix_lead_intakes_tenant_lead", "tenant_id", "lead_id"),
    )

    intake_id: Mapped[str] = mapped_column(String(64))
    lead_id: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(24))
    receive_time: Mapped[datetime] = mapped_column(TS)
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class DuplicateRow(TenantScoped, Base):
    __tablename__ = "lead_duplicates"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "lead_id", "other_lead_id", "kind"),)

    lead_id: Mapped[str] = mapped_column(String(64))
    other_lead_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)
    display_name: Mapped[str] = mapped_column(String(300), default="")
    state: Mapped[str] = mapped_column(String(16), default="OPEN")
    detect_time: Mapped[datetime] = mapped_column(TS)


class DecisionRow(TenantScoped, Base):
    """Assignment decisions with their full trace; immutable."""

    __tablename__ = "lead_decisions"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "decision_id"),
        Index("ix_lead_decisions_tenant_lead", "tenant_id", "lead_id", "decide_time"),
    )

    decision_id: Mapped[str] = mapped_column(String(26))
    lead_id: Mapped[str] = mapped_column(String(64))
    decide_time: Mapped[datetime] = mapped_column(TS)
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ActivityRow(TenantScoped, Base):
    __tablename__ = "lead_activities"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "activity_id"),
        Index("ix_lead_activities_tenant_lead", "tenant_id", "lead_id", "occur_time"),
    )

    activity_id: Mapped[str] = mapped_column(String(64))
    lead_id: Mapped[str] = mapped_column(String(64))
    actor_user_id: Mapped[str] = mapped_column(String(64))
    activity_type: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    occur_time: Mapped[datetime] = mapped_column(TS)
    first_response: Mapped[bool] = mapped_column(Boolean, default=False)
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(TS)


class BehaviorRow(TenantScoped, Base):
    __tablename__ = "lead_behavior_events"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "event_id"),
        Index("ix_lead_behavior_events_tenant_lead", "tenant_id", "lead_id"),
    )

    event_id: Mapped[str] = mapped_column(String(64))
    lead_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(64))
    occur_time: Mapped[datetime] = mapped_column(TS)
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class RepRow(TenantScoped, Base):
    """Rep routing profiles; `wrr_current` is the smooth round-robin state."""

    __tablename__ = "rep_profiles"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "user_id"),
        Index("ix_rep_profiles_tenant_team", "tenant_id", "team_path"),
    )

    user_id: Mapped[str] = mapped_column(String(64))
    team_path: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    wrr_current: Mapped[int] = mapped_column(Integer, default=0)
    last_assigned_time: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(TS)


class RepLoadRow(TenantScoped, Base):
    """Open (owned, ASSIGNED or WORKING) leads per owner, kept in the transaction that changes a
    lead's owner or status, so routing and the caps read one row per rep instead of counting leads."""

    __tablename__ = "rep_loads"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "user_id"),)

    user_id: Mapped[str] = mapped_column(String(64))
    open_leads: Mapped[int] = mapped_column(Integer, default=0)


class ClaimRow(TenantScoped, Base):
    """Claims per rep and tenant-local day, for the daily claim cap."""

    __tablename__ = "lead_claims"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "decision_id"),
        Index("ix_lead_claims_tenant_user_day", "tenant_id", "user_id", "local_day"),
    )

    decision_id: Mapped[str] = mapped_column(String(26))
    user_id: Mapped[str] = mapped_column(String(64))
    lead_id: Mapped[str] = mapped_column(String(64))
    local_day: Mapped[str] = mapped_column(String(10))
    claim_time: Mapped[datetime] = mapped_column(TS)


class CooldownRow(TenantScoped, Base):
    """A rep that lost a lead may not re-claim it before `until`."""

    __tablename__ = "lead_cooldowns"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "user_id", "lead_id"),)

    user_id: Mapped[str] = mapped_column(String(64))
    lead_id: Mapped[str] = mapped_column(String(64))
    until: Mapped[datetime] = mapped_column(TS)


def transactions(db: Database) -> Transactions:
    """The service's units of work: its database, its outbox, one commit per piece of work."""
    return Transactions(db, source="leads", outbox=outbox)
