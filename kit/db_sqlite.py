"""aiosqlite for kit.db, with one call to the connection's thread per statement.

aiosqlite runs every sqlite3 call on the connection's own thread; each call is a hand-off there
and back (a queue put, a thread wake-up, a loop wake-up, the GIL twice), the main cost of a short
read. SQLAlchemy's adapter makes four per statement (cursor, execute, fetchall, close) and ends a
unit of work with two rollbacks (the session's, then the pool's reset on return). Here a statement
is one call (the rows are fetched in it: SQLAlchemy fetches them all at once anyway), and a
ROLLBACK or COMMIT right after a successful ROLLBACK or COMMIT, with nothing queued in between,
is skipped: the thread's last act ended the transaction, so there is none to end; so is one after
a statement that ran outside any transaction (kit.db's statement reads send no BEGIN), which the
thread reports with its rows. A transaction's BEGIN (kit.db's, `Connection.begin`) is sent in the
same call as its first statement, and not at all if it ends before any.

SQLAlchemy's adapter over it (`Dbapi`, `create_engine(module=...)`) leaves its greenlet only for
those thread calls: making and closing a cursor, and a ROLLBACK or COMMIT that is skipped, need no
switch to the event loop and back.

Those skips are the only ones: a ROLLBACK asked while anything else may still be queued on the
thread (a BEGIN whose caller was cancelled, see tests/unit/test_db_sqlite_round_trips.py) is
always sent, and runs after it.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Iterable
from functools import partial
from typing import Any, cast

import aiosqlite
from aiosqlite.context import Result
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

Description = tuple[tuple[str, None, None, None, None, None, None], ...] | None
# The statement's description, rowcount, lastrowid and rows, and whether a transaction is open after it.
_Outcome = tuple[Description, int, int | None, list[Any], bool]


def _statement(conn: sqlite3.Connection, sql: str, parameters: Any, many: bool) -> _Outcome:
    """On the connection's thread: run one statement and read everything it answers."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        else:
            cursor.execute(sql, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows, conn.in_transaction
    finally:
        cursor.close()


def _script(conn: sqlite3.Connection, sql: str) -> _Outcome:
    cursor = conn.cursor()
    try:
        cursor.executescript(sql)
        return cursor.description, cursor.rowcount, cursor.lastrowid, [], conn.in_transaction
    finally:
        cursor.close()


class OneCallCursor(aiosqlite.Cursor):
    """aiosqlite's cursor, its statement and rows in one thread call; fetches read what it kept."""

    def __init__(self, conn: Connection) -> None:  # no sqlite3 cursor is held between calls
        self.iter_chunk_size = conn._iter_chunk_size
        self._conn = conn
        self._description: Description = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._rows: deque[Any] = deque()
        self._arraysize = 1

    async def _run(self, fn: Any, *args: Any) -> None:
        conn: Connection = self._conn  # type: ignore[assignment]  # set by __init__
        number = conn._queued + 1  # this call's, taken as it is queued (no await before that)
        outcome: _Outcome = await conn._execute(fn, conn._conn, *args)
        self._description, self._rowcount, self._lastrowid, rows, in_transaction = outcome
        self._rows = deque(rows)
        if not in_transaction:  # a statement outside any transaction (kit.db's statement reads)
            conn._ended_at = max(conn._ended_at, number)

    async def execute(self, sql: str, parameters: Iterable[Any] | None = None) -> OneCallCursor:
        await self._run(_statement, sql, () if parameters is None else parameters, False)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Iterable[Any]]) -> OneCallCursor:
        await self._run(_statement, sql, parameters, True)
        return self

    async def executescript(self, sql_script: str) -> OneCallCursor:
        await self._run(_script, sql_script)
        return self

    async def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        n = self._arraysize if size is None else size
        return [self._rows.popleft() for _ in range(min(n, len(self._rows)))]

    async def fetchall(self) -> list[Any]:
        rows, self._rows = list(self._rows), deque()
        return rows

    async def close(self) -> None:
        self._rows.clear()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._fetch_chunked()  # type: ignore[no-any-return, no-untyped-call]

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._lastrowid

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    @property
    def description(self) -> Description:  # type: ignore[override]
        return self._description


def _end_read(conn: sqlite3.Connection) -> None:
    """On the connection's thread: end a reader's transaction (nobody waits for it, `end_read`)."""
    try:
        conn.rollback()
    except sqlite3.Error:  # not known to happen; never reused inside a transaction it kept
        conn.close()  # its next call fails as a closed database: SQLAlchemy drops it as disconnected


