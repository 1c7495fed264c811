"""monthly iteration reports

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "iteration_reports",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("report_id", sa.String(26), nullable=False),
        sa.Column("slot", sa.String(40), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("completed_at", TS, nullable=True),
        sa.Column("applied_at", TS, nullable=True),
        sa.Column("applied_by", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "report_id", name=op.f("pk_iteration_reports")),
        sa.UniqueConstraint("tenant_id", "slot", name=op.f("uq_iteration_reports_tenant_id_slot")),
    )
    op.create_index("ix_iteration_reports_tenant_id", "iteration_reports", ["tenant_id"])
    op.create_index("ix_iteration_reports_tenant_month", "iteration_reports", ["tenant_id", "year", "month"])


def downgrade() -> None:
    op.drop_table("iteration_reports")
