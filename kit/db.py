"""Async SQLAlchemy engine and sessions per service, with tenant scoping built in.

Every tenant-owned table mixes in `TenantScoped`. A session opened with
`Database.session(tenant)` adds `tenant_id = :tenant` to every ORM SELECT,
UPDATE and DELETE touching such a table and stamps new rows; a session with no
tenant refuses those statements, so a query that forgets the tenant cannot be
written by accident. Cross-tenant work (the outbox relay, migrations, metrics
jobs) must ask for it by name: `Database.system_session()`. The hooks are in `kit.tenancy`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import weakref
from collections.abc import AsyncIterator, Coroutine, Generator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from kit import db_loop, db_sqlite
from kit.errors import Unavailable
from kit.tenancy import SYSTEM_KEY, TENANT_KEY, ScopedSession, TenantScoped, TenantScopeError

# Stable constraint names, so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Execution option marking a read-only engine: on SQLite its transactions start deferred.
READ_ONLY = "salesops_read_only"
# Execution option of statement reads (`Database.session(..., snapshot=False)`): on SQLite no
# BEGIN is sent, so each statement reads as of its own start and nothing is left to roll back.
STATEMENT_READS = "salesops_statement_reads"
# Execution option of the statement reads' engine on a SQLite file: its `db_loop.LoopReaders`
# (`loop_readers`), owned by the Database and closed by `Database.dispose`.
LOOP_READERS = "salesops_loop_readers"
# How long a SQLite writer waits for its turn in the process before answering UNAVAILABLE.
WRITER_WAIT_S = 60.0


class _NoRowData(logging.Filter):
    """Rows and driver call arguments carry personal data (phones, e-mails): never logged.

    Engines hide bound parameters (`hide_parameters`), but at DEBUG SQLAlchemy still logs
    every result row and aiosqlite every call with its arguments. Statements stay loggable.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "aiosqlite":
            return record.levelno > logging.DEBUG
        return record.msg != "Row %r"


_NO_ROW_DATA = _NoRowData()
logging.getLogger("sqlalchemy.engine.Engine").addFilter(_NO_ROW_DATA)
logging.getLogger("aiosqlite").addFilter(_NO_ROW_DATA)

_DETAIL = re.compile(r"\nDETAIL:.*?(?=\nHINT:|\Z)", re.DOTALL)


def redact_error_detail(error: BaseException | None) -> None:
    """Drop PostgreSQL's DETAIL (``Key (phone)=(+86...) already exists``) from an error chain.

    The DETAIL quotes row values; the message and the constraint name say enough. Applied to
    every database error (`handle_error`), so logs, traces and dead letters never see them.
    """
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if getattr(error, "detail", None):
            with suppress(AttributeError, TypeError):
                error.detail = None  # type: ignore[attr-defined]  # asyncpg's errors print it
        if error.args and isinstance(error.args[0], str) and "\nDETAIL:" in error.args[0]:
            error.args = (
                _DETAIL.sub("\nDETAIL:  (hidden: it may quote row values)", error.args[0]),
                *error.args[1:],
            )
        error = error.__cause__ or error.__context__


def _on_error(context: ExceptionContext) -> None:
    redact_error_detail(context.sqlalchemy_exception)
    redact_error_detail(context.original_exception)


