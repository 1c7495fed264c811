"""keyword trackers, conversations, hits, weekly keyword digests

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "insight_keywords",
        sa.Column("keyword_id", sa.String(length=64), nullable=False),
        sa.Column("term", sa.String(length=100), nullable=False),
        sa.Column("term_key", sa.String(length=100), nullable=False),
        sa.Column("category", sa.Integer(), nullable=False),
        sa.Column("synonyms", sa.Text(), nullable=False),
        sa.Column("customer_only", sa.Boolean(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "keyword_id", name=op.f("pk_insight_keywords")),
        sa.UniqueConstraint("tenant_id", "term_key", name=op.f("uq_insight_keywords_tenant_id_term_key")),
    )
    with op.batch_alter_table("insight_keywords", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_insight_keywords_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "conversations",
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.Integer(), nullable=False),
        sa.Column("start_time", TS, nullable=False),
        sa.Column("source_connector_id", sa.String(length=64), nullable=True),
        sa.Column("external_id", sa.String(length=256), nullable=True),
        sa.Column("submitted_by", sa.String(length=128), nullable=False),
        sa.Column("org_path", sa.String(length=256), nullable=False),
        sa.Column("analysis_state", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("transcript", sa.LargeBinary(), nullable=True),
        sa.Column("transcript_expire_at", TS, nullable=False),
        sa.Column("findings", sa.LargeBinary(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "conversation_id", name=op.f("pk_conversations")),
        sa.UniqueConstraint(
            "tenant_id",
            "source_connector_id",
            "external_id",
            name=op.f("uq_conversations_tenant_id_source_connector_id_external_id"),
        ),
    )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index("ix_conversations_deal", ["tenant_id", "deal_id", "start_time"], unique=False)
        batch_op.create_index("ix_conversations_lead", ["tenant_id", "lead_id", "start_time"], unique=False)
        batch_op.create_index("ix_conversations_start", ["tenant_id", "start_time"], unique=False)
        batch_op.create_index(batch_op.f("ix_conversations_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "conversation_hits",
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("keyword_id", sa.String(length=64), nullable=False),
        sa.Column("term", sa.String(length=100), nullable=False),
        sa.Column("category", sa.Integer(), nullable=False),
        sa.Column("mentions", sa.Integer(), nullable=False),
        sa.Column("customer_mentions", sa.Integer(), nullable=False),
        sa.Column("lead_id", sa.String(length=64), nullable=False),
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("org_path", sa.String(length=256), nullable=False),
        sa.Column("start_time", TS, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "conversation_id", "keyword_id", name=op.f("pk_conversation_hits")
        ),
    )
    with op.batch_alter_table("conversation_hits", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversation_hits_keyword", ["tenant_id", "keyword_id", "start_time"], unique=False
        )
        batch_op.create_index("ix_conversation_hits_week", ["tenant_id", "start_time"], unique=False)
        batch_op.create_index(batch_op.f("ix_conversation_hits_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "keyword_digests",
        sa.Column("digest_id", sa.String(length=26), nullable=False),
        sa.Column("week_start", sa.String(length=10), nullable=False),
        sa.Column("org_path", sa.String(length=256), nullable=False),
        sa.Column("generated_at", TS, nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "digest_id", name=op.f("pk_keyword_digests")),
        sa.UniqueConstraint(
            "tenant_id",
            "week_start",
            "org_path",
            name=op.f("uq_keyword_digests_tenant_id_week_start_org_path"),
        ),
    )
    with op.batch_alter_table("keyword_digests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_keyword_digests_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "insight_subjects",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("owner_user_id", sa.String(length=128), nullable=False),
        sa.Column("org_path", sa.String(length=256), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "kind", "subject_id", name=op.f("pk_insight_subjects")),
    )
    with op.batch_alter_table("insight_subjects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_insight_subjects_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    for table in (
        "insight_subjects",
        "keyword_digests",
        "conversation_hits",
        "conversations",
        "insight_keywords",
    ):
        op.drop_table(table)
