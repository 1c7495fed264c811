"""tenant settings store: the six policy documents move from lead_settings (proto JSON) to kit's
versioned binary documents with history (tenant_settings, tenant_settings_history)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from google.protobuf import json_format
from google.protobuf.message import Message

from salesops.leads.v1 import policies_pb2

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# lead_settings.kind -> the message type (its full name is the document name in the new store).
KINDS: dict[str, type[Message]] = {
    "grading": policies_pb2.GradingRules,
    "routing": policies_pb2.RoutingRules,
    "pool": policies_pb2.PoolRules,
    "sla": policies_pb2.SlaPolicies,
    "intake": policies_pb2.IntakePolicy,
    "follow_up": policies_pb2.FollowUpPolicy,
}
DOCUMENTS = {kind: t.DESCRIPTOR.full_name for kind, t in KINDS.items()}


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
    old = sa.table(
        "lead_settings",
        sa.column("tenant_id", sa.String),
        sa.column("kind", sa.String),
        sa.column("body", sa.JSON),
        sa.column("version", sa.Integer),
        sa.column("updated_by", sa.String),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    rows = []
    for r in op.get_bind().execute(sa.select(old)).mappings():
        if r["kind"] not in KINDS:
            continue
        msg = KINDS[r["kind"]]()
        json_format.ParseDict(r["body"] or {}, msg, ignore_unknown_fields=True)
        rows.append(
            {
                "tenant_id": r["tenant_id"],
                "document": DOCUMENTS[r["kind"]],
                "version": r["version"],
                "body": msg.SerializeToString(deterministic=True),
                "updated_at": r["updated_at"] or datetime.now(UTC),
                "updated_by": r["updated_by"] or "",
            }
        )
    if rows:
        op.bulk_insert(current, rows)
        op.bulk_insert(history, rows)  # today's version starts the history
    with op.batch_alter_table("lead_settings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lead_settings_tenant_id"))
    op.drop_table("lead_settings")


def downgrade() -> None:
    old = op.create_table(
        "lead_settings",
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "kind", name=op.f("pk_lead_settings")),
    )
    with op.batch_alter_table("lead_settings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lead_settings_tenant_id"), ["tenant_id"], unique=False)
    kinds = {doc: kind for kind, doc in DOCUMENTS.items()}
    t = sa.table(
        "tenant_settings",
        sa.column("tenant_id", sa.String),
        sa.column("document", sa.String),
        sa.column("version", sa.Integer),
        sa.column("body", sa.LargeBinary),
        sa.column("updated_at", sa.DateTime(timezone=True)),
        sa.column("updated_by", sa.String),
    )
    rows = []
    for r in op.get_bind().execute(sa.select(t)).mappings():
        kind = kinds.get(r["document"])
        if kind is None:
            continue
        msg = KINDS[kind].FromString(r["body"])
        rows.append(
            {
                "tenant_id": r["tenant_id"],
                "kind": kind,
                "body": json_format.MessageToDict(msg, preserving_proto_field_name=True),
                "version": r["version"],
                "updated_by": r["updated_by"][:64],
                "updated_at": r["updated_at"],
            }
        )
    if rows:
        op.bulk_insert(old, rows)
    op.drop_table("tenant_settings_history")
    op.drop_table("tenant_settings")
