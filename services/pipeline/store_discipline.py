"""Tables of the pipeline service: freezing, dwell and process health.

They register on the service's one metadata (`store.Base`), so migrations and
the runtime see them; `store` imports this module at its end.

Freezing itself lives on the deal (`deals.frozen`, the body's `frozen_time`) and
is audited in `deal_changes` (field "frozen"); what is kept here is what the
timers and the weekly health computation need to act once.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Float,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import TenantScoped
from services.pipeline.store import TS, Base


class DwellFlagRow(TenantScoped, Base):
    """A deal outstayed its stage's limit: one row per stage entry (a new entry restarts the clock)."""

    __tablename__ = "deal_dwell_flags"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "deal_id", "stage_id", "stage_entered_at"),)

    deal_id: Mapped[str] = mapped_column(String(64))
    stage_id: Mapped[str] = mapped_column(String(64))
    stage_entered_at: Mapped[datetime] = mapped_column(TS)
    org_path: Mapped[str] = mapped_column(String(200), default="")
    limit_seconds: Mapped[int] = mapped_column(BigInteger)
    # "STAGE" (the model's fixed limit) or "TEAM_P90" (the team's own history).
    limit_source: Mapped[str] = mapped_column(String(16))
    deadline_at: Mapped[datetime] = mapped_column(TS)
    flagged_at: Mapped[datetime] = mapped_column(TS)


class LeadResponseRow(TenantScoped, Base):
    """A lead's first response (leads.FirstResponseRecorded), once per lead: process health's input."""

    __tablename__ = "lead_responses"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "lead_id"),
        Index("ix_lead_responses_tenant_team_time", "tenant_id", "team_path", "responded_at"),
    )

    lead_id: Mapped[str] = mapped_column(String(64))
    team_path: Mapped[str] = mapped_column(String(200), default="")
    responder_user_id: Mapped[str] = mapped_column(String(128), default="")
    # Business time to respond, seconds (integer, so means are plain SQL averages).
    response_seconds: Mapped[int] = mapped_column(BigInteger)
    responded_at: Mapped[datetime] = mapped_column(TS)


class HealthValueRow(TenantScoped, Base):
    """One process metric of one team and week (the team's own history is the anomaly baseline)."""

    __tablename__ = "process_health_values"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "org_path", "week_start", "metric", "stage_id"),)

    org_path: Mapped[str] = mapped_column(String(200))
    week_start: Mapped[date] = mapped_column(Date)
    metric: Mapped[str] = mapped_column(String(48))
    stage_id: Mapped[str] = mapped_column(String(64), default="")
    value: Mapped[float] = mapped_column(Float)
    sample_size: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(TS)


class HealthRunRow(TenantScoped, Base):
    """The weeks whose health was computed by the weekly timer (so a repeated firing does nothing)."""

    __tablename__ = "process_health_runs"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "week_start"),)

    week_start: Mapped[date] = mapped_column(Date)
    computed_at: Mapped[datetime] = mapped_column(TS)
    teams: Mapped[int] = mapped_column(Integer)
    anomalies: Mapped[int] = mapped_column(Integer)


class AnomalyRow(TenantScoped, Base):
    """A flagged metric value, once per (team, week, metric, stage): the ProcessAnomaly message."""

    __tablename__ = "process_anomalies"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "anomaly_id"),
        UniqueConstraint("tenant_id", "org_path", "week_start", "metric", "stage_id"),
        Index("ix_process_anomalies_tenant_detected", "tenant_id", "detected_at", "anomaly_id"),
    )

    anomaly_id: Mapped[str] = mapped_column(String(26))
    org_path: Mapped[str] = mapped_column(String(200))
    week_start: Mapped[date] = mapped_column(Date)
    metric: Mapped[str] = mapped_column(String(48))
    stage_id: Mapped[str] = mapped_column(String(64), default="")
    adverse: Mapped[bool] = mapped_column(Boolean)
    detected_at: Mapped[datetime] = mapped_column(TS)
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the ProcessAnomaly proto


__all__ = ["AnomalyRow", "DwellFlagRow", "HealthRunRow", "HealthValueRow", "LeadResponseRow"]
