"""forecast submissions, manager adjustments, locked calls and accuracy

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def _tenant_index(table: str) -> None:
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{table}_tenant_id"), ["tenant_id"], unique=False)


def upgrade() -> None:
    op.create_table(
        "forecast_submissions",
        sa.Column("submission_id", sa.String(length=64), nullable=False),
        sa.Column("granularity", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subject_key", sa.String(length=200), nullable=False),
        sa.Column("org_path", sa.String(length=200), nullable=False),
        sa.Column("submitter_user_id", sa.String(length=128), nullable=False),
        sa.Column("commit_minor", sa.BigInteger(), nullable=False),
        sa.Column("best_case_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("system_weighted_minor", sa.BigInteger(), nullable=False),
        sa.Column("system_commit_minor", sa.BigInteger(), nullable=False),
        sa.Column("submitted_at", TS, nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "submission_id", name=op.f("pk_forecast_submissions")),
    )
    _tenant_index("forecast_submissions")
    with op.batch_alter_table("forecast_submissions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_forecast_submissions_subject",
            ["tenant_id", "granularity", "period_start", "level", "kind", "subject_key", "submitted_at"],
            unique=False,
        )
        batch_op.create_index("ix_forecast_submissions_org", ["tenant_id", "org_path"], unique=False)

    op.create_table(
        "forecast_submission_changes",
        sa.Column("change_id", sa.String(length=26), nullable=False),
        sa.Column("submission_id", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("old_value", sa.String(length=200), nullable=False),
        sa.Column("new_value", sa.String(length=200), nullable=False),
        sa.Column("changed_by", sa.String(length=128), nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "change_id", name=op.f("pk_forecast_submission_changes")),
    )
    _tenant_index("forecast_submission_changes")
    with op.batch_alter_table("forecast_submission_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_forecast_submission_changes_sub", ["tenant_id", "submission_id", "change_id"], unique=False
        )

    op.create_table(
        "forecast_call_locks",
        sa.Column("lock_id", sa.String(length=26), nullable=False),
        sa.Column("granularity", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("lock_point", sa.String(length=24), nullable=False),
        sa.Column("lock_date", sa.Date(), nullable=False),
        sa.Column("locked_at", TS, nullable=False),
        sa.Column("snapshot_id", sa.String(length=26), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "lock_id", name=op.f("pk_forecast_call_locks")),
        sa.UniqueConstraint(
            "tenant_id",
            "granularity",
            "period_start",
            "lock_point",
            name="uq_forecast_call_locks_point",
        ),
    )
    _tenant_index("forecast_call_locks")

    op.create_table(
        "forecast_locked_calls",
        sa.Column("lock_id", sa.String(length=26), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("subject_key", sa.String(length=200), nullable=False),
        sa.Column("org_path", sa.String(length=200), nullable=False),
        sa.Column("call_submission_id", sa.String(length=64), nullable=False),
        sa.Column("call_by", sa.String(length=128), nullable=False),
        sa.Column("call_commit_minor", sa.BigInteger(), nullable=True),
        sa.Column("call_best_case_minor", sa.BigInteger(), nullable=True),
        sa.Column("adjustment_submission_id", sa.String(length=64), nullable=False),
        sa.Column("adjusted_by", sa.String(length=128), nullable=False),
        sa.Column("adjusted_commit_minor", sa.BigInteger(), nullable=True),
        sa.Column("system_weighted_minor", sa.BigInteger(), nullable=False),
        sa.Column("system_commit_minor", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "lock_id", "level", "subject_key", name=op.f("pk_forecast_locked_calls")
        ),
    )
    _tenant_index("forecast_locked_calls")
    with op.batch_alter_table("forecast_locked_calls", schema=None) as batch_op:
        batch_op.create_index(
            "ix_forecast_locked_calls_lock", ["tenant_id", "lock_id", "level"], unique=False
        )

    op.create_table(
        "forecast_coaching_views",
        sa.Column("coaching_view_id", sa.String(length=26), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("granularity", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("in_coaching_period", sa.Boolean(), nullable=False),
        sa.Column("peer_count", sa.Integer(), nullable=False),
        sa.Column("generated_at", TS, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "coaching_view_id", name=op.f("pk_forecast_coaching_views")),
    )
    _tenant_index("forecast_coaching_views")
    with op.batch_alter_table("forecast_coaching_views", schema=None) as batch_op:
        batch_op.create_index(
            "ix_forecast_coaching_views_user", ["tenant_id", "user_id", "period_start"], unique=False
        )


def downgrade() -> None:
    for table in (
        "forecast_coaching_views",
        "forecast_locked_calls",
        "forecast_call_locks",
        "forecast_submission_changes",
        "forecast_submissions",
    ):
        op.drop_table(table)
