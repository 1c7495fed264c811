"""SQLite's page caches share one budget per process (kit.db.SQLITE_HEAP_BUDGET_BYTES)."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from kit.db import SQLITE_HEAP_BUDGET_BYTES, Database


def _sqlite_heap() -> int | None:
    """The process's SQLite heap in bytes (sqlite3_memory_used of the library the sqlite3 module
    uses), or None when that library cannot be reached (a statically linked sqlite3 module)."""
    name = ctypes.util.find_library("sqlite3")
    if name is None:
        return None
    lib = ctypes.CDLL(name)
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    used = int(lib.sqlite3_memory_used())
    return used or None


async def test_twenty_busy_connections_keep_one_budget_of_pages(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    with sqlite3.connect(path) as conn:  # ~24 MB of rows: each connection would cache 2 MB of it
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)")
        conn.executemany("INSERT INTO t (body) VALUES (?)", (("x" * 400,) for _ in range(60_000)))
    db = Database(f"sqlite:///{path}")  # 20 pooled connections on SQLite
    if _sqlite_heap() is None:
        pytest.skip("the sqlite3 module's library is not reachable through ctypes")

    async def scan() -> None:
        async with db.session("t", read_only=True) as s:
            assert await s.scalar(text("SELECT count(*) FROM t WHERE body LIKE 'x%'")) == 60_000
            await asyncio.sleep(0)

    await asyncio.gather(*(scan() for _ in range(20)))  # every pooled connection reads it all
    async with db.session("t", read_only=True) as s:
        assert await s.scalar(text("PRAGMA soft_heap_limit")) == SQLITE_HEAP_BUDGET_BYTES
    used = _sqlite_heap()
    await db.dispose()
    # Without the limit: 20 x 2 MB of pages (~40 MB). With it: the budget, give or take the pages
    # each connection holds pinned and the connections' own structures.
    assert used is not None and used < SQLITE_HEAP_BUDGET_BYTES + 6 * 2**20, used
