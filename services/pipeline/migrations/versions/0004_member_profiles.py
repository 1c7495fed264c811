"""member profiles

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 01:28:30.617269
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "member_profiles",
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("org_path", sa.String(length=200), nullable=False),
        sa.Column("manager_user_id", sa.String(length=128), nullable=False),
        sa.Column("approver_roles", sa.String(length=500), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name=op.f("pk_member_profiles")),
    )
    with op.batch_alter_table("member_profiles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_member_profiles_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("ix_member_profiles_tenant_org", ["tenant_id", "org_path"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("member_profiles", schema=None) as batch_op:
        batch_op.drop_index("ix_member_profiles_tenant_org")
        batch_op.drop_index(batch_op.f("ix_member_profiles_tenant_id"))

    op.drop_table("member_profiles")
