"""delivery rate limit folding

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 13:35:07.783623
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Defaults on the server so existing deliveries get them (they are plain, unfolded ones).
    with op.batch_alter_table("notify_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("is_summary", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("folded_into", sa.String(length=26), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("suppression_reason", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_index(
            "ix_notify_deliveries_recipient", ["tenant_id", "user_id", "channel", "queued_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notify_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_notify_deliveries_recipient")
        batch_op.drop_column("suppression_reason")
        batch_op.drop_column("folded_into")
        batch_op.drop_column("is_summary")