def normalise_url(url: str) -> URL:
    """Accept plain `postgresql://` and `sqlite:///` URLs and pick the async drivers."""
    parsed = make_url(url)
    if parsed.drivername in {"postgresql", "postgres", "postgresql+psycopg2"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed


# SQLite's heap in this process, all connections together, beyond which their page caches recycle
# their own least recently used pages instead of growing (sqlite3_soft_heap_limit64; advisory,
# nothing fails). Without it each pooled connection keeps up to 2 MB of pages (cache_size -2000)
# and a busy pool of 20 held ~40 MB more per process; pages it no longer keeps are read again
# from the operating system's file cache (a few microseconds each).
SQLITE_HEAP_BUDGET_BYTES = 8 * 2**20


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def apply(dbapi_conn: Any, _record: Any) -> None:
        # WAL lets readers run beside the single writer; busy_timeout turns contention with
        # other processes into a wait (writers of this process queue in `_WriterQueue`).
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute(f"PRAGMA soft_heap_limit={SQLITE_HEAP_BUDGET_BYTES}")  # process-wide
        cur.close()

    return apply


class Database:
    """One service's database: engine, session factory, readiness probe."""

    def __init__(
        self, url: str, *, pool_size: int = 10, echo: bool = False, busy_timeout_s: float = 10.0
    ) -> None:
        self.url = normalise_url(url)
        # hide_parameters: errors and echo never show bound values (phones, e-mails) in logs
        # or dead letters; the SQL and the constraint name are enough to debug.
        kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": True, "hide_parameters": True}
        if self.is_sqlite:
            database = self.url.database or ""
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            # One writer at a time (queued in the process, `_WriterQueue`); the rest of the
            # pool serves WAL readers, which never wait for the writer.
            # One call to aiosqlite's thread per statement, no second ROLLBACK in a row, and no
            # switch out of SQLAlchemy's greenlet but for the thread's calls (kit.db_sqlite).
            kwargs["module"] = db_sqlite.Dbapi()
            kwargs["connect_args"] = {"timeout": busy_timeout_s, "isolation_level": None}
            # As many connections as elsewhere (pool + overflow), all kept: an overflow connection
            # is closed on return and reopened at the next burst, each a thread, a file open and
            # four PRAGMAs (about 0.9 ms of CPU; 64 reads in flight reopened one every 10-30 calls).
            kwargs["pool_size"] = 2 * pool_size
            kwargs["max_overflow"] = 0
            # Every driver call is a round trip to aiosqlite's thread, the main cost of a short
            # read: a local file needs no liveness ping. The pool's rollback on return stays: a
            # caller cancelled while its BEGIN (sent with its first statement) waited on that
            # thread leaves them to run after the return, and only a rollback queued behind them
            # ends that transaction (and its write lock) before the connection serves anyone
            # else. (It goes to the thread unless the thread's last call was a successful ROLLBACK
            # or COMMIT with nothing queued since: kit.db_sqlite.Connection.)
            kwargs["pool_pre_ping"] = False
        else:
            kwargs["pool_size"] = pool_size
            kwargs["max_overflow"] = pool_size
            # Pinged only after PING_IDLE_S unused (_ping_if_idle), not at every checkout.
            kwargs["pool_pre_ping"] = False
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        event.listen(self.engine.sync_engine, "handle_error", _on_error)
        if not self.is_sqlite and not kwargs["pool_pre_ping"]:
            event.listen(self.engine.sync_engine.pool, "connect", _mark_used)
            event.listen(self.engine.sync_engine.pool, "checkin", _mark_used)
            event.listen(self.engine.sync_engine.pool, "checkout", _ping_if_idle)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas(int(busy_timeout_s * 1000)))
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        self._factory = async_sessionmaker(
            self.engine, expire_on_commit=False, sync_session_class=ScopedSession
        )
        self._read_factory = async_sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}),
            expire_on_commit=False,
            sync_session_class=ScopedSession,
        )
        statements: dict[str, Any] = {READ_ONLY: True, STATEMENT_READS: True}
        database = self.url.database or ""
        self.loop_readers: db_loop.LoopReaders | None = None
        if self.is_sqlite and database and database != ":memory:" and not database.startswith("file:"):
            self.loop_readers = statements[LOOP_READERS] = db_loop.LoopReaders(database)
        if not self.is_sqlite:
            # Autocommit: each statement reads on its own, as each of a READ COMMITTED transaction
            # does anyway; no BEGIN and ROLLBACK, two of a one-statement read's three round trips.
            statements["isolation_level"] = "AUTOCOMMIT"
        self._statements = self.engine.execution_options(**statements)
        self._statement_factory = async_sessionmaker(
            self._statements, expire_on_commit=False, sync_session_class=ScopedSession
        )
        self._writers = _WriterQueue() if self.is_sqlite else None

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    @property
    def serialises_writers(self) -> bool:
        """Writers take turns (SQLite): slow reads belong before the write, in a read-only session."""
        return self._writers is not None

    @asynccontextmanager
    async def session(
        self, tenant: str, *, read_only: bool = False, snapshot: bool = True
    ) -> AsyncIterator[AsyncSession]:
        """A session scoped to one tenant. Commit explicitly; leaving without it rolls back.

        `read_only`: on SQLite a deferred transaction (a WAL reader, never waiting for the
        writer); otherwise the session is a writer and, on SQLite, waits its turn in the process.
        `snapshot=False` (read-only sessions): no transaction at all, each statement reads the
        database as of its own start; for reads of one statement, or whose statements need not
        agree. It saves the BEGIN and ROLLBACK: on SQLite hand-offs to the connection's thread
        (each about as costly as a short statement), on PostgreSQL round trips (autocommit; a
        server-side cursor, `stream`, needs a transaction there: snapshot=True).
        """
        if not tenant:
            raise TenantScopeError("a tenant session needs a tenant")
        factory = self._statement_factory if read_only and not snapshot else None
        async with self._open({TENANT_KEY: tenant}, read_only, factory) as session:
            yield session

    @asynccontextmanager
    async def statement_reads(self, tenant: str) -> AsyncIterator[LazySession]:
        """`session(tenant, read_only=True, snapshot=False)` opened at its first use (`get`): a read
        answered without one (a loop read's kept rows) skips the session's making and closing."""
        if not tenant:
            raise TenantScopeError("a tenant session needs a tenant")
        lazy = LazySession(self._statement_factory, {TENANT_KEY: tenant}, self._statements.sync_engine)
        with _busy_is_unavailable():
            try:
                yield lazy
            finally:
                lazy.ended = True
                if lazy.session is not None:
                    await close_to_completion(lazy.session)

    @asynccontextmanager
    async def system_session(
        self, *, read_only: bool = False, snapshot: bool = True
    ) -> AsyncIterator[AsyncSession]:
        """A session that sees every tenant: relays, migrations, cross-tenant jobs only.
        `read_only`, `snapshot`: as for `session`."""
        factory = self._statement_factory if read_only and not snapshot else None
        async with self._open({SYSTEM_KEY: True}, read_only, factory) as session:
            yield session

    @asynccontextmanager
    async def _open(
        self, info: dict[str, Any], read_only: bool, factory: Any = None
    ) -> AsyncIterator[AsyncSession]:
        factory = factory or (self._read_factory if read_only else self._factory)
        with _busy_is_unavailable():
            if read_only or self._writers is None:
                session = factory(info=info)
                try:
                    yield session
                finally:
                    await close_to_completion(session)
            else:
                async with self._writers.turn():
                    session = factory(info=info)
                    try:
                        yield session
                    finally:
                        await close_to_completion(session)

    async def ping(self) -> None:
        # A statement read: on SQLite a writer's BEGIN IMMEDIATE would wait in the busy handler
        # for as long as writers hold the lock (readiness failed on it under write load).
        async with self._statements.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        # The loop readers first: the pool's last connection to close then checkpoints the WAL and
        # removes it and -shm, and no connection keeps a file that may be replaced afterwards.
        if self.loop_readers is not None:
            self.loop_readers.close()
        await self.engine.dispose()


