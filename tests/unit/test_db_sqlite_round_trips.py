"""kit.db on SQLite: a unit of work makes few calls to aiosqlite's thread (each one is a thread
hand-off, the main cost of a short read), and a connection never goes back to the pool inside an
open transaction although the pool's own rollback-on-return is off."""

from __future__ import annotations

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
        # BEGIN (1), the query (cursor, execute, fetchall, close), one rollback. It was 13: a
        # `SELECT 1` ping (4), BEGIN through a cursor (3) and a second rollback on return.
        assert driver_calls == ["execute", "cursor", "execute", "fetchall", "close", "rollback"]
    driver_calls.clear()
    async with db.session("t") as s:
        s.add(Item(id="second"))
        await s.commit()
    assert driver_calls.count("rollback") == 0  # committed: nothing to roll back on return
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


async def test_a_transaction_begun_after_the_connection_went_back_is_ended_by_the_next_begin(
    tmp_path: Path,
) -> None:
    db = await _db(tmp_path / "c.db")
    # A caller cancelled while its BEGIN waited on aiosqlite's thread: the connection went back
    # to the pool idle as far as SQLAlchemy and the reset hook could see, then the BEGIN ran.
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
    await driver.execute("BEGIN IMMEDIATE")
    await driver.execute("INSERT INTO item (id, tenant_id) VALUES ('lost', 't')")
    assert driver.in_transaction
    async with db.session("t", read_only=True) as s:  # the same connection: it must not fail in BEGIN
        assert await s.scalar(select(func.count()).select_from(Item)) == 1
    async with db.session("t") as s:
        s.add(Item(id="second"))
        await s.commit()
    async with db.session("t", read_only=True) as s:
        assert sorted(await s.scalars(select(Item.id))) == ["first", "second"]
    await db.dispose()
