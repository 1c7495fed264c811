"""kit.db on SQLite: readers never wait for the writer, writers queue instead of failing,
and a lock that outlasts the busy timeout answers UNAVAILABLE (never INTERNAL)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Integer, String, func, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from kit.db import Database, TenantScoped
from kit.errors import Unavailable


class Base(DeclarativeBase):
    pass


class Item(TenantScoped, Base):
    __tablename__ = "item"
    id: Mapped[str] = mapped_column(String(26), primary_key=True)


class Counter(Base):
    __tablename__ = "counter"
    id: Mapped[str] = mapped_column(String(26), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


async def _db(path: Path, busy_timeout_s: float = 10.0) -> Database:
    db = Database(f"sqlite:///{path}", busy_timeout_s=busy_timeout_s)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    async with db.session("t") as s:
        s.add(Item(id="first"))
        await s.commit()
    return db


async def _count(db: Database) -> int:
    async with db.session("t", read_only=True) as s:
        return int(await s.scalar(select(func.count()).select_from(Item)) or 0)


async def test_reader_runs_while_the_writer_holds_its_transaction(tmp_path: Path) -> None:
    db = await _db(tmp_path / "r.db")
    holding, release = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with db.session("t") as s:
            s.add(Item(id="second"))
            await s.flush()  # BEGIN IMMEDIATE taken, row written, not committed
            holding.set()
            await release.wait()
            await s.commit()

    task = asyncio.create_task(writer())
    await asyncio.wait_for(holding.wait(), 30)
    # Under BEGIN IMMEDIATE for every transaction this read would queue behind the writer
    # (and fail after the busy timeout); as a deferred WAL reader it sees the last commit.
    assert await asyncio.wait_for(_count(db), 30) == 1
    assert not task.done()
    release.set()
    await asyncio.wait_for(task, 30)
    assert await _count(db) == 2
    await db.dispose()


async def test_64_concurrent_writers_all_land(tmp_path: Path) -> None:
    db = await _db(tmp_path / "w.db", busy_timeout_s=0.5)

    async def write(i: int) -> None:
        async with db.session("t") as s:
            s.add(Item(id=f"w{i:03d}"))
            await s.flush()
            await asyncio.sleep(0)  # let the others pile up behind this transaction
            await s.commit()

    # The busy timeout is far shorter than the queue: writers wait their turn in the process,
    # not in SQLite's busy handler, so none of them fails for waiting.
    await asyncio.wait_for(asyncio.gather(*(write(i) for i in range(64))), 120)
    assert await _count(db) == 65
    await db.dispose()


async def test_nested_write_session_in_the_same_task_does_not_wait_for_itself(tmp_path: Path) -> None:
    db = await _db(tmp_path / "n.db")
    async with db.session("t") as outer:
        async with db.session("t", read_only=True) as inner:
            assert await inner.scalar(select(func.count()).select_from(Item)) == 1
        outer.add(Item(id="outer"))
        await outer.commit()
    # A second writer in the same task (before the first has begun) does not deadlock on the queue.
    async with db.session("t") as a:
        async with db.session("t") as b:
            b.add(Item(id="inner"))
            await b.commit()
        a.add(Item(id="after"))
        await a.commit()
    assert await _count(db) == 4
    await db.dispose()


async def test_lock_held_by_another_process_past_the_timeout_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    db = await _db(path, busy_timeout_s=0.2)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(Unavailable) as caught:
            async with db.session("t") as s:
                s.add(Item(id="blocked"))
                await s.commit()
        assert caught.value.code_name == "UNAVAILABLE"
        assert caught.value.reason == "DATABASE_BUSY"
        # Readers still read while the other process writes.
        assert await _count(db) == 1
    finally:
        other.execute("ROLLBACK")
        other.close()
    async with db.session("t") as s:  # and the writer goes on once the lock is gone
        s.add(Item(id="later"))
        await s.commit()
    assert await _count(db) == 2
    await db.dispose()


async def test_read_modify_writes_of_two_processes_stay_serialised(tmp_path: Path) -> None:
    """Two Databases on one file (two processes: no shared writer queue): each writer's BEGIN
    IMMEDIATE, sent with its first statement (a read), holds the other off until it commits, so
    no increment is lost. Without the BEGIN both would read the same value; with a deferred one
    the second writer's UPDATE would fail on a stale snapshot."""
    path = tmp_path / "s.db"
    first = await _db(path)
    second = Database(f"sqlite:///{path}")
    async with first.session("t") as s:
        s.add(Counter(id="c", value=0))
        await s.commit()

    async def increment(db: Database, times: int) -> None:
        for _ in range(times):
            async with db.session("t") as s:
                value = await s.scalar(select(Counter.value).where(Counter.id == "c"))
                await asyncio.sleep(0.002)  # the other process reads meanwhile, if it may
                await s.execute(update(Counter).where(Counter.id == "c").values(value=(value or 0) + 1))
                await s.commit()

    await asyncio.wait_for(asyncio.gather(increment(first, 10), increment(second, 10)), 120)
    async with first.session("t", read_only=True) as s:
        assert await s.scalar(select(Counter.value)) == 20
    await first.dispose()
    await second.dispose()


async def test_ping_answers_while_a_writer_holds_its_transaction(tmp_path: Path) -> None:
    """The readiness probe is a read: it must not queue for the write lock (a BEGIN IMMEDIATE
    waits in SQLite's busy handler for as long as writers keep the lock, and the probe times out)."""
    db = await _db(tmp_path / "p.db", busy_timeout_s=30.0)
    holding, release = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with db.session("t") as s:
            s.add(Item(id="second"))
            await s.flush()
            holding.set()
            await release.wait()
            await s.commit()

    task = asyncio.create_task(writer())
    await asyncio.wait_for(holding.wait(), 30)
    try:
        await asyncio.wait_for(db.ping(), 10)
    finally:
        release.set()
        await asyncio.wait_for(task, 60)
    await db.dispose()
