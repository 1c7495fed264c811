"""Every SQL query of notify, one module per aggregate, on kit's Repository base.

RPCs reach them through the unit of work of `Transactions.run`; the sender, the event
consumer and the activities hold a tenant session of their own (they commit it where
they always did) and reach the same repositories through `on_session`.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import TENANT_KEY
from kit.resources import PageTokens, UnitOfWork
from services.notify import store

# Work over a held session never lists pages: a fixed key keeps the unit's type honest.
_NO_PAGING = PageTokens(b"notify-held-sessions-never-page")


def on_session(session: AsyncSession) -> UnitOfWork:
    """A unit of work over a tenant session someone else commits."""
    return UnitOfWork(
        session, session.info[TENANT_KEY], source="notify", outbox=store.outbox, tokens=_NO_PAGING
    )
