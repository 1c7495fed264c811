"""Short SQLite reads on the calling thread (the event loop's), within a budget of CPU time.

A one-statement read through aiosqlite costs a hand-off to the connection's thread and back (a
queue, a futex, a loop wake-up, GIL hand-overs: ~100 us in a server), several times what a short
indexed statement costs SQLite itself. `LoopReaders` keeps a query-only sqlite3 connection per
database file and thread and runs a statement there, interrupted once it has used `BUDGET_S`
(looked at every `TICK_STEPS` VM steps); interrupted, busy, or failing, it answers None and the
caller runs the statement on its unit of work's connection instead. A statement interrupted for its
budget (always slow: a text search over a large tenant) is not tried on the loop again for a while
(`BACKOFF_S`, doubled while it stays slow): it would block the loop for the budget and then be run
again on the thread, every time.

The budget is CPU: past `BUDGET_S` of wall time a statement goes on while its thread has used less
than that of CPU (it was preempted: the loop could not have run meanwhile either, and a retry on
the thread costs the whole statement again plus the hand-offs), up to `WALL_CAP_S` of wall time.

Not bounded by the budget: a stall inside one VM step, such as a page read from a cold disk (the
progress handler runs between steps, never during the I/O of one).

`LoopReaders.version` tells a caller whether the database has changed since an earlier read on
this thread (SQLite's data_version: any other connection's commit, in any process, changes it; a
reader is query-only), so it may reuse that read's answer instead of running the statement again.

Owned by kit.db.Database, which closes every connection at `dispose` (from any thread: they are
opened with check_same_thread=False, each used only by its own thread, under its own lock); later
reads open new ones, as the engine's pool does after a dispose.
"""

from __future__ import annotations

import itertools
import math
import sqlite3
import threading
import time
import weakref
from typing import Any
from urllib.parse import quote

# The loop's budget of a statement, looked at every TICK_STEPS SQLite VM steps (2-8 us of SQLite) on
# the wall clock, and on the thread's CPU clock once the wall clock is past it. A ListLeads page of
# region + grade with its bounded count takes ~0.2 ms (10,000 leads); a text search over the same
# tenant ~5 ms in only ~60,000 steps (each reads a row), so steps alone would not bound it. Past the
# budget it is interrupted: harmless, the caller's thread answers.
TICK_STEPS = 100
BUDGET_S = 0.002
# Wall time a statement may hold the loop whatever its CPU (a preempted one, one waiting on I/O).
WALL_CAP_S = 0.010
# A statement interrupted for its budget goes straight to the thread for this long, then is tried
# on the loop once again; each further interruption doubles the wait, up to BACKOFF_MAX_S.
BACKOFF_S = 1.0
BACKOFF_MAX_S = 32.0
_BACKOFF_KEYS = 4096  # statements remembered at most (their shapes are few; a bound, not a cache)
_clock = time.monotonic  # the back-off's (tests move it)
# The thread's CPU time (~0.5 us a call: one at the start of a read, more only past its wall budget).
# A statement interrupted on wall time alone was sent to the thread (and at first backed off) after
# any preemption: under load (the reads bench's 64 in flight, a busy machine) ~9 % of ListLeads pages
# (~0.2 ms of SQLite) ran twice, once here and once on the thread. Interrupted at the wall cap having
# used less than half its budget of CPU, a statement was preempted, not slow: no back-off.
_cpu = time.thread_time
_SERIALS = itertools.count()  # sets readers apart in `LoopReaders.version`


class _Budget:
    """The progress handler's state, apart from the reader: the connection holds this, not the
    reader holding the connection (no reference cycle: a dropped reader is freed at once)."""

    __slots__ = ("cap", "cpu_start", "deadline", "spent")

    def __init__(self) -> None:
        self.deadline = self.cap = self.cpu_start = 0.0
        self.spent = False

    def start(self) -> None:
        self.spent = False
        self.cpu_start = _cpu()
        now = time.perf_counter()
        self.deadline, self.cap = now + BUDGET_S, now + WALL_CAP_S

    def tick(self) -> int:
        now = time.perf_counter()
        if now > self.deadline:
            # Past its budget in wall time: the CPU it has not used of it yet is the next deadline's.
            left = BUDGET_S - (_cpu() - self.cpu_start)
            if left > 0 and now < self.cap:
                self.deadline = min(now + left, self.cap)
                return 0
            self.spent = True
            return 1  # non-zero interrupts the statement
        return 0


