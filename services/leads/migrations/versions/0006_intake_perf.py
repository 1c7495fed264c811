"""leads intake: the fuzzy company match reads the names nearest the new one in its block

The blocking index (tenant_id, company_key) becomes (tenant_id, company_key, company_norm): the same
block lookups as before from its prefix, and two short range scans around a name (a sorted
neighbourhood) instead of up to 1,000 rows of the block per intake.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_leads_tenant_company_key_norm",
        "leads",
        ["tenant_id", "company_key", "company_norm"],
        unique=False,
    )
    op.drop_index("ix_leads_tenant_company_key", table_name="leads")


def downgrade() -> None:
    op.create_index("ix_leads_tenant_company_key", "leads", ["tenant_id", "company_key"], unique=False)
    op.drop_index("ix_leads_tenant_company_key_norm", table_name="leads")
