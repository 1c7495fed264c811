"""sync jobs, runs, records seen, lag alerts and explanation requests

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sync_jobs",
        sa.Column("sync_job_id", sa.String(length=64), nullable=False),
        sa.Column("connector_id", sa.String(length=64), nullable=False),
        sa.Column("data_kind", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("owner_user_id", sa.String(length=128), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("threshold_seconds", sa.Integer(), nullable=False),
        sa.Column("schedule", sa.LargeBinary(), nullable=False),
        sa.Column("cursor", sa.String(length=512), nullable=False),
        sa.Column("newest_record_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("complete_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_id", sa.String(length=26), nullable=False),
        sa.Column("last_run_state", sa.Integer(), nullable=False),
        sa.Column("source_exhausted", sa.Boolean(), nullable=False),
        sa.Column("last_fetched", sa.Integer(), nullable=False),
        sa.Column("last_progress", sa.Boolean(), nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("running_run_id", sa.String(length=26), nullable=False),
        sa.Column("open_lag_alert_id", sa.String(length=26), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "sync_job_id", name=op.f("pk_sync_jobs")),
        sa.UniqueConstraint(
            "tenant_id",
            "connector_id",
            "data_kind",
            name=op.f("uq_sync_jobs_tenant_id_connector_id_data_kind"),
        ),
    )
    with op.batch_alter_table("sync_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_jobs_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "sync_lag_alerts",
        sa.Column("alert_id", sa.String(length=26), nullable=False),
        sa.Column("sync_job_id", sa.String(length=64), nullable=False),
        sa.Column("connector_id", sa.String(length=64), nullable=False),
        sa.Column("data_kind", sa.Integer(), nullable=False),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("status_at_detection", sa.Integer(), nullable=False),
        sa.Column("threshold_seconds", sa.Integer(), nullable=False),
        sa.Column("lag_seconds", sa.Integer(), nullable=False),
        sa.Column("max_lag_seconds", sa.Integer(), nullable=False),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "alert_id", name=op.f("pk_sync_lag_alerts")),
    )
    with op.batch_alter_table("sync_lag_alerts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sync_lag_alerts_job", ["tenant_id", "sync_job_id", "detected_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_sync_lag_alerts_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "sync_lag_requests",
        sa.Column("alert_id", sa.String(length=26), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("deal_ids", sa.Text(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(length=1000), nullable=False),
        sa.Column("explained_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "alert_id", "user_id", name=op.f("pk_sync_lag_requests")),
    )
    with op.batch_alter_table("sync_lag_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_lag_requests_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("ix_sync_lag_requests_user", ["tenant_id", "user_id"], unique=False)

    op.create_table(
        "sync_records",
        sa.Column("connector_id", sa.String(length=64), nullable=False),
        sa.Column("data_kind", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=256), nullable=False),
        sa.Column("source_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(length=26), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "connector_id", "data_kind", "external_id", name=op.f("pk_sync_records")
        ),
    )
    with op.batch_alter_table("sync_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sync_records_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "sync_runs",
        sa.Column("run_id", sa.String(length=26), nullable=False),
        sa.Column("sync_job_id", sa.String(length=64), nullable=False),
        sa.Column("connector_id", sa.String(length=64), nullable=False),
        sa.Column("data_kind", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.Integer(), nullable=False),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("fetched", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("cursor_before", sa.String(length=512), nullable=False),
        sa.Column("cursor_after", sa.String(length=512), nullable=False),
        sa.Column("resync_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_code", sa.Integer(), nullable=False),
        sa.Column("error_message", sa.String(length=500), nullable=False),
        sa.Column("record_errors", sa.Text(), nullable=False),
        sa.Column("triggered_by", sa.String(length=128), nullable=False),
        sa.Column("newest_record_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_exhausted", sa.Boolean(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "run_id", name=op.f("pk_sync_runs")),
    )
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.create_index("ix_sync_runs_job", ["tenant_id", "sync_job_id", "started_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_sync_runs_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    op.drop_table("sync_runs")
    op.drop_table("sync_records")
    op.drop_table("sync_lag_requests")
    op.drop_table("sync_lag_alerts")
    op.drop_table("sync_jobs")
