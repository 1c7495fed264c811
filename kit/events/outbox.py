"""The transactional outbox: tables, and writing an event in the caller's transaction.

A service adds the tables to its own `MetaData` (so Alembic sees them):

    metadata = MetaData()
    outbox = outbox_table(metadata)
    processed = processed_events_table(metadata)

and writes events with the same session as the state change:

    async with db.session(tenant) as session:
        session.add(lead)
        await emit(session, "leads.lead.created", LeadCreated(...), source="leads", subject=lead.id)
        await session.commit()      # both or neither

`emit`/`add_event` run a Core INSERT on the outbox table, so the row belongs to the
session's current transaction. After that transaction commits, every relay in
this process that serves the same database is woken at once (see `register_waker`),
so publishing does not wait for the relay's next poll.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    event,
    insert,
)
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from kit.db import SYSTEM_KEY, TENANT_KEY, TenantScopeError
from kit.events.envelope import EventEnvelope, new_envelope

OUTBOX_TABLE = "outbox"
PROCESSED_EVENTS_TABLE = "processed_events"


def outbox_table(metadata: MetaData, name: str = OUTBOX_TABLE) -> Table:
    """The outbox: one row per event, `published_at` set once the relay has XADDed it."""
    table = Table(
        name,
        metadata,
        Column("id", String(26), primary_key=True, comment="event ULID = envelope.id"),
        Column("tenant_id", String(64), nullable=False),
        Column("type", String(128), nullable=False),
        Column("subject", String(128), nullable=False, default=""),
        Column("envelope", LargeBinary, nullable=False, comment="serialized EventEnvelope"),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("published_at", DateTime(timezone=True), nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
    )
    # The relay's query: unpublished rows in id order. Partial, so it stays tiny.
    Index(
        f"ix_{name}_unpublished",
        table.c.id,
        postgresql_where=table.c.published_at.is_(None),
        sqlite_where=table.c.published_at.is_(None),
    )
    # Retention purge of published rows (kit.housekeeping).
    Index(f"ix_{name}_published_at", table.c.published_at)
    return table


def processed_events_table(metadata: MetaData, name: str = PROCESSED_EVENTS_TABLE) -> Table:
    """Event ids a consumer group has applied; the primary key makes a second apply impossible."""
    return Table(
        name,
        metadata,
        Column("consumer_group", String(64), primary_key=True),
        Column("event_id", String(26), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )


# Statements are compiled against these; a service's own tables of the same
# names (made by the functions above) are the same tables in the database.
default_outbox = outbox_table(MetaData())
default_processed_events = processed_events_table(MetaData())


def session_tenant(session: AsyncSession) -> str | None:
    """The tenant a kit.db session is scoped to (None for a system session)."""
    tenant = session.info.get(TENANT_KEY)
    return str(tenant) if tenant else None


async def add_event(session: AsyncSession, envelope: EventEnvelope, *, table: Table | None = None) -> None:
    """Insert `envelope` into the outbox inside the session's current transaction.

    In a tenant session the envelope's tenant must be the session's tenant.
    """
    tenant = session_tenant(session)
    if tenant is not None and envelope.tenant != tenant:
        raise TenantScopeError(f"event for tenant {envelope.tenant!r} written in tenant {tenant!r}")
    if not envelope.tenant:
        raise TenantScopeError("an event needs a tenant")
    target = default_outbox if table is None else table
    await session.execute(
        insert(target).values(
            id=envelope.id,
            tenant_id=envelope.tenant,
            type=envelope.type,
            subject=envelope.subject,
            envelope=envelope.SerializeToString(),
            created_at=datetime.now(UTC),
            published_at=None,
            attempts=0,
        )
    )
    _mark_pending(session)


async def add_events(
    session: AsyncSession, envelopes: list[EventEnvelope], *, table: Table | None = None
) -> None:
    """`add_event` for many envelopes in one statement (a batch's events in one round trip)."""
    if not envelopes:
        return
    tenant = session_tenant(session)
    if any(not e.tenant or (tenant is not None and e.tenant != tenant) for e in envelopes):
        raise TenantScopeError(f"every event needs the session's tenant ({tenant!r})")
    target = default_outbox if table is None else table
    at = datetime.now(UTC)
    rows = [
        {
            "id": e.id,
            "tenant_id": e.tenant,
            "type": e.type,
            "subject": e.subject,
            "envelope": e.SerializeToString(),
            "created_at": at,
            "published_at": None,
            "attempts": 0,
        }
        for e in envelopes
    ]
    await session.execute(insert(target), rows)
    _mark_pending(session)


async def emit(
    session: AsyncSession,
    event_type: str,
    payload: Message,
    *,
    source: str,
    subject: str = "",
    tenant: str | None = None,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
    table: Table | None = None,
) -> EventEnvelope:
    """Build an envelope (tenant defaults to the session's) and add it to the outbox. Returns it."""
    tenant = tenant or session_tenant(session)
    if tenant is None:
        if session.info.get(SYSTEM_KEY):
            raise TenantScopeError("emit from a system session needs tenant=")
        raise TenantScopeError("emit needs a tenant session or tenant=")
    envelope = new_envelope(
        event_type,
        tenant,
        payload,
        source=source,
        subject=subject,
        event_id=event_id,
        occurred_at=occurred_at,
    )
    await add_event(session, envelope, table=table)
    return envelope


# --- waking relays after commit -------------------------------------------------

_PENDING_KEY = "kit.events.pending"
_wakers: dict[str, set[Callable[[], None]]] = {}
_wakers_lock = threading.Lock()


def database_key(engine: Engine) -> str:
    """Identifies a database across Engine objects: its URL without password."""
    return engine.url.render_as_string(hide_password=True)


def register_waker(key: str, waker: Callable[[], None]) -> None:
    """Call `waker()` after any session in this process commits outbox rows to database `key`."""
    with _wakers_lock:
        _wakers.setdefault(key, set()).add(waker)


def unregister_waker(key: str, waker: Callable[[], None]) -> None:
    with _wakers_lock:
        found = _wakers.get(key)
        if found is not None:
            found.discard(waker)
            if not found:
                del _wakers[key]


def _mark_pending(session: AsyncSession) -> None:
    if _PENDING_KEY in session.info:
        return
    bind = session.sync_session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    session.info[_PENDING_KEY] = database_key(engine)


@event.listens_for(Session, "after_commit")
def _wake_relays(session: Session) -> None:
    key = session.info.pop(_PENDING_KEY, None)
    if key is None:
        return
    with _wakers_lock:
        wakers = list(_wakers.get(key, ()))
    for waker in wakers:
        waker()


@event.listens_for(Session, "after_rollback")
def _forget_pending(session: Session, *_args: Any) -> None:
    session.info.pop(_PENDING_KEY, None)


__all__ = [
    "OUTBOX_TABLE",
    "PROCESSED_EVENTS_TABLE",
    "add_event",
    "add_events",
    "database_key",
    "default_outbox",
    "default_processed_events",
    "emit",
    "outbox_table",
    "processed_events_table",
    "register_waker",
    "session_tenant",
    "unregister_waker",
]
