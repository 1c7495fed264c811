"""knowledge: the card library's version per tenant (sop_card_library), bumped with every card write,
read by recommend in the one statement that checks its in-process copies

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # No backfill: a tenant without a row is at version 0 until its next card write (recommend's
    # version also carries the newest published card's update time).
    op.create_table(
        "sop_card_library",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_sop_card_library")),
    )
    op.create_index("ix_sop_card_library_tenant_id", "sop_card_library", ["tenant_id"])


def downgrade() -> None:
    op.drop_table("sop_card_library")
