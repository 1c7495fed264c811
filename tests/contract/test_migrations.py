"""Every service's migrations build exactly the tables its store declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from kit.config import SERVICES
from kit.db import Database
from kit.migrations import upgrade_to_head


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
