"""tenant settings

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 13:57:29.864777
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
        "notify_settings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_settings")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_notify_settings_tenant_id")),
    )
    with op.batch_alter_table("notify_settings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notify_settings_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notify_settings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notify_settings_tenant_id"))

    op.drop_table("notify_settings")
