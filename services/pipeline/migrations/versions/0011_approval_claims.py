"""approval claims: one open approval per deal and flow, held by a primary key

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "approval_claims",
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("flow_id", sa.String(length=64), nullable=False),
        sa.Column("approval_id", sa.String(length=64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "deal_id", "flow_id"),
    )
    op.create_index(op.f("ix_approval_claims_tenant_id"), "approval_claims", ["tenant_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_approval_claims_tenant_id"), table_name="approval_claims")
    op.drop_table("approval_claims")
