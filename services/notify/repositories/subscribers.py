"""Notify's directory of subscribers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, literal, or_, select

from kit.db import Database
from kit.resources import Page, PageRequest, Repository, Sort, contains, query_key, starts_with
from salesops.notify.v1 import notify_service_pb2
from services.notify.store import SubscriberRow


class SubscriberRepository(Repository[SubscriberRow]):
    model = SubscriberRow
    resource = "notify.Subscriber"
    key = ("user_id",)

    async def page(
        self, request: notify_service_pb2.ListSubscribersRequest, role: str, page: PageRequest
    ) -> Page[SubscriberRow]:
        """Ordered by org unit, then display name (then user id); every filter in SQL."""
        where: list[ColumnElement[bool]] = []
        unit = request.org_unit_path.strip("/")
        if unit:
            exact = SubscriberRow.org_unit_path == unit
            below = starts_with(SubscriberRow.org_unit_path, unit + "/", case_sensitive=True)
            where.append(or_(exact, below) if request.include_descendants else exact)
        if request.HasField("active"):
            where.append(SubscriberRow.active.is_(request.active.value))
        if request.display_name_query:
            where.append(contains(SubscriberRow.display_name, request.display_name_query))
        if role:
            # roles is a comma-separated list: match one whole name.
            listed = literal(",") + SubscriberRow.roles + literal(",")
            where.append(contains(listed, f",{role},", case_sensitive=True))
        active = request.active.value if request.HasField("active") else None
        query = query_key(unit, request.include_descendants, role, active, request.display_name_query)
        order = [Sort(SubscriberRow.org_unit_path), Sort(SubscriberRow.display_name)]
        return await self.list(where, order, page, query, count=True)

    async def members(self) -> list[tuple[str, str, str, bool]]:
        """(user id, org unit, roles, active) of everyone: the snapshot role resolution works on."""
        rows = await self.session.execute(
            select(
                SubscriberRow.user_id, SubscriberRow.org_unit_path, SubscriberRow.roles, SubscriberRow.active
            )
        )
        return [(u, o, r, a) for u, o, r, a in rows]

    async def contacts(self, user_ids: Iterable[str]) -> dict[str, Any]:
        """user id -> a row with the CONTACT_COLUMNS as attributes, for the known users among `user_ids`.

        Plain column rows, not ORM objects: a 10,000-recipient fan-out reads them all.
        """
        ids = list(dict.fromkeys(user_ids))
        found: dict[str, Any] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = await self.session.execute(
                select(*CONTACT_COLUMNS).where(SubscriberRow.user_id.in_(chunk))
            )
            found.update({r.user_id: r for r in rows})
        return found


CONTACT_COLUMNS = (
    SubscriberRow.user_id,
    SubscriberRow.display_name,
    SubscriberRow.active,
    SubscriberRow.phone,
    SubscriberRow.email,
    SubscriberRow.wecom_user_id,
    SubscriberRow.dingtalk_user_id,
)


async def active_everywhere(db: Database) -> list[tuple[str, str, str]]:
    """(tenant, user id, roles) of every active subscriber of every tenant: the digest sweep's list."""
    async with db.system_session() as s:
        rows = await s.execute(
            select(SubscriberRow.tenant_id, SubscriberRow.user_id, SubscriberRow.roles).where(
                SubscriberRow.active.is_(True)
            )
        )
        return [(t, u, r) for t, u, r in rows]
