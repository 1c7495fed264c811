"""targets, their cascade and weekly calibrations

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "targets",
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("granularity", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("org_path", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("unit_key", sa.String(length=210), nullable=False),
        sa.Column("owner_user_id", sa.String(length=128), nullable=False),
        sa.Column("parent_target_id", sa.String(length=64), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("assigned_minor", sa.BigInteger(), nullable=False),
        sa.Column("committed_minor", sa.BigInteger(), nullable=False),
        sa.Column("challenge_minor", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("signed_by", sa.String(length=128), nullable=False),
        sa.Column("signed_at", TS, nullable=True),
        sa.Column("signed_minor", sa.BigInteger(), nullable=True),
        sa.Column("statement", sa.String(length=2000), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "target_id", name=op.f("pk_targets")),
        sa.UniqueConstraint(
            "tenant_id",
            "granularity",
            "period_start",
            "unit_key",
            name=op.f("uq_targets_tenant_id_granularity_period_start_unit_key"),
        ),
    )
    with op.batch_alter_table("targets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_targets_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            "ix_targets_tenant_period_org",
            ["tenant_id", "granularity", "period_start", "org_path"],
            unique=False,
        )
        batch_op.create_index("ix_targets_tenant_parent", ["tenant_id", "parent_target_id"], unique=False)

    op.create_table(
        "target_changes",
        sa.Column("change_id", sa.String(length=26), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("old_value", sa.String(length=200), nullable=False),
        sa.Column("new_value", sa.String(length=200), nullable=False),
        sa.Column("changed_by", sa.String(length=128), nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "change_id", name=op.f("pk_target_changes")),
    )
    with op.batch_alter_table("target_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_target_changes_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            "ix_target_changes_tenant_target", ["tenant_id", "target_id", "change_id"], unique=False
        )

    op.create_table(
        "target_calibrations",
        sa.Column("calibration_id", sa.String(length=64), nullable=False),
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("granularity", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("org_path", sa.String(length=200), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("owner_user_id", sa.String(length=128), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("forecast_minor", sa.BigInteger(), nullable=False),
        sa.Column("target_minor", sa.BigInteger(), nullable=False),
        sa.Column("gap_minor", sa.BigInteger(), nullable=False),
        sa.Column("reason_type", sa.String(length=48), nullable=False),
        sa.Column("reason_detail", sa.String(length=2000), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "calibration_id", name=op.f("pk_target_calibrations")),
        sa.UniqueConstraint(
            "tenant_id",
            "target_id",
            "week_start",
            name=op.f("uq_target_calibrations_tenant_id_target_id_week_start"),
        ),
    )
    with op.batch_alter_table("target_calibrations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_target_calibrations_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("ix_target_calibrations_tenant_week", ["tenant_id", "week_start"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("target_calibrations", schema=None) as batch_op:
        batch_op.drop_index("ix_target_calibrations_tenant_week")
        batch_op.drop_index(batch_op.f("ix_target_calibrations_tenant_id"))
    op.drop_table("target_calibrations")
    with op.batch_alter_table("target_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_target_changes_tenant_target")
        batch_op.drop_index(batch_op.f("ix_target_changes_tenant_id"))
    op.drop_table("target_changes")
    with op.batch_alter_table("targets", schema=None) as batch_op:
        batch_op.drop_index("ix_targets_tenant_parent")
        batch_op.drop_index("ix_targets_tenant_period_org")
        batch_op.drop_index(batch_op.f("ix_targets_tenant_id"))
    op.drop_table("targets")
