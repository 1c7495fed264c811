"""tenant settings store: NotifySettings moves from notify_settings to kit's versioned
documents with history (tenant_settings, tenant_settings_history)

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from salesops.notify.v1 import settings_pb2

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DOCUMENT = settings_pb2.NotifySettings.DESCRIPTOR.full_name


def _columns(*, history: bool) -> list[sa.Column[object]]:
    return [
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column(
            "document",
            sa.String(length=128),
            nullable=False,
            comment=None if history else "which settings: a message type name",
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "body", sa.LargeBinary(), nullable=False, comment=None if history else "serialized proto message"
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
    ]


def _documents() -> sa.TableClause:
    return sa.table(
        "tenant_settings",
        sa.column("tenant_id", sa.String),
        sa.column("document", sa.String),
        sa.column("version", sa.Integer),
        sa.column("body", sa.LargeBinary),
        sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("updated_by", sa.String),
    )


def _old() -> sa.TableClause:
    return sa.table(
        "notify_settings",
        sa.column("tenant_id", sa.String),
        sa.column("version", sa.Integer),
        sa.column("payload", sa.LargeBinary),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )


def upgrade() -> None:
    current = op.create_table(
        "tenant_settings",
        *_columns(history=False),
        sa.PrimaryKeyConstraint("tenant_id", "document", name=op.f("pk_tenant_settings")),
    )
    history = op.create_table(
        "tenant_settings_history",
        *_columns(history=True),
        sa.PrimaryKeyConstraint("tenant_id", "document", "version", name=op.f("pk_tenant_settings_history")),
    )
    rows = [
        {
            "tenant_id": r["tenant_id"],
            "document": DOCUMENT,
            "version": r["version"],
            "body": settings_pb2.NotifySettings.FromString(r["payload"]).SerializeToString(
                deterministic=True
            ),
            "updated_at": r["updated_at"] or datetime.now(UTC),
            "updated_by": "",
        }
        for r in op.get_bind().execute(sa.select(_old())).mappings()
    ]
    if rows:
        op.bulk_insert(current, rows)
        op.bulk_insert(history, rows)  # today's version starts the history
    with op.batch_alter_table("notify_settings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notify_settings_tenant_id"))
    op.drop_table("notify_settings")


def downgrade() -> None:
    old = op.create_table(
        "notify_settings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_settings")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_notify_settings_tenant_id")),
    )
    with op.batch_alter_table("notify_settings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notify_settings_tenant_id"), ["tenant_id"], unique=False)
    docs = _documents()
    rows = [
        {
            "tenant_id": r["tenant_id"],
            "version": r["version"],
            "payload": r["body"],
            "updated_at": r["updated_at"],
        }
        for r in op.get_bind().execute(sa.select(docs).where(docs.c.document == DOCUMENT)).mappings()
    ]
    if rows:
        op.bulk_insert(old, rows)
    op.drop_table("tenant_settings_history")
    op.drop_table("tenant_settings")
