"""The unit of work: one tenant transaction per RPC, committed in exactly one place.

    tx = Transactions(rt.db, source="example", outbox=store.outbox)   # once per service

    async def rename(uow: UnitOfWork, item_id: str, name: str) -> Item:   # a use case
        item = await ItemRepository(uow).get(item_id)
        item.name = name
        await uow.emit("example.item.renamed", ItemRenamed(item_id=item_id), subject=item_id)
        return item

    item = await tx.run(principal.tenant, lambda uow: rename(uow, item_id, name))
    async with tx.read(principal.tenant) as uow: ...                    # read-only

Use cases take a `UnitOfWork` and never commit. Events go to the outbox in the
same transaction as the state they announce. When two requests race on a unique
key, the loser's whole `work` runs once more in a fresh transaction (it then sees
the winner's row); `work` must therefore keep its side effects inside the unit of
work, or register them with `after_commit`.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from google.protobuf.message import Message
from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import Database, LazySession
from kit.errors import Aborted, Unavailable
from kit.events.envelope import EventEnvelope, new_envelope
from kit.events.outbox import add_events
from kit.events.outbox import emit as emit_event
from kit.resources.paging import PageTokens

log = logging.getLogger("salesops.resources")

T = TypeVar("T")
AfterCommit = Callable[[], Awaitable[None]]


class ReadOnlyError(RuntimeError):
    """A write was attempted through a read-only unit of work."""


class UnitOfWork:
    """A tenant session plus the outbox it stages events into. Never commit it yourself."""

    def __init__(
        self,
        session: AsyncSession | None,
        tenant: str,
        *,
        source: str,
        outbox: Table,
        tokens: PageTokens,
        writable: bool = True,
        lazy: LazySession | None = None,
    ) -> None:
        """`session`, or (None) `lazy`: a statement reads' session opened at its first use."""
        self._session = session
        self._lazy = lazy
        self.tenant = tenant
        self.source = source
        self.outbox = outbox
        self.tokens = tokens
        self.writable = writable
        self._after_commit: list[AfterCommit] = []
        self._gathered: list[EventEnvelope] | None = None

    @property
    def session(self) -> AsyncSession:
        session = self._session
        if session is None:
            assert self._lazy is not None, "a unit of work has a session or a lazy one"
            session = self._session = self._lazy.get()
        return session

    @session.setter
    def session(self, session: AsyncSession) -> None:
        self._session = session

    @property
    def bind(self) -> Any:
        """`session.get_bind()` (the sync Engine or Connection), without opening a lazy session."""
        if self._session is None and self._lazy is not None:
            return self._lazy.bind
        return self.session.get_bind()

    async def emit(self, event_type: str, payload: Message, *, subject: str) -> None:
        """Stage an event; it is published only if this unit of work commits."""
        if not self.writable:
            raise ReadOnlyError("events are emitted from Transactions.run, not read()")
        if self._gathered is not None:
            self._gathered.append(
                new_envelope(event_type, self.tenant, payload, source=self.source, subject=subject)
            )
            return
        await emit_event(
            self.session, event_type, payload, source=self.source, subject=subject, table=self.outbox
        )

    @asynccontextmanager
    async def gathered_events(self) -> AsyncIterator[None]:
        """Events emitted inside the block are kept, in order, and written to the outbox in one
        statement as it ends (a batch's hundreds of events in one round trip, not one each).
        A block left by an exception writes none of them; a nested block leaves it to the outer."""
        if self._gathered is not None:
            yield
            return
        self._gathered = []
        try:
            yield
            gathered = self._gathered
        finally:
            self._gathered = None
        await add_events(self.session, gathered, table=self.outbox)

    def after_commit(self, callback: AfterCommit) -> None:
        """Run `callback` once the transaction has committed (e.g. waking a live stream).

        A failing callback is logged, never raised: the change is already durable.
        """
        if not self.writable:
            raise ReadOnlyError("nothing commits in a read-only unit of work")
        self._after_commit.append(callback)

    async def _run_after_commit(self) -> None:
        for callback in self._after_commit:
            try:
                await callback()
            except Exception:
                log.exception("after-commit callback failed")


def is_unique_violation(exc: IntegrityError) -> bool:
    """True for a unique/primary-key violation on SQLite or PostgreSQL (not FK or NOT NULL)."""
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "23505" or getattr(orig, "pgcode", None) == "23505":
        return True
    text = str(orig)
    return "UNIQUE constraint failed" in text or "duplicate key value violates unique constraint" in text


