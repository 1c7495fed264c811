"""leads list index: ListLeads' region + grade filter ordered by score (read backwards for best first) then id, and its
bounded count, served by one index (status last, so the count never reads the table)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_leads_tenant_region_grade_score",
        "leads",
        ["tenant_id", "region", "grade", "score", "lead_id", "status"],
    )


def downgrade() -> None:
    op.drop_index("ix_leads_tenant_region_grade_score", table_name="leads")
