"""forecast snapshots

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 01:40:12.715548
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "forecast_snapshot_deals",
        sa.Column("snapshot_id", sa.String(length=26), nullable=False),
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("owner_user_id", sa.String(length=64), nullable=False),
        sa.Column("org_path", sa.String(length=200), nullable=False),
        sa.Column("stage_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("forecast_category", sa.String(length=32), nullable=False),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("weighted_minor", sa.BigInteger(), nullable=False),
        sa.Column("probability", sa.Integer(), nullable=False),
        sa.Column("expected_close_date", sa.Date(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "snapshot_id", "deal_id", name=op.f("pk_forecast_snapshot_deals")
        ),
    )
    with op.batch_alter_table("forecast_snapshot_deals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_forecast_snapshot_deals_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "forecast_snapshots",
        sa.Column("snapshot_id", sa.String(length=26), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("granularity", sa.String(length=16), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("take_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("take_date", sa.Date(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "snapshot_id", name=op.f("pk_forecast_snapshots")),
        sa.UniqueConstraint(
            "tenant_id", "request_id", name=op.f("uq_forecast_snapshots_tenant_id_request_id")
        ),
    )
    with op.batch_alter_table("forecast_snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_forecast_snapshots_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            "ix_forecast_snapshots_tenant_period", ["tenant_id", "granularity", "period_start"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("forecast_snapshots", schema=None) as batch_op:
        batch_op.drop_index("ix_forecast_snapshots_tenant_period")
        batch_op.drop_index(batch_op.f("ix_forecast_snapshots_tenant_id"))

    op.drop_table("forecast_snapshots")
    with op.batch_alter_table("forecast_snapshot_deals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_forecast_snapshot_deals_tenant_id"))

    op.drop_table("forecast_snapshot_deals")
