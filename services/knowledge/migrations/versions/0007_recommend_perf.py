"""knowledge: maintained usage counters per card and day (card_use_days, card_newcomer_days),
backfilled from card_uses and feedback_duties; the covering index of the week's uses by user dropped

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("card_use_days", "card_newcomer_days")
# The default RecommendationPolicy.newcomer_tenure: the backfill cannot read each tenant's settings.
TENURE_DAYS = 180


def _tenant() -> sa.Column[str]:
    return sa.Column("tenant_id", sa.String(64), nullable=False)


def _counter(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=False)


def _backfill() -> None:
    """The counters as the running code would have kept them. Newcomer days only for the last
    8 days (nothing older is read), with the default tenure."""
    pg = op.get_bind().dialect.name == "postgresql"

    def day(column: str) -> str:
        return f"CAST(({column} AT TIME ZONE 'UTC') AS DATE)" if pg else f"substr({column}, 1, 10)"

    since = "now() - interval '8 days'" if pg else "datetime('now', '-8 days')"
    tenure = (
        f"u.used_at - interval '{TENURE_DAYS} days'" if pg else f"datetime(u.used_at, '-{TENURE_DAYS} days')"
    )
    op.execute(
        f"""INSERT INTO card_use_days (tenant_id, card_id, day, uses, fully, partly, not_applicable)
        SELECT tenant_id, card_id, day, sum(uses), sum(fully), sum(partly), sum(not_applicable) FROM (
          SELECT tenant_id, card_id, {day("used_at")} AS day, 1 AS uses, 0 AS fully, 0 AS partly,
                 0 AS not_applicable FROM card_uses
          UNION ALL
          SELECT tenant_id, card_id, {day("recorded_at")}, 0, CASE WHEN rating = 1 THEN 1 ELSE 0 END,
                 CASE WHEN rating = 2 THEN 1 ELSE 0 END, CASE WHEN rating = 3 THEN 1 ELSE 0 END
          FROM feedback_duties WHERE rating <> 0 AND recorded_at IS NOT NULL
        ) AS counted GROUP BY tenant_id, card_id, day"""
    )
    op.execute(
        f"""INSERT INTO card_newcomer_days (tenant_id, day, card_id, uses)
        SELECT u.tenant_id, {day("u.used_at")}, u.card_id, count(*) FROM card_uses u
        JOIN rep_first_deals r ON r.tenant_id = u.tenant_id AND r.user_id = u.user_id
        WHERE u.used_at >= {since} AND r.first_deal_at >= {tenure}
        GROUP BY u.tenant_id, {day("u.used_at")}, u.card_id"""
    )


def upgrade() -> None:
    op.create_table(
        "card_use_days",
        _tenant(),
        sa.Column("card_id", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        _counter("uses"),
        _counter("fully"),
        _counter("partly"),
        _counter("not_applicable"),
        sa.PrimaryKeyConstraint("tenant_id", "card_id", "day", name=op.f("pk_card_use_days")),
    )
    op.create_index("ix_card_use_days_tenant_day", "card_use_days", ["tenant_id", "day", "card_id"])
    op.create_table(
        "card_newcomer_days",
        _tenant(),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("card_id", sa.String(64), nullable=False),
        _counter("uses"),
        sa.PrimaryKeyConstraint("tenant_id", "day", "card_id", name=op.f("pk_card_newcomer_days")),
    )
    op.create_index(
        "ix_card_newcomer_days_tenant_day_uses", "card_newcomer_days", ["tenant_id", "day", "uses"]
    )
    for table in TABLES:
        op.create_index(f"ix_{table}_tenant_id", table, ["tenant_id"])
    _backfill()
    # Recommend's newcomer count reads card_newcomer_days now, not the week's uses.
    op.drop_index("ix_card_uses_tenant_user_used_card", table_name="card_uses")


def downgrade() -> None:
    op.create_index(
        "ix_card_uses_tenant_user_used_card", "card_uses", ["tenant_id", "user_id", "used_at", "card_id"]
    )
    for table in reversed(TABLES):
        op.drop_table(table)
