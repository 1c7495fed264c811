"""kit.db on SQLite: a unit of work makes few calls to aiosqlite's thread (each one is a thread
hand-off, the main cost of a short read; the BEGIN goes with the first statement), and a
connection never serves anyone inside a transaction it was left with: not when returned mid-way,
not when its caller was cancelled while its BEGIN still waited on that thread."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, cast

import aiosqlite.core
import pytest
from sqlalchemy import String, Table, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit import db_sqlite
from kit.db import Database, TenantScoped


class Base(DeclarativeBase):
    pass


class Item(TenantScoped, Base):
    __tablename__ = "item"
    id: Mapped[str] = mapped_column(String(26), primary_key=True)


@pytest.fixture
def driver_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The name of every function aiosqlite runs on its connection's thread ("BEGIN+name": a
    pending BEGIN sent in the same call; "end_read": a reader's ROLLBACK nobody waits for)."""
    calls: list[str] = []
    real = aiosqlite.core.Connection._execute
    real_end_read = db_sqlite.Connection.end_read

    def end_read(self: db_sqlite.Connection) -> None:
        calls.append("end_read")
        real_end_read(self)

    def name(fn: Any) -> str:
        return str(getattr(getattr(fn, "func", fn), "__name__", "?"))

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(f"{args[1]}+{name(args[2])}" if fn is db_sqlite._begun else name(fn))
        return await real(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counted)
    monkeypatch.setattr(db_sqlite.Connection, "end_read", end_read)
    yield calls


async def _db(path: Path) -> Database:
    db = Database(f"sqlite:///{path}")
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with db.session("t") as s:
        s.add(Item(id="first"))
        await s.commit()
    return db


async def test_a_one_query_read_makes_two_driver_calls(tmp_path: Path, driver_calls: list[str]) -> None:
    db = await _db(tmp_path / "r.db")
    for _ in range(3):  # the pool's connection is reused: no connect, no liveness ping
        driver_calls.clear()
        async with db.session("t", read_only=True) as s:
            assert await s.scalar(select(func.count()).select_from(Item)) == 1
        # A deferred BEGIN and the query with its rows (1: kit.db_sqlite), the session's rollback
        # (1, queued and not waited for: a reader's); the pool's rollback on return right behind
        # it is skipped (nothing was queued in between). It was 3 (the BEGIN on its own), 7
        # (cursor, execute, fetchall, close; a second rollback), and 13 before that.
        assert driver_calls == ["BEGIN+_statement", "end_read"]
    driver_calls.clear()
    async with db.session("t") as s:
        s.add(Item(id="second"))
        await s.commit()
    assert driver_calls == ["BEGIN IMMEDIATE+_statement", "commit"]  # no rollback after the commit
    driver_calls.clear()
    async with db.session("t", read_only=True, snapshot=False) as s:  # statement reads: no BEGIN
        assert await s.scalar(select(func.count()).select_from(Item)) == 2
        assert await s.scalar(select(func.count()).select_from(Item)) == 2
    assert driver_calls == ["_statement", "_statement"]
    await db.dispose()


async def test_a_transaction_with_no_statement_sends_nothing(tmp_path: Path, driver_calls: list[str]) -> None:
    db = await _db(tmp_path / "e.db")
    driver_calls.clear()
    async with db.session("t") as s:
        await s.connection()  # begun (SQLAlchemy's begin), nothing run on the thread yet
        await s.commit()
    async with db.session("t", read_only=True) as s:
        await s.connection()
    assert driver_calls == []
    async with db.session("t", read_only=True) as s:  # and the next transaction begins afresh
        assert await s.scalar(select(func.count()).select_from(Item)) == 1
    assert driver_calls == ["BEGIN+_statement", "end_read"]
    await db.dispose()


