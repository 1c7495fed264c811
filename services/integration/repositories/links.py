"""Every query on external links."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select

from kit.resources import Page, PageRequest, Repository, Sort, query_key
from services.integration.store import ExternalLinkRow


class ExternalLinks(Repository[ExternalLinkRow]):
    model, resource, key = ExternalLinkRow, "integration.ExternalLink", ("link_id",)

    async def of_record(
        self, connector_id: str, object_type: int, external_id: str
    ) -> ExternalLinkRow | None:
        return await self.session.scalar(
            select(ExternalLinkRow).where(
                ExternalLinkRow.connector_id == connector_id,
                ExternalLinkRow.object_type == object_type,
                ExternalLinkRow.external_id == external_id,
            )
        )

    async def page(
        self, deal_id: str, customer_id: str, connector_id: str, external_id: str, page: PageRequest
    ) -> Page[ExternalLinkRow]:
        r = ExternalLinkRow
        where: list[ColumnElement[bool]] = []
        for column, value in (
            (r.deal_id, deal_id),
            (r.customer_id, customer_id),
            (r.connector_id, connector_id),
            (r.external_id, external_id),
        ):
            if value:
                where.append(column == value)
        # Documented order: creation time, then id.
        order = [Sort(r.created_at), Sort(r.link_id)]
        return await self.list(
            where, order, page, query=query_key("links", deal_id, customer_id, connector_id, external_id)
        )
