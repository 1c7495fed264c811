"""Every query on connectors and their audit trail."""

from __future__ import annotations

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

    async def page(self, connector_id: str, page: PageRequest) -> Page[ConnectorChangeRow]:
        # Documented order: oldest first, the ULID breaking ties.
        order = [Sort(ConnectorChangeRow.changed_at), Sort(ConnectorChangeRow.change_id)]
        where = [ConnectorChangeRow.connector_id == connector_id]
        return await self.list(where, order, page, query=query_key("changes", connector_id))
