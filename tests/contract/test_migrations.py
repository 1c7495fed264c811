"""Every service's migrations build exactly the tables its store declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from kit.config import SERVICES
from kit.db import Database
from kit.migrations import alembic_config, upgrade_to_head


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_match_the_store_and_are_idempotent(service: str, database_url: str) -> None:
    db = Database(database_url)
    try:
        await upgrade_to_head(service, db)
        await upgrade_to_head(service, db)  # a second start finds nothing to do
        metadata = importlib.import_module(f"services.{service}.store").metadata
        async with db.engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), metadata
                )
            )
        assert {"outbox", "processed_events", "alembic_version"} <= tables
        assert diff == [], f"{service}: store and migrations differ: {diff}"
    finally:
        await db.dispose()


async def test_event_tables_helper_upgrades_and_downgrades(database_url: str) -> None:
    """kit.migrations.create_event_tables / drop_event_tables, as every service's 0001 calls them."""
    db = Database(database_url)
    try:
        await upgrade_to_head("pipeline", db)
        cfg = alembic_config("pipeline", db.url.render_as_string(hide_password=False))

        def down(conn: Connection) -> None:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "base")

        async with db.engine.begin() as conn:
            await conn.run_sync(down)
        async with db.engine.connect() as conn:
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert not {"outbox", "processed_events"} & tables
        await upgrade_to_head("pipeline", db)  # and back up again
    finally:
        await db.dispose()
