"""Every query on connectors and their audit trail."""

from __future__ import annotations

from sqlalchemy import select

from kit.resources import Page, PageRequest, Repository, Sort, query_key
from services.integration.store import ConnectorChangeRow, ConnectorRow


class Connectors(Repository[ConnectorRow]):
    model, resource, key = ConnectorRow, "integration.Connector", ("connector_id",)

    async def page(self, kind: int, state: int, page: PageRequest) -> Page[ConnectorRow]:
        where = []
        if kind:
            where.append(ConnectorRow.kind == kind)
        if state:
            where.append(ConnectorRow.state == state)
        # Documented order: display name, then id.
        order = [Sort(ConnectorRow.display_name), Sort(ConnectorRow.connector_id)]
        return await self.list(where, order, page, query=query_key("connectors", kind, state))


class ConnectorChanges(Repository[ConnectorChangeRow]):
    model, resource, key = ConnectorChangeRow, "integration.ConnectorChange", ("change_id",)

    async def of(self, connector_id: str) -> list[ConnectorChangeRow]:
        rows = await self.session.scalars(
            select(ConnectorChangeRow)
            .where(ConnectorChangeRow.connector_id == connector_id)
            .order_by(ConnectorChangeRow.changed_at, ConnectorChangeRow.change_id)
        )
        return list(rows)
