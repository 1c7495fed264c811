"""customers, contacts, lead projection, keyword tags, finance facts and reconciliation issues

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_contact_keys",
        sa.Column("contact_key", sa.String(length=300), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "contact_key", name=op.f("pk_customer_contact_keys")),
    )
    with op.batch_alter_table("customer_contact_keys", schema=None) as batch_op:
        batch_op.create_index(
            "ix_customer_contact_keys_tenant_customer", ["tenant_id", "customer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_customer_contact_keys_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "customer_leads",
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=300), nullable=False),
        sa.Column("owner_user_id", sa.String(length=128), nullable=False),
        sa.Column("source_code", sa.String(length=64), nullable=False),
        sa.Column("lead_created_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("converted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "lead_id", name=op.f("pk_customer_leads")),
    )
    with op.batch_alter_table("customer_leads", schema=None) as batch_op:
        batch_op.create_index("ix_customer_leads_tenant_customer", ["tenant_id", "customer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_customer_leads_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "customer_tags",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "customer_id", "tag", name=op.f("pk_customer_tags")),
    )
    with op.batch_alter_table("customer_tags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_tags_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "customers",
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=300), nullable=False),
        sa.Column("normalized_name", sa.String(length=300), nullable=False),
        sa.Column("industry", sa.String(length=64), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=False),
        sa.Column("owner_user_id", sa.String(length=128), nullable=False),
        sa.Column("org_path", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "customer_id", name=op.f("pk_customers")),
        sa.UniqueConstraint(
            "tenant_id", "normalized_name", name=op.f("uq_customers_tenant_id_normalized_name")
        ),
    )
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customers_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("ix_customers_tenant_org", ["tenant_id", "org_path"], unique=False)
        batch_op.create_index("ix_customers_tenant_updated", ["tenant_id", "updated_at"], unique=False)

    op.create_table(
        "finance_facts",
        sa.Column("fact_id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("source_system", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("contract_external_id", sa.String(length=128), nullable=False),
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "fact_id", name=op.f("pk_finance_facts")),
        sa.UniqueConstraint(
            "tenant_id",
            "source_system",
            "external_id",
            name=op.f("uq_finance_facts_tenant_id_source_system_external_id"),
        ),
    )
    with op.batch_alter_table("finance_facts", schema=None) as batch_op:
        batch_op.create_index("ix_finance_facts_tenant_deal", ["tenant_id", "deal_id", "kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_finance_facts_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("ix_finance_facts_tenant_occurred", ["tenant_id", "occurred_at"], unique=False)

    op.create_table(
        "lead_follow_ups",
        sa.Column("activity_id", sa.String(length=64), nullable=False),
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("activity_type", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=64), nullable=False),
        sa.Column("actor_user_id", sa.String(length=128), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_step_due", sa.Date(), nullable=True),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "activity_id", name=op.f("pk_lead_follow_ups")),
    )
    with op.batch_alter_table("lead_follow_ups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lead_follow_ups_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            "ix_lead_follow_ups_tenant_lead", ["tenant_id", "lead_id", "occurred_at"], unique=False
        )

    op.create_table(
        "reconciliation_issues",
        sa.Column("issue_id", sa.String(length=26), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("resolution", sa.String(length=32), nullable=False),
        sa.Column("open_key", sa.String(length=120), nullable=True),
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("owner_user_id", sa.String(length=128), nullable=False),
        sa.Column("org_path", sa.String(length=200), nullable=False),
        sa.Column("difference_minor", sa.BigInteger(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "issue_id", name=op.f("pk_reconciliation_issues")),
        sa.UniqueConstraint(
            "tenant_id", "open_key", name=op.f("uq_reconciliation_issues_tenant_id_open_key")
        ),
    )
    with op.batch_alter_table("reconciliation_issues", schema=None) as batch_op:
        batch_op.create_index("ix_reconciliation_issues_tenant_deal", ["tenant_id", "deal_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reconciliation_issues_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            "ix_reconciliation_issues_tenant_state", ["tenant_id", "state", "detected_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("reconciliation_issues", schema=None) as batch_op:
        batch_op.drop_index("ix_reconciliation_issues_tenant_state")
        batch_op.drop_index(batch_op.f("ix_reconciliation_issues_tenant_id"))
        batch_op.drop_index("ix_reconciliation_issues_tenant_deal")

    op.drop_table("reconciliation_issues")
    with op.batch_alter_table("lead_follow_ups", schema=None) as batch_op:
        batch_op.drop_index("ix_lead_follow_ups_tenant_lead")
        batch_op.drop_index(batch_op.f("ix_lead_follow_ups_tenant_id"))

    op.drop_table("lead_follow_ups")
    with op.batch_alter_table("finance_facts", schema=None) as batch_op:
        batch_op.drop_index("ix_finance_facts_tenant_occurred")
        batch_op.drop_index(batch_op.f("ix_finance_facts_tenant_id"))
        batch_op.drop_index("ix_finance_facts_tenant_deal")

    op.drop_table("finance_facts")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_tenant_updated")
        batch_op.drop_index("ix_customers_tenant_org")
        batch_op.drop_index(batch_op.f("ix_customers_tenant_id"))

    op.drop_table("customers")
    with op.batch_alter_table("customer_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_tags_tenant_id"))

    op.drop_table("customer_tags")
    with op.batch_alter_table("customer_leads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_leads_tenant_id"))
        batch_op.drop_index("ix_customer_leads_tenant_customer")

    op.drop_table("customer_leads")
    with op.batch_alter_table("customer_contact_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_contact_keys_tenant_id"))
        batch_op.drop_index("ix_customer_contact_keys_tenant_customer")

    op.drop_table("customer_contact_keys")
