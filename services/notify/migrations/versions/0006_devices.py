"""devices

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 14:15:26.329717
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
        "notify_devices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_devices")),
        sa.UniqueConstraint("tenant_id", "device_id", name=op.f("uq_notify_devices_tenant_id_device_id")),
    )
    with op.batch_alter_table("notify_devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notify_devices_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_notify_devices_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notify_devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notify_devices_user_id"))
        batch_op.drop_index(batch_op.f("ix_notify_devices_tenant_id"))

    op.drop_table("notify_devices")
