"""partner keys: keys, secret hashes, audit trail

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "partner_keys",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("partner_name", sa.String(length=200), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("org_path", sa.String(length=256), nullable=False),
        sa.Column("allowed_cidrs", sa.Text(), nullable=False),
        sa.Column("rate_limit_per_minute", sa.Integer(), nullable=False),
        sa.Column("expire_at", TS, nullable=False),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("previous_secret_expire_at", TS, nullable=True),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("revoked_by", sa.String(length=128), nullable=False),
        sa.Column("revoke_reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("request_digest", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "key_id", name=op.f("pk_partner_keys")),
    )
    with op.batch_alter_table("partner_keys", schema=None) as batch_op:
        batch_op.create_index("ix_partner_keys_tenant_name", ["tenant_id", "display_name"], unique=False)
        batch_op.create_index(batch_op.f("ix_partner_keys_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "partner_key_secrets",
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("valid_until", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "secret_hash", name=op.f("pk_partner_key_secrets")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_partner_key_secrets_secret_hash")),
    )
    with op.batch_alter_table("partner_key_secrets", schema=None) as batch_op:
        batch_op.create_index("ix_partner_key_secrets_key", ["tenant_id", "key_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_partner_key_secrets_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "partner_key_changes",
        sa.Column("change_id", sa.String(length=26), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("fields", sa.String(length=1000), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("changed_by", sa.String(length=128), nullable=False),
        sa.Column("changed_at", TS, nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "change_id", name=op.f("pk_partner_key_changes")),
    )
    with op.batch_alter_table("partner_key_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_partner_key_changes_key", ["tenant_id", "key_id", "changed_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_partner_key_changes_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    op.drop_table("partner_key_changes")
    op.drop_table("partner_key_secrets")
    op.drop_table("partner_keys")
