"""ids unique per tenant: composite primary keys (tenant_id, id)

One tenant's "default" escalation policy (or any client-made id) used to collide
with another tenant's on a global primary key. Batch mode, so SQLite rebuilds
the tables and PostgreSQL alters them in place.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "notify_notifications",
    "notify_inbox_items",
    "notify_deliveries",
    "notify_templates",
    "notify_channel_configs",
    "notify_escalation_policies",
)


def _rekey(table: str, columns: list[str]) -> None:
    with op.batch_alter_table(table, recreate="always") as batch_op:
        batch_op.drop_constraint(f"pk_{table}", type_="primary")
        batch_op.create_primary_key(f"pk_{table}", columns)


def upgrade() -> None:
    for table in TABLES:
        _rekey(table, ["tenant_id", "id"])


def downgrade() -> None:
    # Only possible while no id is shared by two tenants (a global key cannot hold them).
    for table in TABLES:
        _rekey(table, ["id"])
