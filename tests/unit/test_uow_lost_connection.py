"""Transactions on PostgreSQL when the server ends a pooled connection (a restart, a failover, an
idle timeout): a unit of work that lost it before COMMIT runs again on a new connection; a read
that lost it answers UNAVAILABLE (retry), never an internal error."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.exc import DBAPIError

from kit.db import Database
from kit.errors import Unavailable
from kit.resources import Transactions, UnitOfWork
from kit.resources.uow import CONFLICT_ATTEMPTS

metadata = MetaData()
rows = Table("notes", metadata, Column("id", Integer, primary_key=True), Column("body", String(16)))
outbox = Table("outbox", MetaData(), Column("id", Integer, primary_key=True))


@pytest.fixture
async def db(postgres_url: str) -> AsyncIterator[Database]:
    database = Database(postgres_url, pool_size=1)  # one pooled connection: the one we end
    async with database.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield database
    await database.dispose()


async def _end_pooled_connection(db: Database) -> None:
    """Terminate the backend of the pool's (only) connection, as a server restart would."""
    async with db.session("t") as session:
        pid = int(await session.scalar(text("SELECT pg_backend_pid()")))  # type: ignore[arg-type]
    killer = Database(db.url.render_as_string(hide_password=False))
    try:
        async with killer.engine.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await killer.dispose()


@pytest.mark.postgres
async def test_a_write_that_lost_its_connection_runs_again_once(db: Database) -> None:
    tx = Transactions(db, source="test", outbox=outbox)
    await _end_pooled_connection(db)
    runs: list[int] = []

    async def work(uow: UnitOfWork) -> None:
        runs.append(1)
        await uow.session.execute(insert(rows).values(id=1, body="kept"))

    await tx.run("t", work)  # the pooled connection was used a moment ago: handed out unpinged
    assert len(runs) == 2  # the first attempt met the ended connection
    async with db.session("t") as session:
        assert (await session.execute(select(rows.c.body))).scalars().all() == ["kept"]


@pytest.mark.postgres
async def test_a_read_that_lost_its_connection_is_unavailable(db: Database) -> None:
    tx = Transactions(db, source="test", outbox=outbox)
    await _end_pooled_connection(db)
    with pytest.raises(Unavailable) as raised:
        async with tx.read("t") as uow:
            await uow.session.execute(select(rows.c.id))
    assert raised.value.reason == "DATABASE_CONNECTION_LOST"
    async with tx.read("t") as uow:  # the next one gets a new connection
        assert (await uow.session.execute(select(rows.c.id))).all() == []


class _Deadlock(Exception):
    sqlstate = "40P01"


async def test_a_connection_lost_on_the_last_attempt_is_unavailable(tmp_path: object) -> None:
    """Deadlocks used every attempt but the last, which then lost its connection: UNAVAILABLE, not
    an internal error (SQLite: the errors are raised by the work, as the driver would)."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/t.db")
    tx = Transactions(db, source="test", outbox=outbox)
    attempts: list[int] = []

    async def work(uow: UnitOfWork) -> None:
        attempts.append(1)
        if len(attempts) < CONFLICT_ATTEMPTS:
            raise DBAPIError("UPDATE", {}, _Deadlock())
        raise DBAPIError("UPDATE", {}, ConnectionResetError(), connection_invalidated=True)

    try:
        with pytest.raises(Unavailable):
            await tx.run("t", work)
    finally:
        await db.dispose()
    assert len(attempts) == CONFLICT_ATTEMPTS
