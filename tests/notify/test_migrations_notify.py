"""Notify's own migrations go down and up again with data in place (SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Connection, text

from kit.db import Database
from kit.migrations import alembic_config, upgrade_to_head


async def _alembic(db: Database, verb: str, target: str) -> None:
    cfg = alembic_config("notify", db.url.render_as_string(hide_password=False))

    def run(conn: Connection) -> None:
        cfg.attributes["connection"] = conn
        getattr(command, verb)(cfg, target)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


async def test_down_to_global_keys_and_up_again(database_url: str) -> None:
    db = Database(database_url)
    try:
        await upgrade_to_head("notify", db)
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO notify_escalation_policies (tenant_id, id, version, payload, updated_at)"
                    " VALUES ('t1', 'default', 1, :p, CURRENT_TIMESTAMP)"
                ),
                {"p": b""},
            )
        await _alembic(db, "downgrade", "0006")
        await upgrade_to_head("notify", db)
        async with db.engine.begin() as conn:
            # Ids are per tenant: a second tenant's "default" is its own row.
            await conn.execute(
                text(
                    "INSERT INTO notify_escalation_policies (tenant_id, id, version, payload, updated_at)"
                    " VALUES ('t2', 'default', 1, :p, CURRENT_TIMESTAMP)"
                ),
                {"p": b""},
            )
            count = await conn.scalar(text("SELECT count(*) FROM notify_escalation_policies"))
        assert count == 2
    finally:
        await db.dispose()