# PostgreSQL's "deadlock detected" and "could not serialize": the database chose this transaction
# to roll back so another could finish; running the unit of work again is the documented answer.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
CONFLICT_ATTEMPTS = 4


def is_retryable_conflict(exc: DBAPIError) -> bool:
    orig = exc.orig
    return (getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)) in RETRYABLE_SQLSTATES


class Transactions:
    """Opens units of work for one service. Built once, shared by every RPC."""

    def __init__(self, db: Database, *, source: str, outbox: Table, tokens: PageTokens | None = None) -> None:
        self.db = db
        self.source = source
        self.outbox = outbox
        self._tokens = tokens

    @property
    def tokens(self) -> PageTokens:
        # Lazily, so building a service does not need the secret until a list is served.
        if self._tokens is None:
            self._tokens = PageTokens.from_env()
        return self._tokens

    def _unit(
        self, session: AsyncSession | None, tenant: str, *, writable: bool, lazy: LazySession | None = None
    ) -> UnitOfWork:
        return UnitOfWork(
            session,
            tenant,
            source=self.source,
            outbox=self.outbox,
            tokens=self.tokens,
            writable=writable,
            lazy=lazy,
        )

    async def run(self, tenant: str, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """Run `work` in one transaction and commit; once more on a unique-key race, and up to
        CONFLICT_ATTEMPTS times when PostgreSQL rolled it back for a deadlock or a serialization
        conflict (the work is re-run from the start: nothing of the failed attempt is kept)."""
        unique_races = 0
        reconnected = False
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            async with self.db.session(tenant) as session:
                uow = self._unit(session, tenant, writable=True)
                committing = False
                try:
                    result = await work(uow)
                    committing = True
                    await session.commit()
                except IntegrityError as exc:
                    await session.rollback()
                    if not is_unique_violation(exc):
                        raise
                    unique_races += 1
                    if unique_races == 2 or attempt == CONFLICT_ATTEMPTS:
                        raise Aborted(
                            "a concurrent request changed the same data; retry", reason="CONCURRENT_WRITE"
                        ) from exc
                    log.info("unique-key race in %s; running the unit of work again", self.source)
                    continue
                except DBAPIError as exc:
                    await session.rollback()
                    if exc.connection_invalidated:
                        # The server ended the connection (a restart, a failover, an idle timeout). Before
                        # COMMIT nothing of the transaction stayed: run it once more on a new connection.
                        # During COMMIT it may have been applied: the caller must find out, not us.
                        if committing or reconnected or attempt == CONFLICT_ATTEMPTS:
                            raise lost_connection() from exc
                        reconnected = True
                        log.warning(
                            "database connection lost in %s; running the unit of work again", self.source
                        )
                        continue
                    if not is_retryable_conflict(exc):
                        raise
                    if attempt == CONFLICT_ATTEMPTS:
                        raise Aborted(
                            "a concurrent request changed the same data; retry", reason="CONCURRENT_WRITE"
                        ) from exc
                    log.info(
                        "deadlock or serialization conflict in %s; running the unit of work again",
                        self.source,
                    )
                    await asyncio.sleep(random.uniform(0.005, 0.05) * attempt)  # let the winner finish
                    continue
            await uow._run_after_commit()
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    @asynccontextmanager
    async def read(self, tenant: str, *, snapshot: bool = True) -> AsyncIterator[UnitOfWork]:
        """A read-only unit of work: nothing is committed, whatever happens.

        Closing the session rolls the transaction back without expiring the rows
        read, so they can still be presented after the block. On SQLite it is a
        deferred transaction (a WAL reader): it never waits for the writer.
        `snapshot=False`: its statements need not see one snapshot (see `Database.session`); its
        session is opened at its first use (`Database.statement_reads`): a read answered without a
        statement on the session (leads' loop reads) costs none.
        """
        try:
            if snapshot:
                async with self.db.session(tenant, read_only=True) as session:
                    yield self._unit(session, tenant, writable=False)
            else:
                async with self.db.statement_reads(tenant) as lazy:
                    yield self._unit(None, tenant, writable=False, lazy=lazy)
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise lost_connection() from exc
            raise


def lost_connection() -> Unavailable:
    """What a caller sees when the database ended the connection under its request: retry."""
    return Unavailable("the database connection was lost; retry", reason="DATABASE_CONNECTION_LOST")


__all__ = ["AfterCommit", "ReadOnlyError", "Transactions", "UnitOfWork", "is_unique_violation"]
