"""deal projection and outcomes for lift: deal_outcomes, deal_stages_reached, lift_cells,
card_lift_stats, rep_first_deals, card_impressions

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
TABLES = (
    "deal_outcomes",
    "deal_stages_reached",
    "lift_cells",
    "card_lift_stats",
    "rep_first_deals",
    "card_impressions",
)


def _tenant() -> sa.Column[str]:
    return sa.Column("tenant_id", sa.String(64), nullable=False)


def upgrade() -> None:
    op.create_table(
        "deal_outcomes",
        _tenant(),
        sa.Column("deal_id", sa.String(64), nullable=False),
        sa.Column("industry", sa.String(64), nullable=False),
        sa.Column("stage_id", sa.String(64), nullable=False),
        sa.Column("owner_user_id", sa.String(128), nullable=False),
        sa.Column("outcome", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("closed_at", TS, nullable=True),
        sa.Column("event_at", TS, nullable=False),
        sa.Column("counted_won", sa.Integer(), nullable=False),
        sa.Column("counted_industry", sa.String(64), nullable=False),
        sa.Column("counted_stages", sa.Text(), nullable=False),
        sa.Column("counted_cards", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "deal_id", name=op.f("pk_deal_outcomes")),
    )
    op.create_index(
        "ix_deal_outcomes_tenant_industry_outcome", "deal_outcomes", ["tenant_id", "industry", "outcome"]
    )
    op.create_table(
        "deal_stages_reached",
        _tenant(),
        sa.Column("deal_id", sa.String(64), nullable=False),
        sa.Column("stage_id", sa.String(64), nullable=False),
        sa.Column("reached_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "deal_id", "stage_id", name=op.f("pk_deal_stages_reached")),
    )
    op.create_index(
        "ix_deal_stages_reached_tenant_stage", "deal_stages_reached", ["tenant_id", "stage_id", "deal_id"]
    )
    op.create_table(
        "lift_cells",
        _tenant(),
        sa.Column("industry", sa.String(64), nullable=False),
        sa.Column("stage_id", sa.String(64), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.Column("won", sa.Integer(), nullable=False),
        sa.Column("refreshed_at", TS, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "industry", "stage_id", name=op.f("pk_lift_cells")),
    )
    op.create_table(
        "card_lift_stats",
        _tenant(),
        sa.Column("industry", sa.String(64), nullable=False),
        sa.Column("stage_id", sa.String(64), nullable=False),
        sa.Column("card_id", sa.String(64), nullable=False),
        sa.Column("used_closed", sa.Integer(), nullable=False),
        sa.Column("used_won", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "industry", "stage_id", "card_id", name=op.f("pk_card_lift_stats")
        ),
    )
    op.create_index("ix_card_lift_stats_tenant_card", "card_lift_stats", ["tenant_id", "card_id"])
    op.create_table(
        "rep_first_deals",
        _tenant(),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("first_deal_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name=op.f("pk_rep_first_deals")),
    )
    op.create_index("ix_rep_first_deals_tenant_first", "rep_first_deals", ["tenant_id", "first_deal_at"])
    op.create_table(
        "card_impressions",
        _tenant(),
        sa.Column("recommendation_id", sa.String(32), nullable=False),
        sa.Column("card_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("deal_id", sa.String(64), nullable=False),
        sa.Column("lead_id", sa.String(64), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("exploration", sa.Boolean(), nullable=False),
        sa.Column("shown_on", sa.Date(), nullable=False),
        sa.Column("shown_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "recommendation_id", name=op.f("pk_card_impressions")),
    )
    op.create_index(
        "ix_card_impressions_tenant_card_shown", "card_impressions", ["tenant_id", "card_id", "shown_at"]
    )
    for table in TABLES:
        op.create_index(f"ix_{table}_tenant_id", table, ["tenant_id"])
    # Recommend's newcomer count, covered (store_outcomes.py).
    op.create_index(
        "ix_card_uses_tenant_user_used_card", "card_uses", ["tenant_id", "user_id", "used_at", "card_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_card_uses_tenant_user_used_card", table_name="card_uses")
    for table in reversed(TABLES):
        op.drop_table(table)
