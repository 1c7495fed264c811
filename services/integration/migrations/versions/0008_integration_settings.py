"""integration settings: kit's tenant settings documents (tenant_settings, tenant_settings_history)

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


def _columns(*, history: bool) -> list[sa.Column[object]]:
    return [
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column(
            "document",
            sa.String(length=128),
            nullable=False,
            comment=None if history else "which settings: a message type name",
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "body", sa.LargeBinary(), nullable=False, comment=None if history else "serialized proto message"
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "tenant_settings",
        *_columns(history=False),
        sa.PrimaryKeyConstraint("tenant_id", "document", name=op.f("pk_tenant_settings")),
    )
    op.create_table(
        "tenant_settings_history",
        *_columns(history=True),
        sa.PrimaryKeyConstraint("tenant_id", "document", "version", name=op.f("pk_tenant_settings_history")),
    )


def downgrade() -> None:
    op.drop_table("tenant_settings_history")
    op.drop_table("tenant_settings")
