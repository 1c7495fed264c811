"""deals, evidence, gate reviews, change history, settings store

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06 01:06:22.717907
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deal_changes",
        sa.Column("change_id", sa.String(length=26), nullable=False),
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("old_value", sa.String(length=200), nullable=False),
        sa.Column("new_value", sa.String(length=200), nullable=False),
        sa.Column("changed_by", sa.String(length=128), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "change_id", name=op.f("pk_deal_changes")),
    )
    with op.batch_alter_table("deal_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deal_changes_tenant_deal", ["tenant_id", "deal_id", "change_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_deal_changes_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "deal_evidence",
        sa.Column("evidence_id", sa.String(length=64), nullable=False),
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("evidence_type_id", sa.String(length=64), nullable=False),
        sa.Column("stage_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "evidence_id", name=op.f("pk_deal_evidence")),
    )
    with op.batch_alter_table("deal_evidence", schema=None) as batch_op:
        batch_op.create_index("ix_deal_evidence_tenant_deal", ["tenant_id", "deal_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deal_evidence_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "deals",
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("customer_name", sa.String(length=300), nullable=False),
        sa.Column("industry", sa.String(length=64), nullable=False),
        sa.Column("owner_user_id", sa.String(length=64), nullable=False),
        sa.Column("org_path", sa.String(length=200), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("weighted_minor", sa.BigInteger(), nullable=False),
        sa.Column("stage_id", sa.String(length=64), nullable=False),
        sa.Column("stage_model_version", sa.Integer(), nullable=False),
        sa.Column("probability", sa.Integer(), nullable=False),
        sa.Column("stage_probability", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("forecast_category", sa.String(length=32), nullable=False),
        sa.Column("expected_close_date", sa.Date(), nullable=False),
        sa.Column("lead_id", sa.String(length=64), nullable=True),
        sa.Column("origin", sa.String(length=32), nullable=False),
        sa.Column("frozen", sa.Boolean(), nullable=False),
        sa.Column("stage_entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_confirm_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "deal_id", name=op.f("pk_deals")),
        sa.UniqueConstraint("tenant_id", "lead_id", name=op.f("uq_deals_tenant_id_lead_id")),
    )
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deals_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("ix_deals_tenant_org_status", ["tenant_id", "org_path", "status"], unique=False)
        batch_op.create_index(
            "ix_deals_tenant_owner_status", ["tenant_id", "owner_user_id", "status"], unique=False
        )
        batch_op.create_index(
            "ix_deals_tenant_status_close", ["tenant_id", "status", "expected_close_date"], unique=False
        )
        batch_op.create_index("ix_deals_tenant_updated", ["tenant_id", "updated_at"], unique=False)

    op.create_table(
        "gate_reviews",
        sa.Column("review_id", sa.String(length=26), nullable=False),
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "review_id", name=op.f("pk_gate_reviews")),
    )
    with op.batch_alter_table("gate_reviews", schema=None) as batch_op:
        batch_op.create_index(
            "ix_gate_reviews_tenant_deal", ["tenant_id", "deal_id", "review_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_gate_reviews_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "tenant_settings",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column(
            "document", sa.String(length=128), nullable=False, comment="which settings: a message type name"
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False, comment="serialized proto message"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "document", name=op.f("pk_tenant_settings")),
    )
    op.create_table(
        "tenant_settings_history",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("document", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "document", "version", name=op.f("pk_tenant_settings_history")),
    )


def downgrade() -> None:
    op.drop_table("tenant_settings_history")
    op.drop_table("tenant_settings")
    with op.batch_alter_table("gate_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_gate_reviews_tenant_id"))
        batch_op.drop_index("ix_gate_reviews_tenant_deal")

    op.drop_table("gate_reviews")
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.drop_index("ix_deals_tenant_updated")
        batch_op.drop_index("ix_deals_tenant_status_close")
        batch_op.drop_index("ix_deals_tenant_owner_status")
        batch_op.drop_index("ix_deals_tenant_org_status")
        batch_op.drop_index(batch_op.f("ix_deals_tenant_id"))

    op.drop_table("deals")
    with op.batch_alter_table("deal_evidence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deal_evidence_tenant_id"))
        batch_op.drop_index("ix_deal_evidence_tenant_deal")

    op.drop_table("deal_evidence")
    with op.batch_alter_table("deal_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deal_changes_tenant_id"))
        batch_op.drop_index("ix_deal_changes_tenant_deal")

    op.drop_table("deal_changes")
