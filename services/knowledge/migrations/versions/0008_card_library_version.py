"""knowledge: the card library's version per tenant (sop_card_library), bumped with every card write,
read by recommend in the one statement that checks its in-process copies; the last 8 days' newcomer
uses counted again for each tenant whose settings set another newcomer tenure than 0007's default

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from salesops.knowledge.v1 import settings_pb2

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


DEFAULT_TENURE_S = 180 * 86400  # 0007's backfill used this for every tenant
SETTINGS_DOCUMENT = settings_pb2.KnowledgeSettings.DESCRIPTOR.full_name


def _tenures() -> dict[str, int]:
    """Tenants whose stored settings set a newcomer tenure other than the default, in seconds."""
    rows = op.get_bind().execute(
        sa.text("SELECT tenant_id, body FROM tenant_settings WHERE document = :d"), {"d": SETTINGS_DOCUMENT}
    )
    out: dict[str, int] = {}
    for tenant, body in rows:
        policy = settings_pb2.KnowledgeSettings.FromString(body).recommendation
        if policy.HasField("newcomer_tenure"):
            seconds = int(policy.newcomer_tenure.ToTimedelta().total_seconds())
            if seconds != DEFAULT_TENURE_S:
                out[str(tenant)] = seconds
    return out


def _recount_newcomers() -> None:
    """0007 backfilled the newcomer uses of the last 8 days with the default tenure, not the tenant's:
    count those days again with the tenant's (what the running code keeps for new uses)."""
    pg = op.get_bind().dialect.name == "postgresql"
    day = "CAST((u.used_at AT TIME ZONE 'UTC') AS DATE)" if pg else "substr(u.used_at, 1, 10)"
    # The first UTC day recounted, as a day and as its first instant (so the uses' time index serves).
    first_day = "(CAST((now() AT TIME ZONE 'UTC') AS DATE) - 8)" if pg else "date('now', '-8 days')"
    since = f"(CAST({first_day} AS TIMESTAMP) AT TIME ZONE 'UTC')" if pg else first_day
    for tenant, seconds in sorted(_tenures().items()):
        tenure = (
            f"u.used_at - {seconds} * interval '1 second'"
            if pg
            else f"datetime(u.used_at, '-{seconds} seconds')"
        )
        params = {"t": tenant}
        op.get_bind().execute(
            sa.text(f"DELETE FROM card_newcomer_days WHERE tenant_id = :t AND day >= {first_day}"), params
        )
        op.get_bind().execute(
            sa.text(
                f"""INSERT INTO card_newcomer_days (tenant_id, day, card_id, uses)
                SELECT u.tenant_id, {day}, u.card_id, count(*) FROM card_uses u
                JOIN rep_first_deals r ON r.tenant_id = u.tenant_id AND r.user_id = u.user_id
                WHERE u.tenant_id = :t AND u.used_at >= {since} AND r.first_deal_at >= {tenure}
                GROUP BY u.tenant_id, {day}, u.card_id"""
            ),
            params,
        )


def upgrade() -> None:
    # No backfill: a tenant without a row is at version 0 until its next card write (recommend's
    # version also carries the newest published card's update time).
    op.create_table(
        "sop_card_library",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_sop_card_library")),
    )
    op.create_index("ix_sop_card_library_tenant_id", "sop_card_library", ["tenant_id"])
    _recount_newcomers()


def downgrade() -> None:
    op.drop_table("sop_card_library")
