"""A consumer group's processed-event ledger: claiming an event id once per group."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Table, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession


async def claim_event(session: AsyncSession, processed: Table, group: str, event_id: str) -> bool:
    """Insert the processed-event row; False if `group` has already applied the event."""
    if not event_id:
        raise ValueError("event without an id cannot be de-duplicated")
    values = {"consumer_group": group, "event_id": event_id, "processed_at": datetime.now(UTC)}
    dialect = session.get_bind().dialect.name
    if dialect in {"sqlite", "postgresql"}:
        make = sqlite_insert if dialect == "sqlite" else pg_insert
        stmt = make(processed).values(**values).on_conflict_do_nothing()
        result = await session.execute(stmt)
        return int(getattr(result, "rowcount", 0) or 0) == 1
    seen = await session.scalar(
        select(processed.c.event_id).where(
            processed.c.consumer_group == group, processed.c.event_id == event_id
        )
    )
    if seen is not None:
        return False
    await session.execute(insert(processed).values(**values))
    return True


__all__ = ["claim_event"]
