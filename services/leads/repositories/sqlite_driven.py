"""lead_reads' statements on SQLite without SQLAlchemy's execution: compiled once, run on the driver.

Two ways to run one, in this order:
- on the event loop's own thread (`answered_on_loop`), on the Database's query-only sqlite3 connection for
  this thread (kit.db_loop), within a budget of time. A GetLead's statement is ~30 us of SQLite;
  the session's connection checkout (~60 us) and the hand-off to aiosqlite's thread and back (a
  queue, a futex, a loop wake-up, GIL hand-overs: ~100 us in the server) cost several times that.
  A statement past its budget (a text search over a whole tenant) is interrupted (and then skips
  the loop for a while); one meeting a busy database or any other error fails there: either way
  the caller then runs it
- on the unit of work's connection (`on_thread`), on aiosqlite's thread, as before.
Only statement reads (snapshot=False: each statement sees the database as of its own start) take
the loop's way, so the two see the same committed data.

On the loop a statement's rows are kept (`_RESULTS`, by its SQL and values) with the database's
version read just before it ran (kit.db_loop `LoopReaders.version`): asked again while no connection
has committed anything since, a statement would answer the same rows, and they are answered without
running it. A ListLeads page with its bounded count (~0.25 ms of SQLite over 834 index entries) is
then ~5 us; any commit to the database (any tenant, any process) makes every kept answer old.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Callable
from typing import Any, NamedTuple, cast

from sqlalchemy import JSON, Boolean, DateTime, Dialect

from kit.db import is_lock_timeout
from kit.db_loop import LoopReaders
from kit.db_sqlite import Connection as SqliteConnection
from kit.db_sqlite import OneCallCursor
from kit.errors import Unavailable
from kit.memo import ByteBudget, BytesMemo
from services.leads.repositories import read_memos


class Driven(NamedTuple):
    """A statement compiled once for SQLite, run on a driver connection itself.

    SQLAlchemy's execution of a cached statement made its cache key (a walk of the whole select),
    an execution context and a result per call, and ran a result processor per typed value: on
    SQLite more CPU than the SQL itself. Here a call only orders its values and converts the few
    columns whose stored value is not the Python one (`_converters`)."""

    sql: str
    names: tuple[str, ...]  # the positional parameters' names, in order
    fixed: dict[str, Any]  # the values compiled into the statement (status 'MERGED', the count cap)
    binds: dict[str, Callable[[Any], Any]]  # the dialect's conversion of a value bound (datetimes)
    columns: tuple[tuple[int, Callable[[Any], Any]], ...]  # (index, conversion) of the row's values
    decoded: tuple[int, ...]  # JSON columns held decoded: a kept row counts them by their text

    def args(self, params: dict[str, Any]) -> list[Any]:
        values, binds = self.fixed | params, self.binds
        return [binds[n](values[n]) if n in binds else values[n] for n in self.names]

    def converted(self, raw: list[Any]) -> list[list[Any]]:
        rows = [list(r) for r in raw]
        for row in rows:
            for i, convert in self.columns:
                if row[i] is not None:
                    row[i] = convert(row[i])
        return rows


def _converters(stmt: Any) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    """What SQLAlchemy's SQLite result processors do for these columns: JSON decoded from its text,
    datetimes from theirs (stored "YYYY-MM-DD HH:MM:SS.ffffff", naive, as SQLAlchemy reads
    them), booleans from 0/1. Strings and numbers come from sqlite3 as they are; so does a lead's
    `body`, decoded (or not at all) by the presenter."""
    out: list[tuple[int, Callable[[Any], Any]]] = []
    for i, column in enumerate(stmt.selected_columns):
        if isinstance(column.type, JSON):
            if column.name != "body":  # a lead's body stays its text: the presenter's memo key
                out.append((i, json.loads))
        elif isinstance(column.type, DateTime):
            out.append((i, read_memos.parsed_datetime))
        elif isinstance(column.type, Boolean):
            out.append((i, bool))
    return tuple(out)


# A decoded JSON document by its stored text: a grading (the service's own GradingResult as a dict:
# short keys, numbers, names and explanations) measured at 5-7 bytes in memory per character of
# its text (2,067 bytes for 401 characters, 6,263 for 916), and ~400 bytes for an almost empty one.
JSON_BYTES_PER_CHAR = 8
JSON_BYTES = 512


def _decoded(stmt: Any) -> tuple[int, ...]:
    """The JSON columns a row holds decoded (a grading); a body is kept as its text (`_converters`)."""
    return tuple(
        i
        for i, column in enumerate(stmt.selected_columns)
        if isinstance(column.type, JSON) and column.name != "body"
    )


def _drive(stmt: Any, dialect: Dialect) -> Driven | None:
    """`stmt` compiled for SQLite, or None where a parameter is rendered at execution (none of
    these statements has one: checked, not assumed)."""
    compiled: Any = stmt.compile(dialect=dialect)
    if compiled.literal_execute_params or compiled.post_compile_params or compiled.positiontup is None:
        return None
    return Driven(
        str(compiled),
        tuple(compiled.positiontup),
        compiled.construct_params(_check=False),
        dict(compiled._bind_processors),  # the dialect's own bind conversions (no public accessor)
        _converters(stmt),
        _decoded(stmt),
    )


# Each cached statement of lead_reads compiled for SQLite, by its id (the entry keeps the statement
# alive, so its id is not reused while it is here).
_DRIVEN: dict[int, tuple[Any, Driven | None]] = {}


def driven(stmt: Any, dialect: Dialect) -> Driven | None:
    found = _DRIVEN.get(id(stmt))
    if found is None or found[0] is not stmt:
        found = _DRIVEN[id(stmt)] = (stmt, _drive(stmt, dialect))
    return found[1]


def forget() -> None:
    """lead_reads' statement cache was cleared: so is their compiled form (and kept answers)."""
    _DRIVEN.clear()
    _BUDGET.clear()


