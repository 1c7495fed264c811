"""Every query on received webhooks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, insert, select, update

from kit.resources import Page, PageRequest, Repository, Sort, query_key
from services.integration.store import ReceivedWebhookRow

_TABLE = cast(Table, ReceivedWebhookRow.__table__)
_INSERT = insert(_TABLE)  # built once: a group's records go in one executemany


@dataclass
class WebhookSearch:
    connector_id: str = ""
    states: list[int] = field(default_factory=list)
    external_event_type: str = ""
    external_event_id: str = ""
    deal_id: str = ""
    received_from: datetime | None = None
    received_to: datetime | None = None

    def where(self) -> list[ColumnElement[bool]]:
        r = ReceivedWebhookRow
        where: list[ColumnElement[bool]] = []
        if self.connector_id:
            where.append(r.connector_id == self.connector_id)
        if self.states:
            where.append(r.state.in_(self.states))
        if self.external_event_type:
            where.append(r.external_event_type == self.external_event_type)
        if self.external_event_id:
            where.append(r.external_event_id == self.external_event_id)
        if self.deal_id:
            where.append(r.deal_id == self.deal_id)
        if self.received_from is not None:
            where.append(r.received_at >= self.received_from)
        if self.received_to is not None:
            where.append(r.received_at < self.received_to)
        return where

    def key(self) -> Any:
        return query_key(
            "received",
            self.connector_id,
            sorted(self.states),
            self.external_event_type,
            self.external_event_id,
            self.deal_id,
            str(self.received_from),
            str(self.received_to),
        )


class ReceivedWebhooks(Repository[ReceivedWebhookRow]):
    model, resource, key = ReceivedWebhookRow, "integration.ReceivedWebhook", ("received_webhook_id",)

    async def by_event(self, connector_id: str, external_event_id: str) -> ReceivedWebhookRow | None:
        """The record of a sender's event id: the idempotency key (unique in the table)."""
        return await self.session.scalar(
            select(ReceivedWebhookRow).where(
                ReceivedWebhookRow.connector_id == connector_id,
                ReceivedWebhookRow.external_event_id == external_event_id,
            )
        )

    async def page(self, search: WebhookSearch, page: PageRequest) -> Page[ReceivedWebhookRow]:
        # Documented order: newest first, id as tie-breaker.
        order = [
            Sort(ReceivedWebhookRow.received_at, descending=True),
            Sort(ReceivedWebhookRow.received_webhook_id, descending=True),
        ]
        return await self.list(search.where(), order, page, query=search.key())

    async def by_events(self, connector_id: str, external_event_ids: list[str]) -> list[ReceivedWebhookRow]:
        """The records of any of these event ids of one connector (a group's duplicates, one statement)."""
        if not external_event_ids:
            return []
        found = await self.session.scalars(
            select(ReceivedWebhookRow).where(
                ReceivedWebhookRow.connector_id == connector_id,
                ReceivedWebhookRow.external_event_id.in_(external_event_ids),
            )
        )
        return list(found)

    async def count_duplicates(self, repeated: dict[str, int]) -> None:
        """Add re-deliveries to stored records' counts (record id: how many), as an increment in
        SQL: concurrent transactions counting one record both count (a read-then-write loses one)."""
        for received_webhook_id, n in repeated.items():
            await self.session.execute(
                update(ReceivedWebhookRow)
                .where(
                    ReceivedWebhookRow.tenant_id == self.uow.tenant,
                    ReceivedWebhookRow.received_webhook_id == received_webhook_id,
                )
                .values(duplicate_count=ReceivedWebhookRow.duplicate_count + n)
            )

    async def insert_new(self, rows: list[dict[str, Any]]) -> None:
        """Insert new records (column values, the tenant's added here) now, in one statement, so a
        duplicate key surfaces inside the unit of work. A Core insert: no ORM rows to build and flush."""
        if rows:
            tenant = self.uow.tenant
            await self.session.execute(_INSERT, [{**r, "tenant_id": tenant} for r in rows])
