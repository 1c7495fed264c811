"""Notify's directory of subscribers."""

from __future__ import annotations

from sqlalchemy import ColumnElement, literal, or_

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