async def on_thread(conn: Any, run: Driven, params: dict[str, Any]) -> list[list[Any]]:
    """`run` on the unit of work's connection (SQLAlchemy's AsyncConnection): aiosqlite's thread."""
    raw = await conn.get_raw_connection()
    cursor = OneCallCursor(cast(SqliteConnection, raw.driver_connection))  # kit.db's SQLite driver
    try:
        await cursor.execute(run.sql, run.args(params))
    except sqlite3.OperationalError as exc:  # as kit.db answers it for SQLAlchemy's statements
        if is_lock_timeout(exc):
            raise Unavailable("the database is busy; retry", reason="DATABASE_BUSY") from exc
        raise
    return run.converted(await cursor.fetchall())


# A statement's answer on the loop, by its SQL and values: (the database's version before it ran,
# its rows). Bounded in bytes by what each entry holds in memory (`_kept_bytes`), an empty answer
# too: a GetLead of ids that are not there, a search matching nothing, each kept is an entry.
# Callers read the rows, never change them: lead_reads copies each into a LeadView; a `grading`
# dict is shared by every answer of the entry, and only read (presenters' parse_into).
_BUDGET = ByteBudget(16 << 20)
_RESULTS: BytesMemo[tuple[str, tuple[Any, ...]], tuple[tuple[int, int], list[list[Any]]]] = BytesMemo(_BUDGET)
# An entry's own objects: its dict slot (~100 bytes with the table's spare room), the key's tuple,
# the value's, the version's and its ints, the rows' list (~300 measured; the margin is the rest).
ENTRY_BYTES = 512


def _kept_bytes(run: Driven, args: tuple[Any, ...], raw: list[Any]) -> int:
    """What keeping `raw`'s converted rows under `args` holds: the entry, its values (the SQL text
    is the Driven's own string, shared), each row's list and its values as measured (a raw text
    or number is at least what its conversion holds: a datetime's text 70+ bytes against 48),
    and a decoded JSON by its stored text."""
    size = ENTRY_BYTES + sys.getsizeof(args) + sum(map(sys.getsizeof, args))
    getsizeof = sys.getsizeof
    for r in raw:
        size += 56 + 8 * len(r) + sum(map(getsizeof, r))  # the row's list: a pointer a value
    for i in run.decoded:
        size += sum([JSON_BYTES + JSON_BYTES_PER_CHAR * len(r[i]) for r in raw if r[i] is not None])
    return size


# What names a kept answer found again: its SQL, its values and the database's version. Kept rows
# are answered only while the version read now is the one read before they ran, so no connection
# committed since, and every answer of that name is exactly those rows: a value made of them alone
# may be kept under it (presenters' page memo). Rows just read are not named: a commit between
# their version and their statement would have them newer than the name says.
Answer = tuple[str, tuple[Any, ...], tuple[int, int]]


def answered_on_loop(
    readers: LoopReaders, run: Driven, params: dict[str, Any]
) -> tuple[list[list[Any]], Answer | None] | None:
    """`run`'s rows and their `Answer` (None unless they are kept rows found again): kept from an
    earlier call while the database has not changed since, else run on this thread within its
    budget (kit.db_loop). None: the caller runs it `on_thread`."""
    args = tuple(run.args(params))
    key = (run.sql, args)
    found = _RESULTS.get(key)
    if found is None and readers.backing_off(run.sql):
        return None  # the thread's answer, which is not kept: no version to read for it
    version = readers.version()
    if found is not None and version is not None and found[0] == version:
        return found[1], (run.sql, args, version)
    raw = readers.rows(run.sql, args)
    if raw is None:
        return None
    rows = run.converted(raw)
    if version is not None:
        _RESULTS.put(key, (version, rows), _kept_bytes(run, args, raw))
    return rows, None


__all__ = ["Answer", "Driven", "answered_on_loop", "driven", "forget", "on_thread"]
