"""freezing, dwell and process health

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def _tenant_index(table: str) -> None:
    op.create_index(op.f(f"ix_{table}_tenant_id"), table, ["tenant_id"], unique=False)


def upgrade() -> None:
    op.create_table(
        "deal_dwell_flags",
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("stage_id", sa.String(length=64), nullable=False),
        sa.Column("stage_entered_at", TS, nullable=False),
        sa.Column("org_path", sa.String(length=200), nullable=False),
        sa.Column("limit_seconds", sa.BigInteger(), nullable=False),
        sa.Column("limit_source", sa.String(length=16), nullable=False),
        sa.Column("deadline_at", TS, nullable=False),
        sa.Column("flagged_at", TS, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "deal_id", "stage_id", "stage_entered_at", name=op.f("pk_deal_dwell_flags")
        ),
    )
    _tenant_index("deal_dwell_flags")
    op.create_table(
        "lead_responses",
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("team_path", sa.String(length=200), nullable=False),
        sa.Column("responder_user_id", sa.String(length=128), nullable=False),
        sa.Column("response_seconds", sa.BigInteger(), nullable=False),
        sa.Column("responded_at", TS, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "lead_id", name=op.f("pk_lead_responses")),
    )
    _tenant_index("lead_responses")
    op.create_index(
        "ix_lead_responses_tenant_team_time", "lead_responses", ["tenant_id", "team_path", "responded_at"]
    )
    op.create_table(
        "process_health_values",
        sa.Column("org_path", sa.String(length=200), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("metric", sa.String(length=48), nullable=False),
        sa.Column("stage_id", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("sample_size", sa.Integer(), nullable=False),
        sa.Column("computed_at", TS, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "org_path", "week_start", "metric", "stage_id", name=op.f("pk_process_health_values")
        ),
    )
    _tenant_index("process_health_values")
    op.create_table(
        "process_health_runs",
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("computed_at", TS, nullable=False),
        sa.Column("teams", sa.Integer(), nullable=False),
        sa.Column("anomalies", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "week_start", name=op.f("pk_process_health_runs")),
    )
    _tenant_index("process_health_runs")
    op.create_table(
        "process_anomalies",
        sa.Column("anomaly_id", sa.String(length=26), nullable=False),
        sa.Column("org_path", sa.String(length=200), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("metric", sa.String(length=48), nullable=False),
        sa.Column("stage_id", sa.String(length=64), nullable=False),
        sa.Column("adverse", sa.Boolean(), nullable=False),
        sa.Column("detected_at", TS, nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "anomaly_id", name=op.f("pk_process_anomalies")),
        sa.UniqueConstraint(
            "tenant_id",
            "org_path",
            "week_start",
            "metric",
            "stage_id",
            name=op.f("uq_process_anomalies_tenant_id_org_path_week_start_metric_stage_id"),
        ),
    )
    _tenant_index("process_anomalies")
    op.create_index(
        "ix_process_anomalies_tenant_detected",
        "process_anomalies",
        ["tenant_id", "detected_at", "anomaly_id"],
    )
    if op.get_bind().dialect.name == "postgresql":
        # The forecast roll-up groups deals by owner and org path, which go together. Without
        # these statistics the planner expects one group per deal and sorts every deal of the
        # period; with them it can hash (measured in bench/bench_pipeline.py).
        op.execute(
            "CREATE STATISTICS IF NOT EXISTS deals_owner_org_ndistinct (ndistinct) "
            "ON owner_user_id, org_path FROM deals"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS IF EXISTS deals_owner_org_ndistinct")
    op.drop_table("process_anomalies")
    op.drop_table("process_health_runs")
    op.drop_table("process_health_values")
    op.drop_table("lead_responses")
    op.drop_table("deal_dwell_flags")