class LoopReader:
    """A query-only connection to a database file, used by one thread at a time."""

    def __init__(self, path: str) -> None:
        # mode=rw: a database file that is not there is an error here, never made empty.
        uri = f"file:{quote(path)}?mode=rw"
        self.conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        self.lock = threading.Lock()  # held while in use: `close` from another thread waits for it
        try:
            self.conn.execute("PRAGMA query_only=1")  # never a writer, whatever a bug would send
            self.conn.execute("PRAGMA busy_timeout=0")  # busy: answered by the thread path, not slept on
        except sqlite3.Error:
            self.conn.close()
            raise
        self.serial = next(_SERIALS)  # a data_version means something only on its own connection
        self.budget = _Budget()
        self.conn.set_progress_handler(self.budget.tick, TICK_STEPS)
        # sqlite3's connection is in a cycle of its own (its statement cache refers back to it): a
        # reader dropped without `close` lets its file go at once, not at the next collection.
        weakref.finalize(self, self.conn.close)

    def rows(self, sql: str, args: Any) -> list[Any] | None:
        """All the rows of `sql`, or None: interrupted (`budget.spent`), busy, any other error."""
        with self.lock:
            self.budget.start()
            try:
                cursor = self.conn.execute(sql, args)
                try:
                    return cursor.fetchall()  # run to its end: no read transaction stays open
                finally:
                    cursor.close()
            except sqlite3.Error:  # sqlite3.ProgrammingError too: closed by `dispose` meanwhile
                return None

    def version(self) -> int | None:
        """PRAGMA data_version (None on any error): equal at two calls only if no other connection
        committed between them. ~4 us: it begins and ends a read transaction, which looks at the WAL."""
        with self.lock:
            self.budget.deadline = self.budget.cap = math.inf  # a few steps: never interrupted
            try:
                found = self.conn.execute("PRAGMA data_version").fetchone()
            except sqlite3.Error:
                return None
            return int(found[0]) if found else None

    def close(self) -> None:
        with self.lock:
            self.conn.close()


class LoopReaders:
    """One database file's loop readers, one per thread, and the statements backing off the loop."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._by_thread: dict[int, LoopReader] = {}
        self._backoff: dict[Any, tuple[float, float]] = {}  # key: (retry at, current wait)
        self.interrupted = 0  # statements interrupted for their budget (tests, metrics)
        self.preempted = 0  # ... of which had used little CPU (no back-off for them)

    def _reader(self) -> LoopReader | None:
        thread = threading.get_ident()
        reader = self._by_thread.get(thread)
        if reader is None:
            try:
                reader = LoopReader(self.path)
            except sqlite3.Error:  # not openable now: the thread path this time, tried again next
                return None
            with self._lock:
                self._by_thread[thread] = reader
        return reader

    def rows(self, sql: str, args: Any, key: Any = None) -> list[Any] | None:
        """`sql`'s rows read on this thread within the budget, or None: the caller runs it on its
        own connection. `key` (default: `sql`) names the statement for the back-off."""
        key = sql if key is None else key
        backoff = self._backoff.get(key)
        if backoff is not None and _clock() < backoff[0]:
            return None
        reader = self._reader()
        if reader is None:
            return None
        raw = reader.rows(sql, args)
        if raw is not None:
            if backoff is not None:
                self._backoff.pop(key, None)
        elif reader.budget.spent:
            self.interrupted += 1
            if _cpu() - reader.budget.cpu_start < BUDGET_S / 2:
                self.preempted += 1  # the thread path answers this once; the next try is on the loop
                return None
            wait = BACKOFF_S if backoff is None else min(2 * backoff[1], BACKOFF_MAX_S)
            if len(self._backoff) >= _BACKOFF_KEYS:
                self._backoff.clear()
            self._backoff[key] = (_clock() + wait, wait)
        return raw

    def backing_off(self, key: Any) -> bool:
        """Whether `rows` of the statement `key` would answer None at once (its back-off): a caller
        need not prepare for a loop read (its `version`) then."""
        backoff = self._backoff.get(key)
        return backoff is not None and _clock() < backoff[0]

    def version(self) -> tuple[int, int] | None:
        """The database's state as this thread's reader sees it now: two equal answers mean no
        connection committed to the database in between, so a statement run after the first (on
        this thread's reader, as `rows` runs it) answers now what it answered then. Read it before
        the statement whose answer is kept (a commit between the two then only makes it look older).
        None without a reader."""
        reader = self._reader()
        if reader is None:
            return None
        found = reader.version()
        return None if found is None else (reader.serial, found)

    def close(self) -> None:
        """Close every thread's reader (the next read opens a new one)."""
        with self._lock:
            readers, self._by_thread = list(self._by_thread.values()), {}
        for reader in readers:
            reader.close()


__all__ = ["BACKOFF_MAX_S", "BACKOFF_S", "BUDGET_S", "TICK_STEPS", "WALL_CAP_S", "LoopReader", "LoopReaders"]
