"""The outbox relay: publish committed outbox rows to the service's Redis stream.

Loop: take up to `batch_size` unpublished rows in id order, XADD them in one
pipeline, mark them published, repeat while the batch was full, otherwise
sleep until `notify()` (called automatically after any local commit that wrote
an outbox row) or the poll timeout (rows written by other processes). The poll
timeout starts at `poll_interval` and doubles after each empty poll up to
`idle_interval`: an idle relay polls about once a second instead of twenty times
(a fifth of a core per idle stack of five services), while a local commit still
wakes it at once; only rows committed by another process wait up to `idle_interval`.
A relay that has just published (busy) and is woken again starts its next batch no sooner than
`coalesce` after the previous one started: under a stream of small commits (one per webhook
group, per CreateLead group) each woke a batch of a few rows, and a batch's fixed cost (its read,
the XADD pipeline, its mark: ~1.2 ms of CPU on SQLite, and a turn of the one writer) was most of
the relay's work. A commit after a quiet spell is still published at once.

Trimming never drops an entry some consumer group still needs. Once the stream is
longer than `maxlen`, the relay (at most every `trim_interval`) removes the entries
that *every* group has read and acknowledged: those below the smallest, over the
groups, of the group's oldest pending entry and its last delivered entry
(:func:`trim_read_entries`, one atomic Lua script). A slow or stopped consumer's
group keeps its unread entries; a stream without groups is not trimmed at all.
There is no blind `XADD ... MAXLEN`: the stream outgrows `maxlen` while a group lags
(logged), which is the price of not losing its events.

Delivery is at least once: a crash after the XADD and before the rows are
marked published sends those events again on the next run; consumers
de-duplicate on the event id. On PostgreSQL the batch is locked with
`SELECT ... FOR UPDATE SKIP LOCKED` for the whole publish, so several relays
share the work without sending the same row twice (barring crashes). SQLite
has one writer: the rows are read in one short transaction and marked in
another, so producers are never blocked behind a Redis round trip. Two relays
on one SQLite file (replicas, which share a host with it) would both read a
row before either marked it and send it twice (a third to two thirds of the
events, measured with two replicas): each batch, from its read to its mark's
commit, holds an exclusive `flock` on a file beside the database (released by
the OS if the process dies), so they take turns instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import Row, Table, bindparam, func, select, update

from kit.db import Database
from kit.events.outbox import database_key, default_outbox, register_waker, unregister_waker

log = logging.getLogger("kit.events.relay")

STREAM_PREFIX = "salesops:events:"
DEFAULT_MAXLEN = 1_000_000  # entries kept before read ones are trimmed (never unread ones)
DEFAULT_TRIM_INTERVAL = 30.0
# Longest poll timeout of an idle relay. Local commits wake it at once; this bounds the wait
# only for rows another process committed (a replica's relay normally takes its own rows).
DEFAULT_IDLE_INTERVAL = 1.0
# Shortest time from one batch's start to the next one's when a commit wakes a relay that has just
# published: the commits of that time go out together (an event waits at most this much longer).
DEFAULT_COALESCE = 0.02
# SQLite relays' batch turn (`_batch_turn`): how long a waiter waits for a holder that never lets go,
# and how many 1 ms polls a holder gives a relay that asked for the next turn to take it.
LOCK_PATIENCE_S = 30.0
HAND_OVER_POLLS = 20

# KEYS[1] stream, ARGV[1] length above which to trim. Atomic, so a group created
# meanwhile is seen before anything is removed. Per group, entries are needed from
# the oldest pending one (delivered, not acknowledged) or the last delivered one
# (everything after it is unread), whichever is smaller; MINID removes what lies
# below the smallest of these over all groups.
_TRIM_READ_SCRIPT = """
local stream = KEYS[1]
if redis.call('EXISTS', stream) == 0 then return 0 end
if redis.call('XLEN', stream) <= tonumber(ARGV[1]) then return 0 end
local groups = redis.call('XINFO', 'GROUPS', stream)
if #groups == 0 then return 0 end
local function parse(id)
  local dash = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local floor = nil
