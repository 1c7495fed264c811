"""Every query on connectors and their audit trail."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Row, Table, bindparam, select

from kit.resources import Page, PageRequest, Repository, Sort, query_key
from services.integration.store import ConnectorChangeRow, ConnectorRow

_CONNECTORS = cast(Table, ConnectorRow.__table__)
# What an inbound delivery's write checks (the stamp) and its health note reads: no ORM row built.
# Built once with bound parameters: building the WHERE per call cost more than running it.
_RECEIVING = select(
    _CONNECTORS.c.version,
    _CONNECTORS.c.created_at,
    _CONNECTORS.c.sealed_signing_secret,
    _CONNECTORS.c.sealed_secrets,
    _CONNECTORS.c.health,
    _CONNECTORS.c.last_success_at,
).where(
    _CONNECTORS.c.tenant_id == bindparam("tenant"),
    _CONNECTORS.c.connector_id == bindparam("connector_id"),
)


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

    async def receiving(self, connector_id: str) -> Row[Any] | None:
        """The connector's stamp and health columns (a Core read, the tenant bound here)."""
        bound = {"tenant": self.uow.tenant, "connector_id": connector_id}
        row: Row[Any] | None = (await self.session.execute(_RECEIVING, bound)).first()  # type: ignore[assignment]
        return row


class ConnectorChanges(Repository[ConnectorChangeRow]):
    model, resource, key = ConnectorChangeRow, "integration.ConnectorChange", ("change_id",)

    async def page(self, connector_id: str, page: PageRequest) -> Page[ConnectorChangeRow]:
        # Documented order: oldest first, the ULID breaking ties.
        order = [Sort(ConnectorChangeRow.changed_at), Sort(ConnectorChangeRow.change_id)]
        where = [ConnectorChangeRow.connector_id == connector_id]
        return await self.list(where, order, page, query=query_key("changes", connector_id))
