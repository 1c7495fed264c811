"""kit.db on SQLite: a unit of work makes few calls to aiosqlite's thread (each one is a thread
hand-off, the main cost of a short read), and a connection never serves anyone inside a
transaction it was left with: not when returned mid-way, not when its caller was cancelled while
its BEGIN still waited on that thread."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiosqlite.core
import pytest
from sqlalchemy import String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.db import Database, TenantScoped


class Base(DeclarativeBase):
    pass


class Item(TenantScoped, Base):
    __tablename__ = "item"
    id: Mapped[str] = mapped_column(String(26), primary_key=True)


@pytest.fixture
def driver_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The name of every function aiosqlite runs on its connection's thread."""
    calls: list[str] = []
    real = aiosqlite.core.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(getattr(fn, "func", fn), "__name__", "?"))
        return await real(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counted)
    yield calls


async def _db(path: Path) -> Database:
    db = Database(f"sqlite:///{path}")
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with db.session("t") as s:
        s.add(Item(id="first"))
        await s.commit()
    return db


async def test_a_one_query_read_makes_six_driver_calls(tmp_path: Path, driver_calls: list[str]) -> None:
    db = await _db(tmp_path / "r.db")
    for _ in range(3):  # the pool's connection is reused: no connect, no liveness ping
        driver_calls.clear()
        async with db.session("t", read_only=True) as s:
            assert await s.scalar(select(func.count()).select_from(Item)) == 1
        # BEGIN (1), the query (cursor, execute, fetchall, close), the session's rollback and the
        # pool's on return (kept: see the cancelled-BEGIN test). It was 13: a `SELECT 1` ping (4)
        # and BEGIN through a cursor (3).
        assert driver_calls == ["execute", "cursor", "execute", "fetchall", "close", "rollback", "rollback"]
    driver_calls.clear()
    async with db.session("t") as s:
        s.add(Item(id="second"))
        await s.commit()
    assert driver_calls.count("rollback") == 1  # the pool's, on return
    await db.dispose()


async def test_a_connection_returned_mid_transaction_is_rolled_back(tmp_path: Path) -> None:
    db = await _db(tmp_path / "t.db")
    # A transaction SQLAlchemy does not know of (so its own close does not end it): the pool's
    # reset must, or the next unit of work on this connection fails in BEGIN.
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.execute("BEGIN IMMEDIATE")
        await driver.execute("INSERT INTO item (id, tenant_id) VALUES ('lost', 't')")
        assert driver.in_transaction
    async with db.session("t") as s:  # the same (only idle) connection, and a writer
        s.add(Item(id="second"))
        await s.commit()
    async with db.session("t", read_only=True) as s:
        assert sorted(await s.scalars(select(Item.id))) == ["first", "second"]
    await db.dispose()


async def test_a_caller_cancelled_while_its_begin_waits_leaves_no_transaction_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}", pool_size=1, busy_timeout_s=1.0)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    real = aiosqlite.core.Connection._execute
    slow_begins = [True]
    pending: list[asyncio.Future[Any]] = []

    async def busy_thread_then(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        # The driver's thread is busy when the BEGIN is queued (a loaded machine), so the caller's
        # deadline passes while it waits; the BEGIN still runs on that thread afterwards.
        if args and str(args[0]).startswith("BEGIN") and slow_begins:
            slow_begins.clear()
            pending.append(asyncio.ensure_future(real(self, time.sleep, 0.3)))  # type: ignore[no-untyped-call]
        return await real(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.core.Connection, "_execute", busy_thread_then)

    async def write(item_id: str) -> None:
        async with db.session("t") as s:
            s.add(Item(id=item_id))
            await s.commit()

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(write("cancelled"), 0.05)
    # The one connection again: its late BEGIN IMMEDIATE must have been ended, or this fails in
    # BEGIN ("within a transaction") or waits out the busy timeout on its write lock.
    await asyncio.wait_for(write("next"), 30)
    async with db.session("t", read_only=True) as s:
        assert sorted(await s.scalars(select(Item.id))) == ["next"]
    await db.dispose()
