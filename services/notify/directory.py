"""Subscriber directory reads: who a recipient is, and the snapshot role resolution works on."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notify.domain.recipients import Member
from services.notify.store import SubscriberRow


def member(row: SubscriberRow) -> Member:
    return Member(row.user_id, row.org_unit_path, frozenset(r for r in row.roles.split(",") if r), row.active)


async def members(session: AsyncSession) -> list[Member]:
    rows = await session.execute(
        select(SubscriberRow.user_id, SubscriberRow.org_unit_path, SubscriberRow.roles, SubscriberRow.active)
    )
    return [Member(u, o, frozenset(r for r in roles.split(",") if r), a) for u, o, roles, a in rows]


# Plain column rows, not ORM objects: a 10,000-recipient fan-out reads them all.
CONTACT_COLUMNS = (
    SubscriberRow.user_id,
    SubscriberRow.display_name,
    SubscriberRow.active,
    SubscriberRow.phone,
    SubscriberRow.email,
    SubscriberRow.wecom_user_id,
    SubscriberRow.dingtalk_user_id,
)


async def subscribers(session: AsyncSession, user_ids: Iterable[str]) -> dict[str, Any]:
    """user id -> a row with the CONTACT_COLUMNS as attributes, for the known users among `user_ids`."""
    ids = list(dict.fromkeys(user_ids))
    found: dict[str, Any] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = await session.execute(select(*CONTACT_COLUMNS).where(SubscriberRow.user_id.in_(chunk)))
        found.update({r.user_id: r for r in rows})
    return found
