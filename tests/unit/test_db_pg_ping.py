"""kit.db on PostgreSQL: a pooled connection is pinged only after lying idle (PING_IDLE_S), and one
whose server side is gone by then is replaced before use, never handed to the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from kit import db as kit_db
from kit.db import Database

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg(postgres_url: str) -> AsyncIterator[Database]:
    database = Database(postgres_url, pool_size=1)
    yield database
    await database.dispose()


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every ping sent: the adapter's ping, counted."""
    from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

    sent: list[int] = []
    real = AsyncAdapt_asyncpg_connection.ping

    def counted(self: Any) -> None:
        sent.append(1)
        real(self)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counted)
    return sent


async def _backend_pid(db: Database) -> int:
    async with db.session("t") as s:
        return int(await s.scalar(text("SELECT pg_backend_pid()")))  # type: ignore[arg-type]


async def test_a_connection_in_steady_use_is_not_pinged(pg: Database, pings: list[int]) -> None:
    first = await _backend_pid(pg)
    for _ in range(5):
        assert await _backend_pid(pg) == first
    assert pings == []


async def test_an_idle_connection_is_pinged_and_replaced_when_its_server_side_is_gone(
    pg: Database, pings: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await _backend_pid(pg)
    killer = Database(pg.url.render_as_string(hide_password=False))  # ends the pooled one's backend
    try:
        async with killer.engine.connect() as conn:
            await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    finally:
        await killer.dispose()
    monkeypatch.setattr(kit_db, "PING_IDLE_S", 0.0)  # as if it had lain idle
    second = await _backend_pid(pg)  # not an error: the ping failed, a new connection served it
    assert second != first
    assert pings


async def test_statement_reads_run_outside_a_transaction_and_the_next_session_in_one(pg: Database) -> None:
    # snapshot=False: autocommit, no BEGIN and ROLLBACK (each statement its own transaction); the
    # same pooled connection (pool of one) then serves a session in one transaction again.
    xid = text("SELECT pg_current_xact_id()::text")
    for _ in range(2):
        async with pg.session("t", read_only=True, snapshot=False) as s:
            assert await s.scalar(xid) != await s.scalar(xid)
        for read_only in (True, False):
            async with pg.session("t", read_only=read_only) as s:
                assert await s.scalar(xid) == await s.scalar(xid)
    await pg.ping()
    async with pg.session("t") as s:
        assert await s.scalar(xid) == await s.scalar(xid)