@contextmanager
def _busy_is_unavailable() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        if is_lock_timeout(exc):
            # Another process held the file past the busy timeout: retryable, not a bug.
            raise Unavailable("the database is busy; retry", reason="DATABASE_BUSY") from exc
        raise


class LazySession:
    """A session made at its first `get` (`Database.statement_reads`); `bind` is what its
    `get_bind()` answers, known without it."""

    __slots__ = ("_factory", "_info", "bind", "ended", "session")

    def __init__(self, factory: Any, info: dict[str, Any], bind: Any) -> None:
        self._factory = factory
        self._info = info
        self.bind = bind
        self.session: AsyncSession | None = None
        self.ended = False

    def get(self) -> AsyncSession:
        if self.session is None:
            if self.ended:  # one made now would never be closed: its connection never returned
                raise RuntimeError("the statement reads' block has ended")
            self.session = self._factory(info=self._info)
        return self.session


def loop_readers(bind: Any) -> db_loop.LoopReaders | None:
    """The loop readers of a session's bind: only a statement reads' engine on a SQLite file
    has them (each statement on its own, as a loop reader reads)."""
    options = bind.get_execution_options()
    return options.get(LOOP_READERS) if options.get(STATEMENT_READS) else None


async def close_to_completion(session: AsyncSession) -> None:
    """`session.close()`, finished even if the caller is cancelled meanwhile (as leaving
    `async with session` does), without a task of its own unless the close has to wait.

    SQLAlchemy runs every close in a new task behind `asyncio.shield`: two trips through the event
    loop per unit of work. A close that needs no I/O (nothing to roll back, kit.db_sqlite) cannot
    be interrupted, so it runs here, in the caller's task, to its end. One that waits (a ROLLBACK
    on the connection) goes on in a task of its own, awaited as SQLAlchemy awaits it: a
    cancellation received meanwhile is raised once the close has finished.
    """
    coro = session.close()
    try:
        step = coro.send(None)
    except StopIteration:
        return
    task = asyncio.create_task(_Resumed(coro, step).run())
    cancelled: asyncio.CancelledError | None = None
    while True:  # as SQLAlchemy's own close on leaving `async with`
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError as exc:
            if task.done():
                raise
            cancelled = exc
        else:
            break
    if cancelled is not None:
        raise cancelled