for _, group in ipairs(groups) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  local need = info['last-delivered-id']
  if tonumber(info['pending']) > 0 then
    local oldest = redis.call('XPENDING', stream, info['name'])[2]
    if less(oldest, need) then need = oldest end
  end
  if floor == nil or less(need, floor) then floor = need end
end
return redis.call('XTRIM', stream, 'MINID', floor)
"""

AfterXadd = Callable[[Sequence[str]], Awaitable[None]]


def service_stream(service: str) -> str:
    """The stream a producing service publishes to: `salesops:events:<service>`."""
    if not service:
        raise ValueError("a stream needs a service name")
    return STREAM_PREFIX + service


async def trim_read_entries(redis: Redis, stream: str, *, above: int = 0) -> int:
    """Remove the entries of `stream` every consumer group has read and acknowledged.

    Only when the stream holds more than `above` entries; a stream without groups
    is left whole (nobody has read anything). Each group's last delivered entry is
    kept. Returns how many entries were removed.
    """
    removed = await redis.eval(_TRIM_READ_SCRIPT, 1, stream, str(max(above, 0)))  # type: ignore[misc]
    return int(removed or 0)


class OutboxRelay:
    """Publishes one service's outbox to its stream. `await run()`; `await stop()` to end.

    `maxlen`: above this length the relay trims what every consumer group has read
    and acknowledged (checked at most every `trim_interval` seconds, after a
    publish); unread entries are never trimmed, so a lagging group makes the
    stream outgrow it (logged). None: never trim. `after_xadd` is a fault-injection hook for tests:
    awaited with the batch's event ids after the XADD pipeline succeeded and
    before the rows are marked published (a crash there exercises the re-send).
    """

    def __init__(
        self,
        db: Database,
        redis: Redis,
        stream: str,
        *,
        table: Table | None = None,
        batch_size: int = 500,
        poll_interval: float = 0.05,
        idle_interval: float = DEFAULT_IDLE_INTERVAL,
        coalesce: float = DEFAULT_COALESCE,
        maxlen: int | None = DEFAULT_MAXLEN,
        trim_interval: float = DEFAULT_TRIM_INTERVAL,
        max_backoff: float = 5.0,
        after_xadd: AfterXadd | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self.db = db
        self.redis = redis
        self.stream = stream
        self.table = default_outbox if table is None else table
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.idle_interval = max(idle_interval, poll_interval)
        self.coalesce = coalesce
        self.maxlen = maxlen
        self.trim_interval = trim_interval
        self.trimmed = 0
        self._next_trim = 0.0
        self.max_backoff = max_backoff
        self.after_xadd = after_xadd
        self.published = 0
        self._wake = asyncio.Event()
        self._stopping = False
        self._done = asyncio.Event()
        self._done.set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._key = database_key(db.engine.sync_engine)
        self._select_stmt, self._select_locked, self._mark_stmt = self._statements()
        database = (db.url.database or "") if db.is_sqlite else ""
        file_db = database and database != ":memory:" and not database.startswith("file:")
        self._batch_lock_path = f"{database}-{self.table.name}-relay.lock" if file_db else ""
        self._handed_over = False

    # -- control ----------------------------------------------------------------

    def notify(self) -> None:
        """Wake the relay now (new outbox rows were committed). Safe from any thread."""
        loop = self._loop
        if loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(self._wake.set)

    async def stop(self) -> None:
        """Finish the batch in flight, then return from `run()`; waits until it has."""
        self._stopping = True
        self._wake.set()
        await self._done.wait()

    async def run(self) -> None:
        """Publish until `stop()`. Errors (Redis or database down) are logged and retried with backoff."""
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._done.clear()
        register_waker(self._key, self.notify)
        backoff = self.poll_interval
        idle = self.poll_interval
        started = 0.0
        try:
            while not self._stopping:
                self._wake.clear()
                try:
                    started = self._loop.time()
                    sent = await self.publish_once()
                except Exception:
                    log.exception("outbox relay to %s failed; retrying in %.2fs", self.stream, backoff)
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, self.max_backoff)
                    continue
                backoff = self.poll_interval
                if sent:
                    idle = self.poll_interval
                    await self._trim_if_due()
                if sent < self.batch_size:
                    # A wake-up (a commit here) cuts the sleep short; an empty poll lengthens the next.
                    woken = await self._sleep(idle)
                    idle = self.poll_interval if woken or sent else min(idle * 2, self.idle_interval)
                    if woken and sent:  # busy: let the commits of the next moment join this batch
                        await self._settle(started + self.coalesce)
        finally:
            unregister_waker(self._key, self.notify)
            self._done.set()

    async def _settle(self, until: float) -> None:
        """Sleep until the loop's time `until` (commits meanwhile only set the wake flag)."""
        assert self._loop is not None
        rest = until - self._loop.time()
        if rest > 0 and not self._stopping:
            await asyncio.sleep(rest)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True when `notify()` or `stop()` ended it early."""
        if self._stopping:
            return True
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            return False
        return True

    # -- one batch --------------------------------------------------------------

    def _statements(self) -> tuple[Any, Any, Any]:
        """The batch's select (plain, and locked for PostgreSQL) and its mark, built once: building
        them per batch (the WHERE, ORDER BY, LIMIT and IN clauses) cost about a fifth of the relay's
        CPU per batch, on the event loop every RPC of the process shares."""
        t = self.table
        rows = (
            select(t.c.id, t.c.type, t.c.tenant_id, t.c.envelope)
            .where(t.c.published_at.is_(None))
            .order_by(t.c.id)
            .limit(self.batch_size)
        )
        mark = (
            update(t)
            .where(t.c.id.in_(bindparam("ids", expanding=True)))
            .values(published_at=bindparam("at"), attempts=t.c.attempts + 1)
        )
        return rows, rows.with_for_update(skip_locked=True), mark

    def _mark(self, ids: Sequence[str]) -> tuple[Any, dict[str, Any]]:
        return self._mark_stmt, {"ids": list(ids), "at": datetime.now(UTC)}

    @contextlib.asynccontextmanager
    async def _batch_turn(self) -> AsyncIterator[bool]:
        """This relay's turn among those on one SQLite file (see the module's docstring): an
        exclusive flock, tried without blocking the loop (every 1 ms, backing off to 10 ms: another
        relay's batch holds it for a read, an XADD pipeline and a mark, milliseconds). Yields False
        when `stop()` came while waiting (no batch then).

        flock is not fair, and a holder with a backlog takes it again at once: a waiter writes a
        byte into the lock file at each try, and the holder that finds it there after its batch
        waits for the waiter to take the next turn and clear it (`_handed_over`). A holder that
        never lets go (a frozen, not dead, replica) would stop every relay on the file: after
        LOCK_PATIENCE_S the waiter publishes without the turn, which costs at most duplicate sends,
        which consumers already de-duplicate."""
        if not self._batch_lock_path:
            yield True
            return
        fd = os.open(self._batch_lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if self._handed_over:  # until the relay that asked has its turn (cleared the byte)
                self._handed_over = False
                for _ in range(HAND_OVER_POLLS):
                    await asyncio.sleep(0.001)
                    if os.pread(fd, 1, 0) != b"w":
                        break
                else:  # the asker is gone (or slow: a live waiter asks again at each try)
                    os.pwrite(fd, b"\0", 0)
            pause, waited, asked = 0.001, 0.0, False
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if self._stopping:
                        if asked:
                            os.pwrite(fd, b"\0", 0)
                        yield False
                        return
                    if waited >= LOCK_PATIENCE_S:
                        log.warning(
                            "outbox relay %s: turn held for %.0f s; publishing anyway", self.stream, waited
                        )
                        break
                    os.pwrite(fd, b"w", 0)
                    asked = True
                    await asyncio.sleep(pause)
                    waited += pause
                    pause = min(pause * 2, 0.01)
            if asked:
                os.pwrite(fd, b"\0", 0)
            yield True
            # Another relay asked for a turn while this one held it: let it go first.
            self._handed_over = os.pread(fd, 1, 0) == b"w"
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    async def publish_once(self) -> int:
        """Publish one batch; returns how many events were sent."""
        if self.db.is_sqlite:
            async with self._batch_turn() as turn:
                if not turn:
                    return 0
                # A WAL reader: the select takes no turn of the one writer (each commit wakes the
                # relay, so a writer's turn here would queue behind, and ahead of, every RPC's
                # write). One statement, so no snapshot: no BEGIN and ROLLBACK, one hand-off to
                # the connection's thread instead of two (a batch's four became three).
                async with self.db.system_session(read_only=True, snapshot=False) as session:
                    rows = (await session.execute(self._select_stmt)).all()
                if not rows:
                    return 0
                ids = await self._publish(rows)
                async with self.db.system_session() as session:
                    await session.execute(*self._mark(ids))
                    await session.commit()
        else:
            async with self.db.system_session() as session:
                rows = (await session.execute(self._select_locked)).all()
                if not rows:
                    return 0
                ids = await self._publish(rows)
                await session.execute(*self._mark(ids))
                await session.commit()
        self.published += len(ids)
        return len(ids)

    async def _publish(self, rows: Sequence[Row[Any]]) -> list[str]:
        ids = [str(row.id) for row in rows]
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for row in rows:
                    fields: dict[str | bytes, bytes | str] = {
                        "envelope": bytes(row.envelope),
                        "type": str(row.type),
                        "tenant": str(row.tenant_id),
                        "id": str(row.id),
                    }
                    pipe.xadd(self.stream, fields)  # type: ignore[arg-type]
                await pipe.execute()
        except Exception:
            await self._count_failed_attempt(ids)
            raise
        if self.after_xadd is not None:
            await self.after_xadd(ids)
        return ids

    async def _count_failed_attempt(self, ids: Sequence[str]) -> None:
        t = self.table
        try:
            async with self.db.system_session() as session:
                await session.execute(update(t).where(t.c.id.in_(ids)).values(attempts=t.c.attempts + 1))
                await session.commit()
        except Exception:  # the database may be what failed; the attempt count is advisory
            log.debug("could not record failed publish attempt", exc_info=True)

    # -- trimming ---------------------------------------------------------------

    async def trim(self) -> int:
        """Trim the entries every group has read, if the stream is longer than `maxlen`; returns how many."""
        if self.maxlen is None:
            return 0
        removed = await trim_read_entries(self.redis, self.stream, above=self.maxlen)
        self.trimmed += removed
        if not removed:
            length = int(await self.redis.xlen(self.stream))
            if length > self.maxlen:
                log.warning(
                    "stream %s holds %d entries (limit %d): a consumer group has not read and "
                    "acknowledged them yet, so they are kept",
                    self.stream,
                    length,
                    self.maxlen,
                )
        return removed

    async def _trim_if_due(self) -> None:
        now = time.monotonic()
        if self.maxlen is None or now < self._next_trim:
            return
        self._next_trim = now + self.trim_interval
        try:
            await self.trim()
        except Exception:  # trimming is housekeeping: a later publish tries again
            log.exception("trimming %s failed", self.stream)

    # -- metrics ----------------------------------------------------------------

    async def backlog(self) -> int:
        """Number of committed events not yet published (for lag metrics and readiness)."""
        t = self.table
        async with self.db.system_session() as session:
            value = await session.scalar(select(func.count()).where(t.c.published_at.is_(None)))
        return int(value or 0)


__all__ = [
    "DEFAULT_IDLE_INTERVAL",
    "DEFAULT_MAXLEN",
    "DEFAULT_TRIM_INTERVAL",
    "STREAM_PREFIX",
    "OutboxRelay",
    "service_stream",
    "trim_read_entries",
]
