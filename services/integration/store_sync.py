"""Sync jobs, their runs, the records they have seen, lag alerts and who was asked to explain.

A job's cursor and its progress columns change only in the transaction that
stages the mapped events of the page they describe, so a cursor never points
past records that are not durable.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from kit.db import TenantScoped
from services.integration.store import Base

TS = DateTime(timezone=True)


class SyncJobRow(TenantScoped, Base):
    __tablename__ = "sync_jobs"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "sync_job_id"),
        # The contract: one job per connector and data kind.
        UniqueConstraint("tenant_id", "connector_id", "data_kind"),
    )

    sync_job_id: Mapped[str] = mapped_column(String(64))
    connector_id: Mapped[str] = mapped_column(String(64))
    data_kind: Mapped[int] = mapped_column(Integer)
    display_name: Mapped[str] = mapped_column(String(200))
    owner_user_id: Mapped[str] = mapped_column(String(128), default="")
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    # 0 = the tenant default (IntegrationSettings.default_lag_alert_threshold, 24 h).
    threshold_seconds: Mapped[int] = mapped_column(Integer, default=0)
    # The SyncSchedule proto.
    schedule: Mapped[bytes] = mapped_column(LargeBinary)
    # --- progress, written with the events of the page it describes
    cursor: Mapped[str] = mapped_column(String(512), default="")
    newest_record_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    # Our copy is complete up to here: the end of a run that reached the source's end,
    # else the newest record synced. Lag = now - complete_until.
    complete_until: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    last_run_id: Mapped[str] = mapped_column(String(26), default="")
    last_run_state: Mapped[int] = mapped_column(Integer, default=0)
    # What the last completed run said: the source had nothing newer / nothing new came.
    source_exhausted: Mapped[bool] = mapped_column(Boolean, default=False)
    last_fetched: Mapped[int] = mapped_column(Integer, default=0)
    last_progress: Mapped[bool] = mapped_column(Boolean, default=False)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    # The run in progress (one at a time), and the open lag alert.
    running_run_id: Mapped[str] = mapped_column(String(26), default="")
    open_lag_alert_id: Mapped[str] = mapped_column(String(26), default="")
    created_at: Mapped[datetime] = mapped_column(TS)
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(TS)
    updated_by: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer, default=1)
    # SHA-256 of the create request: an identical replay is the same job.
    request_digest: Mapped[str] = mapped_column(String(64))


class SyncRunRow(TenantScoped, Base):
    __tablename__ = "sync_runs"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "run_id"),
        Index("ix_sync_runs_job", "tenant_id", "sync_job_id", "started_at"),
    )

    run_id: Mapped[str] = mapped_column(String(26))
    sync_job_id: Mapped[str] = mapped_column(String(64))
    connector_id: Mapped[str] = mapped_column(String(64))
    data_kind: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[int] = mapped_column(Integer)
    state: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(TS)
    ended_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    fetched: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    events: Mapped[int] = mapped_column(Integer, default=0)
    cursor_before: Mapped[str] = mapped_column(String(512), default="")
    cursor_after: Mapped[str] = mapped_column(String(512), default="")
    # A full re-sync reads from here, ignoring the cursor.
    resync_since: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    error_code: Mapped[int] = mapped_column(Integer, default=0)
    error_message: Mapped[str] = mapped_column(String(500), default="")
    # JSON list of {"external_id", "message"}, at most 20.
    record_errors: Mapped[str] = mapped_column(Text, default="[]")
    triggered_by: Mapped[str] = mapped_column(String(128), default="")
    newest_record_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    source_exhausted: Mapped[bool] = mapped_column(Boolean, default=False)


class SyncRecordRow(TenantScoped, Base):
    """The last version of each external record a job synced: created / updated / unchanged,
    and for STOCK the record itself (the snapshot CheckStock falls back to)."""

    __tablename__ = "sync_records"
    __table_args__ = (PrimaryKeyConstraint("tenant_id", "connector_id", "data_kind", "external_id"),)

    connector_id: Mapped[str] = mapped_column(String(64))
    data_kind: Mapped[int] = mapped_column(Integer)
    external_id: Mapped[str] = mapped_column(String(256))
    source_updated_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    synced_at: Mapped[datetime] = mapped_column(TS)
    run_id: Mapped[str] = mapped_column(String(26))
    body: Mapped[str] = mapped_column(Text, default="")


class SyncLagAlertRow(TenantScoped, Base):
    __tablename__ = "sync_lag_alerts"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "alert_id"),
        Index("ix_sync_lag_alerts_job", "tenant_id", "sync_job_id", "detected_at"),
    )

    alert_id: Mapped[str] = mapped_column(String(26))
    sync_job_id: Mapped[str] = mapped_column(String(64))
    connector_id: Mapped[str] = mapped_column(String(64))
    data_kind: Mapped[int] = mapped_column(Integer)
    state: Mapped[int] = mapped_column(Integer)
    status_at_detection: Mapped[int] = mapped_column(Integer, default=0)
    threshold_seconds: Mapped[int] = mapped_column(Integer)
    lag_seconds: Mapped[int] = mapped_column(Integer)
    max_lag_seconds: Mapped[int] = mapped_column(Integer)
    last_success_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
    detected_at: Mapped[datetime] = mapped_column(TS)
    resolved_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)


class SyncLagRequestRow(TenantScoped, Base):
    """One user asked to explain a lag alert, and their answer."""

    __tablename__ = "sync_lag_requests"
    __table_args__ = (
        PrimaryKeyConstraint("tenant_id", "alert_id", "user_id"),
        Index("ix_sync_lag_requests_user", "tenant_id", "user_id"),
    )

    alert_id: Mapped[str] = mapped_column(String(26))
    user_id: Mapped[str] = mapped_column(String(128))
    deal_ids: Mapped[str] = mapped_column(Text, default="")
    requested_at: Mapped[datetime] = mapped_column(TS)
    due_at: Mapped[datetime] = mapped_column(TS)
    reason: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(String(1000), default="")
    explained_at: Mapped[datetime | None] = mapped_column(TS, nullable=True)
