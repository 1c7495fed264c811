"""Migration 0004 moves the tenants' policies from lead_settings (proto JSON) into kit's settings store,
keeping version, author and content; and back down again (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from alembic import command
from sqlalchemy import Connection, text

from kit.db import Database
from kit.migrations import alembic_config, upgrade_to_head
from salesops.leads.v1 import policies_pb2
from services.leads import policies
from services.leads.store import transactions


async def _alembic(db: Database, verb: str, target: str) -> None:
    cfg = alembic_config("leads", db.url.render_as_string(hide_password=False))

    def run(conn: Connection) -> None:
        cfg.attributes["connection"] = conn
        getattr(command, verb)(cfg, target)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


async def _routing(db: Database, tenant: str) -> policies_pb2.RoutingRules:
    async with transactions(db).read(tenant) as uow:
        msg: policies_pb2.RoutingRules = await policies.load(uow, policies.ROUTING)
        return msg


async def test_json_settings_move_into_the_store_and_back(database_url: str) -> None:
    db = Database(database_url)
    try:
        await _alembic(db, "upgrade", "0003")
        body = {"fallback_pool_id": "overflow", "rules": [{"rule_id": "east", "team_path": "east/team-a"}]}
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO lead_settings (tenant_id, kind, body, version, updated_by, updated_at)"
                    " VALUES ('t1', 'routing', :b, 3, 'ops-admin', :at)"
                ),
                {"b": json.dumps(body), "at": datetime(2026, 11, 30, tzinfo=UTC)},
            )
        await upgrade_to_head("leads", db)
        moved = await _routing(db, "t1")
        assert (moved.version, moved.etag, moved.audit.updated_by) == (3, "3", "ops-admin")
        assert moved.fallback_pool_id == "overflow" and [r.rule_id for r in moved.rules] == ["east"]
        assert (await _routing(db, "t2")).fallback_pool_id == "fallback"  # others keep the defaults
        async with db.engine.begin() as conn:
            history = await conn.scalar(text("SELECT count(*) FROM tenant_settings_history"))
        assert history == 1
        await _alembic(db, "downgrade", "0003")
        async with db.engine.begin() as conn:
            row = (await conn.execute(text("SELECT body, version FROM lead_settings"))).one()
        restored = row.body if isinstance(row.body, dict) else json.loads(row.body)
        assert restored["fallback_pool_id"] == "overflow" and row.version == 3
    finally:
        await db.dispose()
