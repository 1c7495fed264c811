"""leads list index and rep load counters: ListLeads' region + grade filter ordered by score (read
backwards for best first) then id, and its bounded count, served by one index (status last, so the
count never reads the table); rep_loads, open leads per owner, filled from the leads

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
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
        "rep_loads",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("open_leads", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name=op.f("pk_rep_loads")),
    )
    op.create_index(op.f("ix_rep_loads_tenant_id"), "rep_loads", ["tenant_id"], unique=False)
    op.execute(
        "INSERT INTO rep_loads (tenant_id, user_id, open_leads) "
        "SELECT tenant_id, owner_user_id, count(*) FROM leads "
        "WHERE owner_user_id IS NOT NULL AND status IN ('ASSIGNED', 'WORKING') "
        "GROUP BY tenant_id, owner_user_id"
    )
    op.create_index(
        "ix_leads_tenant_region_grade_score",
        "leads",
        ["tenant_id", "region", "grade", "score", "lead_id", "status"],
    )


def downgrade() -> None:
    op.drop_index("ix_leads_tenant_region_grade_score", table_name="leads")
    op.drop_index(op.f("ix_rep_loads_tenant_id"), table_name="rep_loads")
    op.drop_table("rep_loads")
