"""card uses and feedback duties

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "card_uses",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("use_id", sa.String(64), nullable=False),
        sa.Column("card_id", sa.String(64), nullable=False),
        sa.Column("card_version", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("org_path", sa.String(256), nullable=False),
        sa.Column("deal_id", sa.String(64), nullable=False),
        sa.Column("lead_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=False),
        sa.Column("industry", sa.String(64), nullable=False),
        sa.Column("stage_id", sa.String(64), nullable=False),
        sa.Column("recommendation_id", sa.String(64), nullable=False),
        sa.Column("used_at", TS, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
        sa.Column("duty_id", sa.String(64), nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "use_id", name=op.f("pk_card_uses")),
    )
    op.create_index("ix_card_uses_tenant_id", "card_uses", ["tenant_id"])
    op.create_index("ix_card_uses_tenant_card_used", "card_uses", ["tenant_id", "card_id", "used_at"])
    op.create_index("ix_card_uses_tenant_user_used", "card_uses", ["tenant_id", "user_id", "used_at"])
    op.create_index("ix_card_uses_tenant_deal", "card_uses", ["tenant_id", "deal_id"])
    op.create_index("ix_card_uses_tenant_used", "card_uses", ["tenant_id", "used_at"])
    op.create_table(
        "feedback_duties",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("duty_id", sa.String(64), nullable=False),
        sa.Column("use_id", sa.String(64), nullable=False),
        sa.Column("card_id", sa.String(64), nullable=False),
        sa.Column("card_version", sa.Integer(), nullable=False),
        sa.Column("card_title", sa.String(200), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("org_path", sa.String(256), nullable=False),
        sa.Column("deal_id", sa.String(64), nullable=False),
        sa.Column("lead_id", sa.String(64), nullable=False),
        sa.Column("industry", sa.String(64), nullable=False),
        sa.Column("stage_id", sa.String(64), nullable=False),
        sa.Column("used_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.Column("reminded_at", TS, nullable=True),
        sa.Column("overdue_at", TS, nullable=True),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("reason_category", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("submitted_at", TS, nullable=True),
        sa.Column("recorded_at", TS, nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("workflow_id", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "duty_id", name=op.f("pk_feedback_duties")),
        sa.UniqueConstraint(
            "tenant_id",
            "user_id",
            "card_id",
            "deal_id",
            "lead_id",
            name=op.f("uq_feedback_duties_tenant_id_user_id_card_id_deal_id_lead_id"),
        ),
    )
    op.create_index("ix_feedback_duties_tenant_id", "feedback_duties", ["tenant_id"])
    op.create_index(
        "ix_feedback_duties_tenant_user_state_due",
        "feedback_duties",
        ["tenant_id", "user_id", "state", "due_at"],
    )
    op.create_index(
        "ix_feedback_duties_tenant_state_due", "feedback_duties", ["tenant_id", "state", "due_at"]
    )
    op.create_index(
        "ix_feedback_duties_tenant_card_recorded",
        "feedback_duties",
        ["tenant_id", "card_id", "recorded_at"],
    )


def downgrade() -> None:
    op.drop_table("feedback_duties")
    op.drop_table("card_uses")
