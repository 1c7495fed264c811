"""deal outcome columns: closed_at and the lost reason

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 01:26:14.170909
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from salesops.pipeline.v1 import deal_pb2, stage_model_pb2

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("lost_category", sa.String(length=48), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("lost_reason_code", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("lost_competitor", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("lost_stage_id", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.create_index(
            "ix_deals_tenant_status_closed", ["tenant_id", "status", "closed_at"], unique=False
        )
    _backfill()


def _backfill() -> None:
    """Closed deals written before these columns: their outcome is in the stored Deal message."""
    deals = sa.table(
        "deals",
        sa.column("tenant_id", sa.String),
        sa.column("deal_id", sa.String),
        sa.column("status", sa.String),
        sa.column("body", sa.LargeBinary),
        sa.column("closed_at", sa.DateTime(timezone=True)),
        sa.column("lost_category", sa.String),
        sa.column("lost_reason_code", sa.String),
        sa.column("lost_competitor", sa.String),
        sa.column("lost_stage_id", sa.String),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(deals.c.tenant_id, deals.c.deal_id, deals.c.status, deals.c.body).where(
            deals.c.status.in_(("WON", "LOST"))
        )
    ).all()
    for tenant, deal_id, status, body in rows:
        deal = deal_pb2.Deal.FromString(body)
        values: dict[str, object] = {}
        if status == "WON" and deal.won.HasField("won_time"):
            values["closed_at"] = deal.won.won_time.ToDatetime()
        if status == "LOST":
            lost = deal.lost
            if lost.HasField("lost_time"):
                values["closed_at"] = lost.lost_time.ToDatetime()
            name = stage_model_pb2.LostReasonCategory.Name(lost.category) if lost.category else ""
            values.update(
                lost_category=name.removeprefix("LOST_REASON_CATEGORY_"),
                lost_reason_code=lost.reason_code,
                lost_competitor=lost.competitor,
                lost_stage_id=lost.lost_at_stage_id,
            )
        if values:
            bind.execute(
                deals.update().where(deals.c.tenant_id == tenant, deals.c.deal_id == deal_id).values(**values)
            )


def downgrade() -> None:
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.drop_index("ix_deals_tenant_status_closed")
        batch_op.drop_column("lost_stage_id")
        batch_op.drop_column("lost_competitor")
        batch_op.drop_column("lost_reason_code")
        batch_op.drop_column("lost_category")
        batch_op.drop_column("closed_at")