def _begun(conn: sqlite3.Connection, begin: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """On the connection's thread: a pending BEGIN, then the call it waited for (if it began)."""
    conn.execute(begin)  # pysqlite finishes a BEGIN in `execute`
    return fn(*args, **kwargs)


class Connection(aiosqlite.Connection):
    """aiosqlite's connection with one-call cursors, no transaction end sent when none is open, and
    a transaction's BEGIN sent in the same thread call as its first statement (`begin`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._queued = 0  # calls queued on the thread so far
        # The number of the last call after which no transaction was open (a successful COMMIT or
        # ROLLBACK, or a statement run outside a transaction): while no call was queued after it
        # (`_queued` still equals it), there is no transaction to end.
        self._ended_at = -1
        self._begin: str | None = None  # a BEGIN not sent yet: it goes with the next call
        self._reading = False  # the last BEGIN sent was a reader's (deferred): it holds no write lock

    def begin(self, sql: str | None) -> None:
        """Start a transaction with `sql` ("BEGIN", "BEGIN IMMEDIATE") on the next call to the
        thread, in that call (a thread hand-off each is a short statement's main cost); None: none.

        A COMMIT or ROLLBACK before any call ends it without one: nothing began on the thread.
        If the BEGIN fails ("database is locked"), the call's statement does not run, its caller
        gets the error, and the BEGIN is pending again (as SQLAlchemy retries a failed begin).
        """
        self._begin = sql

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        self._queued += 1
        begin = self._begin
        if begin is None:
            return await super()._execute(fn, *args, **kwargs)  # type: ignore[no-untyped-call]
        self._begin = None  # taken as the call is queued: a cancelled caller's BEGIN still runs
        self._reading = begin == "BEGIN"
        number, args = self._queued, (self._connection, begin, fn, *args)
        try:
            return await super()._execute(_begun, *args, **kwargs)  # type: ignore[no-untyped-call]
        except sqlite3.Error:
            # Nothing queued since and no transaction open: the BEGIN failed (or the transaction
            # ended with the error), so the next call begins again rather than run outside one.
            if self._queued == number and self._begin is None and not self.in_transaction:
                self._begin = begin
            raise

    def end_read(self) -> None:
        """ROLLBACK a reader's transaction without waiting for it: queued on the thread, where every
        later call (the next checkout's BEGIN) runs after it, and no answer comes back to the loop.

        Awaiting it was a third of a one-statement read's CPU (a loop wake-up, and a task to finish
        the session's close in). A deferred transaction that only read holds no lock a writer waits
        for, only its WAL snapshot, released as the thread reaches the ROLLBACK: at once.
        """
        self._begin = None
        self._queued += 1
        self._tx.put_nowait((None, partial(_end_read, self._conn)))
        self._ended_at = self._queued

    async def close(self) -> None:
        self._begin = None  # nothing began on the thread: no BEGIN to send before the close
        await super().close()

    def cursor(self) -> Result[OneCallCursor]:  # type: ignore[override]
        return Result(self._new_cursor())

    async def _new_cursor(self) -> OneCallCursor:
        return OneCallCursor(self)

    async def rollback(self) -> None:
        self._begin = None
        if self._ended_at != self._queued:
            number = self._queued + 1  # this call's, taken as it is queued (no await before that)
            await super().rollback()
            self._ended_at = number

    async def commit(self) -> None:
        self._begin = None
        if self._ended_at != self._queued:
            number = self._queued + 1
            await super().commit()
            self._ended_at = number


class _AdaptedCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's cursor over a `OneCallCursor`: only the statement itself leaves the greenlet.

    SQLAlchemy's adapter awaits the cursor's creation and its close, each a switch out of the
    greenlet to the event loop and back; a one-call cursor is made and closed without I/O.
    """

    __slots__ = ()
    _awaitable_cursor_close = False  # nothing to close on the thread: no soft close awaited

    def _aenter_cursor(self, cursor: Any) -> Any:
        return cursor

    def _make_new_cursor(self, connection: Any) -> Any:
        return OneCallCursor(connection)

    def close(self) -> None:
        self._rows.clear()
        cast(OneCallCursor, self._cursor)._rows.clear()


class _AdaptedConnection(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's connection over a `Connection`: a ROLLBACK or COMMIT with no transaction to
    end (see `Connection.rollback`) is decided in the greenlet, without a switch to the loop."""

    __slots__ = ()
    _cursor_cls = _AdaptedCursor

    def rollback(self) -> None:
        conn: Connection = self._connection  # type: ignore[assignment]
        conn._begin = None
        if conn._ended_at == conn._queued:
            return
        if conn._reading:
            conn.end_read()  # no lock to hand on: nothing to wait for (and no switch to the loop)
        else:
            super().rollback()

    def commit(self) -> None:
        conn: Connection = self._connection  # type: ignore[assignment]
        conn._begin = None
        if conn._ended_at != conn._queued:
            super().commit()


class Dbapi(AsyncAdapt_aiosqlite_dbapi):
    """aiosqlite as SQLAlchemy's DBAPI (`create_engine(module=...)`), connections by `connect`."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlite3)

    def connect(self, *arg: Any, **kw: Any) -> _AdaptedConnection:
        kw.pop("async_creator_fn", None)
        conn: Any = await_(connect(*arg, **kw))  # an aiosqlite connection, as SQLAlchemy's own
        return _AdaptedConnection(self, conn)


def connect(database: str, *, iter_chunk_size: int = 64, **kwargs: Any) -> Connection:
    """`aiosqlite.connect`, with this module's connection (what `Dbapi.connect` adapts)."""

    def connector() -> sqlite3.Connection:
        conn: sqlite3.Connection = sqlite3.connect(database, **kwargs)
        return conn

    conn = Connection(connector, iter_chunk_size)
    conn._thread.daemon = True  # as SQLAlchemy sets aiosqlite's own (a pool never joins it)
    return conn


__all__ = ["Connection", "Dbapi", "OneCallCursor", "connect"]
