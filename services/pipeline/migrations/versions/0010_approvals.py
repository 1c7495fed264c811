"""approval flows, the approvals' projection, assignments, audit and standing delegations

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def _tenant(table: str) -> sa.Column[str]:
    return sa.Column("tenant_id", sa.String(length=64), nullable=False)


def _tenant_index(table: str) -> None:
    op.create_index(op.f(f"ix_{table}_tenant_id"), table, ["tenant_id"], unique=False)


def upgrade() -> None:
    op.create_table(
        "approval_flows",
        sa.Column("flow_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        _tenant("approval_flows"),
        sa.PrimaryKeyConstraint("tenant_id", "flow_id", "version", name=op.f("pk_approval_flows")),
    )
    _tenant_index("approval_flows")
    op.create_index("ix_approval_flows_tenant_current", "approval_flows", ["tenant_id", "current", "kind"])
    op.create_table(
        "approvals",
        sa.Column("approval_id", sa.String(length=64), nullable=False),
        sa.Column("flow_id", sa.String(length=64), nullable=False),
        sa.Column("flow_version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("deal_id", sa.String(length=64), nullable=False),
        sa.Column("deal_owner_user_id", sa.String(length=128), nullable=False),
        sa.Column("org_path", sa.String(length=200), nullable=False),
        sa.Column("requester_user_id", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("submit_time", TS, nullable=False),
        sa.Column("complete_time", TS, nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        _tenant("approvals"),
        sa.PrimaryKeyConstraint("tenant_id", "approval_id", name=op.f("pk_approvals")),
    )
    _tenant_index("approvals")
    op.create_index("ix_approvals_tenant_deal_flow", "approvals", ["tenant_id", "deal_id", "flow_id"])
    op.create_index("ix_approvals_tenant_submit", "approvals", ["tenant_id", "submit_time"])
    op.create_table(
        "approval_assignments",
        sa.Column("approval_id", sa.String(length=64), nullable=False),
        sa.Column("step_key", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("since", TS, nullable=False),
        sa.Column("due_time", TS, nullable=True),
        sa.Column("indirect", sa.Boolean(), nullable=False),
        _tenant("approval_assignments"),
        sa.PrimaryKeyConstraint(
            "tenant_id", "approval_id", "step_key", "user_id", name=op.f("pk_approval_assignments")
        ),
    )
    _tenant_index("approval_assignments")
    op.create_index(
        "ix_approval_assignments_tenant_user_active",
        "approval_assignments",
        ["tenant_id", "user_id", "active", "since"],
    )
    op.create_table(
        "approval_actions",
        sa.Column("approval_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("action_type", sa.String(length=16), nullable=False),
        sa.Column("step_key", sa.String(length=64), nullable=False),
        sa.Column("actor_user_id", sa.String(length=128), nullable=False),
        sa.Column("client", sa.String(length=200), nullable=False),
        sa.Column("action_time", TS, nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        _tenant("approval_actions"),
        sa.PrimaryKeyConstraint("tenant_id", "approval_id", "seq", name=op.f("pk_approval_actions")),
    )
    _tenant_index("approval_actions")
    op.create_table(
        "approval_delegations",
        sa.Column("delegation_id", sa.String(length=26), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("delegate_user_id", sa.String(length=128), nullable=False),
        sa.Column("start_time", TS, nullable=False),
        sa.Column("end_time", TS, nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        _tenant("approval_delegations"),
        sa.PrimaryKeyConstraint("tenant_id", "delegation_id", name=op.f("pk_approval_delegations")),
    )
    _tenant_index("approval_delegations")
    op.create_index(
        "ix_approval_delegations_tenant_user", "approval_delegations", ["tenant_id", "user_id", "start_time"]
    )


def downgrade() -> None:
    for table in (
        "approval_delegations",
        "approval_actions",
        "approval_assignments",
        "approvals",
        "approval_flows",
    ):
        op.drop_table(table)
