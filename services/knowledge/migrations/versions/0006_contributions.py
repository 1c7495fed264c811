"""contributions and points

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

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "contributions",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("contribution_id", sa.String(64), nullable=False),
        sa.Column("contributor_user_id", sa.String(128), nullable=False),
        sa.Column("contributor_org", sa.String(200), nullable=False),
        sa.Column("kind", sa.Integer(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("submitted_at", TS, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("reviewer_user_id", sa.String(128), nullable=False),
        sa.Column("reviewed_at", TS, nullable=True),
        sa.Column("rejection_reason", sa.Integer(), nullable=False),
        sa.Column("review_comment", sa.String(2000), nullable=False),
        sa.Column("published_card_id", sa.String(64), nullable=False),
        sa.Column("request_digest", sa.String(64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "contribution_id", name=op.f("pk_contributions")),
    )
    op.create_index("ix_contributions_tenant_id", "contributions", ["tenant_id"])
    op.create_index(
        "ix_contributions_tenant_status_submitted", "contributions", ["tenant_id", "status", "submitted_at"]
    )
    op.create_index(
        "ix_contributions_tenant_contributor",
        "contributions",
        ["tenant_id", "contributor_user_id", "submitted_at"],
    )
    op.create_index("ix_contributions_tenant_card", "contributions", ["tenant_id", "published_card_id"])
    op.create_table(
        "point_entries",
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("entry_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("user_org", sa.String(200), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Integer(), nullable=False),
        sa.Column("contribution_id", sa.String(64), nullable=False),
        sa.Column("card_id", sa.String(64), nullable=False),
        sa.Column("note", sa.String(1000), nullable=False),
        sa.Column("source_key", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "entry_id", name=op.f("pk_point_entries")),
        sa.UniqueConstraint("tenant_id", "source_key", name=op.f("uq_point_entries_tenant_id_source_key")),
    )
    op.create_index("ix_point_entries_tenant_id", "point_entries", ["tenant_id"])
    op.create_index(
        "ix_point_entries_tenant_user_created", "point_entries", ["tenant_id", "user_id", "created_at"]
    )
    op.create_index("ix_point_entries_tenant_created", "point_entries", ["tenant_id", "created_at"])
    op.create_index(
        "ix_point_entries_tenant_card_reason",
        "point_entries",
        ["tenant_id", "card_id", "reason", "created_at"],
    )


def downgrade() -> None:
    op.drop_table("point_entries")
    op.drop_table("contributions")
