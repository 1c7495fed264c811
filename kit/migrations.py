"""Alembic per service: upgrade on start (embedded mode) and a small CLI.

Each service keeps its scripts in `services/<name>/migrations/` with an env.py
that calls `run_env(metadata)`. Usage for developers:
    python -m kit.migrations leads upgrade
    python -m kit.migrations leads revision -m "add lead table" --autogenerate
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.operations import Operations
from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from kit.config import Settings
from kit.db import Database, normalise_url

ROOT = Path(__file__).resolve().parent.parent


def script_location(service: str) -> Path:
    return ROOT / "services" / service / "migrations"


def alembic_config(service: str, url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location(service)))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).render_as_string(hide_password=False))
    cfg.attributes["service"] = service
    return cfg


async def upgrade_to_head(service: str, database: Database) -> None:
    """Apply every pending migration of `service` on `database` (idempotent)."""
    cfg = alembic_config(service, database.url.render_as_string(hide_password=False))

    def _run(conn: Connection) -> None:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")

    async with database.engine.begin() as conn:
        await conn.run_sync(_run)


def create_event_tables(op: Operations) -> None:
    """The outbox and processed-events tables (kit.events), as every service's first migration makes them.

    Frozen: databases in the field were built by exactly these statements. A
    change to the event tables is a new migration in each service, never an
    edit here.
    """
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(length=26), nullable=False, comment="event ULID = envelope.id"),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=128), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False, comment="serialized EventEnvelope"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_published_at", ["published_at"], unique=False)
        batch_op.create_index(
            "ix_outbox_unpublished",
            ["id"],
            unique=False,
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        )
    op.create_table(
        "processed_events",
        sa.Column("consumer_group", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=26), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer_group", "event_id", name=op.f("pk_processed_events")),
    )


def drop_event_tables(op: Operations) -> None:
    """Undo `create_event_tables`."""
    op.drop_table("processed_events")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outbox_unpublished",
            postgresql_where=sa.text("published_at IS NULL"),
            sqlite_where=sa.text("published_at IS NULL"),
        )
        batch_op.drop_index("ix_outbox_published_at")
    op.drop_table("outbox")


def run_env(metadata: MetaData) -> None:
    """Body of every service's migrations/env.py."""
    from alembic import context

    cfg = context.config
    # SQLite cannot ALTER most things in place: batch mode rebuilds tables.
    options = {"target_metadata": metadata, "render_as_batch": True, "compare_type": True}

    def do_run(conn: Connection) -> None:
        context.configure(connection=conn, **options)  # type: ignore[arg-type]
        with context.begin_transaction():
            context.run_migrations()

    if context.is_offline_mode():
        context.configure(url=cfg.get_main_option("sqlalchemy.url"), literal_binds=True, **options)  # type: ignore[arg-type]
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = cfg.attributes.get("connection")
    if connection is not None:
        do_run(connection)
        return

    async def run_async() -> None:
        engine = create_async_engine(cfg.get_main_option("sqlalchemy.url") or "", poolclass=pool.NullPool)
        async with engine.connect() as conn:
            await conn.run_sync(do_run)
            await conn.commit()
        await engine.dispose()

    asyncio.run(run_async())


def main() -> None:
    parser = argparse.ArgumentParser(description="Alembic migrations of one salesops service")
    parser.add_argument("service")
    sub = parser.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("upgrade")
    up.add_argument("revision", nargs="?", default="head")
    down = sub.add_parser("downgrade")
    down.add_argument("revision")
    rev = sub.add_parser("revision")
    rev.add_argument("-m", "--message", required=True)
    rev.add_argument("--autogenerate", action="store_true")
    sub.add_parser("current")
    args = parser.parse_args()
    cfg = alembic_config(args.service, Settings.from_env(args.service).database_url)
    if args.cmd == "upgrade":
        command.upgrade(cfg, args.revision)
    elif args.cmd == "downgrade":
        command.downgrade(cfg, args.revision)
    elif args.cmd == "revision":
        command.revision(cfg, message=args.message, autogenerate=args.autogenerate)
    else:
        command.current(cfg)


if __name__ == "__main__":
    main()