async def test_a_begin_that_fails_is_sent_again_with_the_next_statement(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    db = await _db(path)
    await db.dispose()
    db = Database(f"sqlite:///{path}", busy_timeout_s=0.1)
    other = sqlite3.connect(path, isolation_level=None)
    insert = cast(Table, Item.__table__).insert()
    async with db.engine.connect() as conn:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(OperationalError, match="database is locked"):
            await conn.execute(insert, {"id": "blocked", "tenant_id": "t"})
        other.execute("ROLLBACK")
        # Still in SQLAlchemy's transaction: the statement must run inside a BEGIN of its own,
        # not in autocommit, or the rollback below would leave its row behind.
        await conn.execute(insert, {"id": "rolled-back", "tenant_id": "t"})
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None and driver.in_transaction
        await conn.rollback()
    other.close()
    async with db.session("t", read_only=True) as s:
        assert sorted(await s.scalars(select(Item.id))) == ["first"]
    await db.dispose()


async def test_statements_answer_as_through_aiosqlite(tmp_path: Path) -> None:
    """Rows, row counts, many-row inserts, RETURNING, errors: one call each, as the driver's own."""
    db = await _db(tmp_path / "s.db")
    table = cast(Table, Item.__table__)
    async with db.session("t") as s:
        await s.execute(table.insert(), [{"id": f"i{n}", "tenant_id": "t"} for n in range(5)])
        changed = await s.execute(
            table.update().where(table.c.id.in_(["i1", "i2"])).values(id=table.c.id + "x")
        )
        assert changed.rowcount == 2  # type: ignore[attr-defined]
        back = await s.execute(table.delete().where(table.c.id == "i3").returning(table.c.id))
        assert back.scalars().all() == ["i3"]
        await s.commit()
    with pytest.raises(IntegrityError):
        async with db.session("t") as s:
            await s.execute(table.insert(), {"id": "first", "tenant_id": "t"})
    async with db.session("t", read_only=True) as s:
        ids = list(await s.scalars(select(Item.id).order_by(Item.id)))
        assert ids == ["first", "i0", "i1x", "i2x", "i4"]
        streamed = await s.stream_scalars(select(Item.id).order_by(Item.id))  # a server-side cursor
        assert [i async for i in streamed] == ids
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

    async def busy_thread_then(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        # The driver's thread is busy when the BEGIN is queued (a loaded machine), so the caller's
        # deadline passes while it waits; the BEGIN still runs on that thread afterwards.
        # Queued straight on the thread, ahead of the BEGIN (a task would only queue it after).
        if fn is db_sqlite._begun and slow_begins:  # a BEGIN IMMEDIATE with the INSERT
            slow_begins.clear()
            self._tx.put_nowait((None, partial(time.sleep, 0.3)))
        return await real(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.core.Connection, "_execute", busy_thread_then)

    async def write(item_id: str) -> None:
        async with db.session("t") as s:
            s.add(Item(id=item_id))
            await s.commit()

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(write("cancelled"), 0.05)
    assert not slow_begins  # the BEGIN (with its INSERT) was queued behind the busy thread
    # The one connection again: its late BEGIN IMMEDIATE must have been ended, or this fails in
    # BEGIN ("within a transaction") or waits out the busy timeout on its write lock.
    await asyncio.wait_for(write("next"), 30)
    async with db.session("t", read_only=True) as s:
        assert sorted(await s.scalars(select(Item.id))) == ["next"]
    await db.dispose()


async def test_a_close_that_waits_finishes_though_its_caller_is_cancelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # kit.db closes a session in the caller's task and moves the close to a task of its own only
    # when it waits (here: the ROLLBACK of an uncommitted write, queued behind a busy thread).
    db = Database(f"sqlite:///{tmp_path / 'c.db'}", pool_size=1, busy_timeout_s=1.0)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    real = aiosqlite.core.Connection._execute
    slow_rollbacks = [True]
    closing = asyncio.Event()

    async def busy_thread_then(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(fn, "__name__", "") == "rollback" and slow_rollbacks:
            slow_rollbacks.clear()
            self._tx.put_nowait((None, partial(time.sleep, 0.3)))
            closing.set()
        return await real(self, fn, *args, **kwargs)  # type: ignore[no-untyped-call]

    monkeypatch.setattr(aiosqlite.core.Connection, "_execute", busy_thread_then)

    async def abandoned_write() -> None:
        async with db.session("t") as s:
            s.add(Item(id="uncommitted"))
            await s.flush()

    task = asyncio.create_task(abandoned_write())
    await closing.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Raised only once the close had finished: the connection is back, its transaction ended.
    assert db.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    async with db.session("t") as s:
        s.add(Item(id="next"))
        await s.commit()
    async with db.session("t", read_only=True) as s:
        assert sorted(await s.scalars(select(Item.id))) == ["next"]
    await db.dispose()


async def test_a_close_with_nothing_to_wait_for_makes_no_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = await _db(tmp_path / "n.db")
    tasks: list[Any] = []
    real = asyncio.create_task

    def counted(coro: Any, **kwargs: Any) -> Any:
        tasks.append(coro)
        return real(coro, **kwargs)

    monkeypatch.setattr(asyncio, "create_task", counted)
    async with db.session("t", read_only=True, snapshot=False) as s:
        assert await s.scalar(select(func.count()).select_from(Item)) == 1
    assert tasks == []  # SQLAlchemy's own close ran in a task of its own, behind asyncio.shield
    assert db.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    await db.dispose()


class _Pipeline:
    """Redis's pipeline as the relay uses it: XADDs queued, then sent."""

    def __init__(self, sent: list[str]) -> None:
        self.sent = sent

    async def __aenter__(self) -> _Pipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def xadd(self, stream: str, fields: dict[Any, Any]) -> None:
        self.sent.append(str(fields["id"]))

    async def execute(self) -> list[Any]:
        return []


async def test_a_relay_batch_makes_three_driver_calls(tmp_path: Path, driver_calls: list[str]) -> None:
    from types import SimpleNamespace

    from google.protobuf.wrappers_pb2 import StringValue
    from sqlalchemy import MetaData

    from kit.events.envelope import new_envelope
    from kit.events.outbox import add_events, outbox_table
    from kit.events.relay import OutboxRelay

    db = Database(f"sqlite:///{tmp_path / 'o.db'}")
    outbox = outbox_table(MetaData())
    async with db.engine.begin() as conn:
        await conn.run_sync(outbox.create)
    async with db.session("t") as s:
        envelopes = [
            new_envelope("x.y", "t", StringValue(value=str(n)), source="x", subject="s") for n in range(3)
        ]
        await add_events(s, envelopes, table=outbox)
        await s.commit()
    sent: list[str] = []
    redis: Any = SimpleNamespace(pipeline=lambda transaction: _Pipeline(sent))
    relay = OutboxRelay(db, redis, "stream", table=outbox)
    driver_calls.clear()
    assert await relay.publish_once() == 3
    # The select is a statement read (no BEGIN, no ROLLBACK: it was two calls), the mark one
    # transaction in the writer's turn.
    assert driver_calls == ["_statement", "BEGIN IMMEDIATE+_statement", "commit"]
    assert sent == [e.id for e in envelopes]
    async with db.session("t", read_only=True) as s:
        marked = (await s.execute(select(outbox.c.published_at, outbox.c.attempts))).all()
    assert len(marked) == 3 and all(at is not None and attempts == 1 for at, attempts in marked)
    driver_calls.clear()
    assert await relay.publish_once() == 0  # nothing left: one read, no write
    assert driver_calls == ["_statement"]
    await db.dispose()


async def test_a_readers_rollback_is_not_waited_for_yet_ends_its_snapshot(tmp_path: Path) -> None:
    # A reader's session closes without a task and without waiting on the thread, and the next
    # unit of work on that connection (pool of one) runs after its ROLLBACK: it sees a later write.
    db = Database(f"sqlite:///{tmp_path / 'r.db'}", pool_size=1)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    reader = db.session("t", read_only=True)
    s = await reader.__aenter__()
    assert await s.scalar(select(func.count()).select_from(Item)) == 0
    driver = (await (await s.connection()).get_raw_connection()).driver_connection
    assert isinstance(driver, db_sqlite.Connection) and driver.in_transaction
    await reader.__aexit__(None, None, None)
    other = sqlite3.connect(tmp_path / "r.db", isolation_level=None)
    other.execute("INSERT INTO item (id, tenant_id) VALUES ('later', 't')")  # no lock left to wait for
    other.close()
    async with db.session("t", read_only=True) as s:
        assert list(await s.scalars(select(Item.id))) == ["later"]  # a fresh snapshot
        assert (await (await s.connection()).get_raw_connection()).driver_connection is driver
    await db.dispose()
