"""lead tables: leads, intakes, duplicates, decisions, activities, behaviour events, rep profiles, settings, claims, cooldowns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 13:27:35.382293
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
        "lead_activities",
        sa.Column("activity_id", sa.String(length=64), nullable=False),
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("actor_user_id", sa.String(length=64), nullable=False),
        sa.Column("activity_type", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("occur_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_response", sa.Boolean(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "activity_id", name=op.f("pk_lead_activities")),
    )
    with op.batch_alter_table("lead_activities", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lead_activities_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            "ix_lead_activities_tenant_lead", ["tenant_id", "lead_id", "occur_time"], unique=False
        )

    op.create_table(
        "lead_behavior_events",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("occur_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "event_id", name=op.f("pk_lead_behavior_events")),
    )
    with op.batch_alter_table("lead_behavior_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lead_behavior_events_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("ix_lead_behavior_events_tenant_lead", ["tenant_id", "lead_id"], unique=False)

    op.create_table(
        "lead_claims",
        sa.Column("decision_id", sa.String(length=26), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("local_day", sa.String(length=10), nullable=False),
        sa.Column("claim_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "decision_id", name=op.f("pk_lead_claims")),
    )
    with op.batch_alter_table("lead_claims", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lead_claims_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            "ix_lead_claims_tenant_user_day", ["tenant_id", "user_id", "local_day"], unique=False
        )

    op.create_table(
        "lead_cooldowns",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", "lead_id", name=op.f("pk_lead_cooldowns")),
    )
    with op.batch_alter_table("lead_cooldowns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lead_cooldowns_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "lead_decisions",
        sa.Column("decision_id", sa.String(length=26), nullable=False),
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("decide_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "decision_id", name=op.f("pk_lead_decisions")),
    )
    with op.batch_alter_table("lead_decisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lead_decisions_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            "ix_lead_decisions_tenant_lead", ["tenant_id", "lead_id", "decide_time"], unique=False
        )

    op.create_table(
        "lead_duplicates",
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("other_lead_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("display_name", sa.String(length=300), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("detect_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "lead_id", "other_lead_id", "kind", name=op.f("pk_lead_duplicates")
        ),
    )
    with op.batch_alter_table("lead_duplicates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lead_duplicates_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "lead_intakes",
        sa.Column("intake_id", sa.String(length=64), nullable=False),
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("receive_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "intake_id", name=op.f("pk_lead_intakes")),
    )
    with op.batch_alter_table("lead_intakes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lead_intakes_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("ix_lead_intakes_tenant_lead", ["tenant_id", "lead_id"], unique=False)

    op.create_table(
        "lead_settings",
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "kind", name=op.f("pk_lead_settings")),
    )
    with op.batch_alter_table("lead_settings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lead_settings_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "leads",
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("display_name", sa.String(length=300), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("company_norm", sa.String(length=200), nullable=False),
        sa.Column("region", sa.String(length=128), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("source_code", sa.String(length=64), nullable=False),
        sa.Column("grade", sa.String(length=1), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("grading", sa.JSON(), nullable=False),
        sa.Column("owner_user_id", sa.String(length=64), nullable=True),
        sa.Column("team_path", sa.String(length=200), nullable=False),
        sa.Column("supervisor_user_id", sa.String(length=64), nullable=False),
        sa.Column("pool_id", sa.String(length=64), nullable=True),
        sa.Column("pool_entry_reason", sa.String(length=32), nullable=False),
        sa.Column("assignment_reason", sa.String(length=32), nullable=False),
        sa.Column("assign_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_decision_id", sa.String(length=26), nullable=False),
        sa.Column("last_activity_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("activity_count", sa.Integer(), nullable=False),
        sa.Column("sla_state", sa.String(length=24), nullable=False),
        sa.Column("sla_grade", sa.String(length=1), nullable=False),
        sa.Column("sla_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sla_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sla_reminder", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sla_reminded", sa.Boolean(), nullable=False),
        sa.Column("sla_response_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sla_response_activity_id", sa.String(length=64), nullable=False),
        sa.Column("sla_responder", sa.String(length=64), nullable=False),
        sa.Column("sla_business_seconds", sa.Float(), nullable=True),
        sa.Column("sla_breach_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sla_breach_action", sa.String(length=24), nullable=False),
        sa.Column("sla_reassignments", sa.Integer(), nullable=False),
        sa.Column("needs_attention", sa.Boolean(), nullable=False),
        sa.Column("recycle_warned", sa.Boolean(), nullable=False),
        sa.Column("duplicate_review_needed", sa.Boolean(), nullable=False),
        sa.Column("intake_count", sa.Integer(), nullable=False),
        sa.Column("merged_into", sa.String(length=64), nullable=False),
        sa.Column("converted_opportunity_id", sa.String(length=64), nullable=False),
        sa.Column("close_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "lead_id", name=op.f("pk_leads")),
    )
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.create_index("ix_leads_tenant_created", ["tenant_id", "created_at"], unique=False)
        batch_op.create_index("ix_leads_tenant_email", ["tenant_id", "email"], unique=False)
        batch_op.create_index(batch_op.f("ix_leads_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            "ix_leads_tenant_owner_status", ["tenant_id", "owner_user_id", "status"], unique=False
        )
        batch_op.create_index("ix_leads_tenant_phone", ["tenant_id", "phone"], unique=False)
        batch_op.create_index("ix_leads_tenant_status_pool", ["tenant_id", "status", "pool_id"], unique=False)

    op.create_table(
        "rep_profiles",
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("team_path", sa.String(length=200), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("wrr_current", sa.Integer(), nullable=False),
        sa.Column("last_assigned_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name=op.f("pk_rep_profiles")),
    )
    with op.batch_alter_table("rep_profiles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rep_profiles_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index("ix_rep_profiles_tenant_team", ["tenant_id", "team_path"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("rep_profiles", schema=None) as batch_op:
        batch_op.drop_index("ix_rep_profiles_tenant_team")
        batch_op.drop_index(batch_op.f("ix_rep_profiles_tenant_id"))

    op.drop_table("rep_profiles")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index("ix_leads_tenant_status_pool")
        batch_op.drop_index("ix_leads_tenant_phone")
        batch_op.drop_index("ix_leads_tenant_owner_status")
        batch_op.drop_index(batch_op.f("ix_leads_tenant_id"))
        batch_op.drop_index("ix_leads_tenant_email")
        batch_op.drop_index("ix_leads_tenant_created")

    op.drop_table("leads")
    with op.batch_alter_table("lead_settings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lead_settings_tenant_id"))

    op.drop_table("lead_settings")
    with op.batch_alter_table("lead_intakes", schema=None) as batch_op:
        batch_op.drop_index("ix_lead_intakes_tenant_lead")
        batch_op.drop_index(batch_op.f("ix_lead_intakes_tenant_id"))

    op.drop_table("lead_intakes")
    with op.batch_alter_table("lead_duplicates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lead_duplicates_tenant_id"))

    op.drop_table("lead_duplicates")
    with op.batch_alter_table("lead_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_lead_decisions_tenant_lead")
        batch_op.drop_index(batch_op.f("ix_lead_decisions_tenant_id"))

    op.drop_table("lead_decisions")
    with op.batch_alter_table("lead_cooldowns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lead_cooldowns_tenant_id"))

    op.drop_table("lead_cooldowns")
    with op.batch_alter_table("lead_claims", schema=None) as batch_op:
        batch_op.drop_index("ix_lead_claims_tenant_user_day")
        batch_op.drop_index(batch_op.f("ix_lead_claims_tenant_id"))

    op.drop_table("lead_claims")
    with op.batch_alter_table("lead_behavior_events", schema=None) as batch_op:
        batch_op.drop_index("ix_lead_behavior_events_tenant_lead")
        batch_op.drop_index(batch_op.f("ix_lead_behavior_events_tenant_id"))

    op.drop_table("lead_behavior_events")
    with op.batch_alter_table("lead_activities", schema=None) as batch_op:
        batch_op.drop_index("ix_lead_activities_tenant_lead")
        batch_op.drop_index(batch_op.f("ix_lead_activities_tenant_id"))

    op.drop_table("lead_activities")
