"""company blocking key: indexed first characters of the normalised company name, for fuzzy dedupe

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 13:40:13.965574
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("company_key", sa.String(length=8), nullable=False, server_default=""))
        batch_op.create_index("ix_leads_tenant_company_key", ["tenant_id", "company_key"], unique=False)
    op.execute("UPDATE leads SET company_key = substr(company_norm, 1, 2)")


def downgrade() -> None:
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index("ix_leads_tenant_company_key")
        batch_op.drop_column("company_key")