class _Resumed:
    """The rest of a coroutine that has already yielded `step` (what it waits for), run by the
    awaiting task exactly as `await coro` would have run it from there."""

    def __init__(self, coro: Coroutine[Any, Any, None], step: Any) -> None:
        self._coro = coro
        self._step = step

    async def run(self) -> None:
        await self

    def __await__(self) -> Generator[Any, None, None]:
        step = self._step
        while True:
            try:
                yield step
            except BaseException as exc:  # thrown into the waiting task: on to the coroutine
                try:
                    step = self._coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    step = self._coro.send(None)
                except StopIteration:
                    return


# A pooled PostgreSQL connection is pinged before use only when it has lain unused this long.
# SQLAlchemy's pre-ping pings at every checkout, and asyncpg's ping is three round trips (BEGIN,
# ";", ROLLBACK): three of a short transaction's six. A connection in steady use needs none (a
# server gone meanwhile fails the statement in flight, and SQLAlchemy then invalidates the pool's
# older connections); one that lay idle, where a restart or an idle timeout would strike, still
# is pinged, and replaced if the ping fails.
PING_IDLE_S = 2.0
_USED = "salesops_used_at"


def _mark_used(_dbapi_conn: Any, record: Any) -> None:
    record.info[_USED] = time.monotonic()


def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    if time.monotonic() - record.info.get(_USED, 0.0) < PING_IDLE_S:
        return
    try:
        dbapi_conn.ping()
    except Exception as exc:  # the pool drops this connection and checks out another (or a new one)
        raise DisconnectionError("pooled connection failed its ping") from exc


def _sqlite_begin(conn: Any) -> None:
    # pysqlite's own transaction handling is off (isolation_level=None); start
    # transactions ourselves. Writers: IMMEDIATE, so two writers never deadlock on
    # upgrade. Readers: deferred, a WAL snapshot that never waits for the writer.
    # Sent in the same call to aiosqlite's thread as the transaction's first statement
    # (kit.db_sqlite.Connection.begin): one thread hand-off per unit of work less. A BEGIN
    # that fails ("database is locked") fails that statement, as SQLAlchemy raises it
    # (OperationalError: UNAVAILABLE in `Database._open`).
    options = conn.get_execution_options()
    driver: db_sqlite.Connection = conn.connection.driver_connection
    if options.get(STATEMENT_READS):  # autocommit (isolation_level=None): each statement on its own
        driver.begin(None)
    else:
        driver.begin("BEGIN" if options.get(READ_ONLY) else "BEGIN IMMEDIATE")


def is_lock_timeout(exc: BaseException) -> bool:
    """SQLite's "database is locked" / "database table is locked": the busy timeout ran out."""
    orig = getattr(exc, "orig", exc)
    return "database is locked" in str(orig) or "database table is locked" in str(orig)


_HOLDING: ContextVar[frozenset[int]] = ContextVar("salesops_sqlite_writer", default=frozenset())


class _WriterQueue:
    """SQLite's writers take turns in the process (FIFO, no polling) instead of spinning in the
    busy handler on the file lock, where a burst of writers starves some past the busy timeout.

    Re-entrant per task: a write session opened inside another in the same task does not wait
    for itself. Waits are bounded (`WRITER_WAIT_S`), then UNAVAILABLE, never a hang.
    """

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        held = _HOLDING.get()
        if id(self) in held:
            yield
            return
        lock = self._lock()
        try:
            # asyncio.timeout, not wait_for: wait_for ran every acquire in a task of its own, even
            # when the lock was free (taken at once, no suspension); a timer handle is all this costs.
            async with asyncio.timeout(WRITER_WAIT_S):
                await lock.acquire()
        except TimeoutError:
            raise Unavailable("the database is busy; retry", reason="DATABASE_BUSY") from None
        token = _HOLDING.set(held | {id(self)})
        try:
            yield
        finally:
            _HOLDING.reset(token)
            lock.release()


__all__ = [
    "NAMING_CONVENTION",
    "SYSTEM_KEY",
    "TENANT_KEY",
    "Database",
    "LazySession",
    "ScopedSession",
    "TenantScopeError",
    "TenantScoped",
    "is_lock_timeout",
    "loop_readers",
    "normalise_url",
    "redact_error_detail",
]
