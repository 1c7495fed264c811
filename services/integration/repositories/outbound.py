"""Every query on outbound subscriptions, their audit trail, deliveries and attempts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from kit.resources import Page, PageRequest, Repository, Sort, query_key
from salesops.integration.v1 import webhooks_pb2 as wh
from services.integration.store_outbound import (
    WebhookAttemptRow,
    WebhookDeliveryRow,
    WebhookSubscriptionChangeRow,
    WebhookSubscriptionRow,
)

OPEN = (wh.DELIVERY_STATE_PENDING, wh.DELIVERY_STATE_RETRY_SCHEDULED)


class Subscriptions(Repository[WebhookSubscriptionRow]):
    model, resource, key = WebhookSubscriptionRow, "integration.WebhookSubscription", ("subscription_id",)

    async def receiving(self) -> Sequence[WebhookSubscriptionRow]:
        """The tenant's enabled and suspended subscriptions (few per tenant: matched in Python by event type)."""
        live = (wh.SUBSCRIPTION_STATE_ENABLED, wh.SUBSCRIPTION_STATE_SUSPENDED)
        rows = await self.session.scalars(
            select(WebhookSubscriptionRow).where(WebhookSubscriptionRow.state.in_(live))
        )
        return list(rows)

    async def healthy(self, subscription_id: str, at: datetime) -> None:
        """A delivery succeeded at `at`: the subscription's failure streak ends (one UPDATE, no read)."""
        r = WebhookSubscriptionRow
        await self.session.execute(
            update(r)
            .where(r.subscription_id == subscription_id)
            .values(last_success_at=at, failing_since=None, consecutive_failures=0)
            .execution_options(synchronize_session=False)
        )

    async def page(self, state: int, event_type: str, page: PageRequest) -> Page[WebhookSubscriptionRow]:
        r = WebhookSubscriptionRow
        where: list[ColumnElement[bool]] = []
        if state:
            where.append(r.state == state)
        if event_type:
            service = event_type.split(".", 1)[0]
            # Tokens are space-separated: pad both sides so "leads.Lead" does not match "leads.LeadWon".
            padded = " " + r.event_types + " "
            where.append(
                padded.contains(f" {event_type} ", autoescape=True)
                | padded.contains(f" {service}.* ", autoescape=True)
                | padded.contains(" * ")
            )
        # Documented order: display name, then id.
        order = [Sort(r.display_name), Sort(r.subscription_id)]
        return await self.list(where, order, page, query=query_key("subscriptions", state, event_type))


class SubscriptionChanges(Repository[WebhookSubscriptionChangeRow]):
    model, resource, key = (
        WebhookSubscriptionChangeRow,
        "integration.WebhookSubscriptionChange",
        ("change_id",),
    )

    async def page(self, subscription_id: str, page: PageRequest) -> Page[WebhookSubscriptionChangeRow]:
        # Documented order: oldest first, the ULID breaking ties.
        r = WebhookSubscriptionChangeRow
        order = [Sort(r.changed_at), Sort(r.change_id)]
        where = [r.subscription_id == subscription_id]
        return await self.list(where, order, page, query=query_key("subscription_changes", subscription_id))


@dataclass
class DeliverySearch:
    subscription_id: str = ""
    states: list[int] = field(default_factory=list)
    event_type: str = ""
    event_id: str = ""
    created_from: datetime | None = None
    created_to: datetime | None = None

    def where(self) -> list[ColumnElement[bool]]:
        r = WebhookDeliveryRow
        where: list[ColumnElement[bool]] = []
        if self.subscription_id:
            where.append(r.subscription_id == self.subscription_id)
        if self.states:
            where.append(r.state.in_(self.states))
        if self.event_type:
            where.append(r.event_type == self.event_type)
        if self.event_id:
            where.append(r.event_id == self.event_id)
        if self.created_from is not None:
            where.append(r.created_at >= self.created_from)
        if self.created_to is not None:
            where.append(r.created_at < self.created_to)
        return where

    def key(self) -> Any:
        return query_key(
            "deliveries",
            self.subscription_id,
            sorted(self.states),
            self.event_type,
            self.event_id,
            str(self.created_from),
            str(self.created_to),
        )


class Deliveries(Repository[WebhookDeliveryRow]):
    model, resource, key = WebhookDeliveryRow, "integration.WebhookDelivery", ("delivery_id",)

    async def add_all(self, rows: Sequence[WebhookDeliveryRow]) -> None:
        self.session.add_all(rows)
        await self.session.flush()

    async def page(self, search: DeliverySearch, page: PageRequest) -> Page[WebhookDeliveryRow]:
        # Documented order: newest first, id as tie-breaker.
        order = [
            Sort(WebhookDeliveryRow.created_at, descending=True),
            Sort(WebhookDeliveryRow.delivery_id, descending=True),
        ]
        return await self.list(search.where(), order, page, query=search.key())

    async def dead_letters(
        self,
        subscription_id: str,
        event_types: Sequence[str],
        since: datetime | None,
        until: datetime | None,
        limit: int,
    ) -> Sequence[WebhookDeliveryRow]:
        """Dead letters of a subscription not replayed yet, oldest first."""
        r = WebhookDeliveryRow
        replayed = select(WebhookDeliveryRow.replay_of).where(WebhookDeliveryRow.replay_of != "")
        stmt = select(r).where(
            r.subscription_id == subscription_id,
            r.state == wh.DELIVERY_STATE_DEAD_LETTERED,
            r.delivery_id.not_in(replayed.scalar_subquery()),
        )
        if event_types:
            stmt = stmt.where(r.event_type.in_(event_types))
        if since is not None:
            stmt = stmt.where(r.dead_letter_at >= since)
        if until is not None:
            stmt = stmt.where(r.dead_letter_at < until)
        rows = await self.session.scalars(stmt.order_by(r.dead_letter_at, r.delivery_id).limit(limit))
        return list(rows)

    async def cancel_open(self, subscription_id: str) -> None:
        """The subscription was disabled or deleted: its open deliveries are dropped (their workflows stop)."""
        await self.session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.subscription_id == subscription_id, WebhookDeliveryRow.state.in_(OPEN))
            .values(state=wh.DELIVERY_STATE_CANCELLED, next_attempt_at=None)
        )


class Attempts(Repository[WebhookAttemptRow]):
    model, resource, key = WebhookAttemptRow, "integration.DeliveryAttempt", ("delivery_id", "attempt_number")

    async def of(self, delivery_id: str, last: int = 20) -> Sequence[WebhookAttemptRow]:
        """The last `last` attempts of a delivery, oldest first."""
        rows = await self.session.scalars(
            select(WebhookAttemptRow)
            .where(WebhookAttemptRow.delivery_id == delivery_id)
            .order_by(WebhookAttemptRow.attempt_number.desc())
            .limit(last)
        )
        return list(reversed(list(rows)))

    async def last_of(self, delivery_ids: Sequence[str]) -> dict[str, WebhookAttemptRow]:
        if not delivery_ids:
            return {}
        rows = await self.session.scalars(
            select(WebhookAttemptRow)
            .where(WebhookAttemptRow.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttemptRow.attempt_number)
        )
        return {row.delivery_id: row for row in rows}


async def unclaimed_everywhere(
    session: AsyncSession, older_than: datetime, limit: int
) -> list[tuple[str, str]]:
    """(tenant, delivery id) of PENDING rows no workflow claimed yet, across tenants (system session)."""
    r = WebhookDeliveryRow
    stmt = (
        select(r.tenant_id, r.delivery_id)
        .where(r.claimed.is_(False), r.state == wh.DELIVERY_STATE_PENDING, r.created_at < older_than)
        .order_by(r.created_at)
        .limit(limit)
    )
    return [(str(t), str(d)) for t, d in (await session.execute(stmt)).all()]


async def claim_everywhere(session: AsyncSession, refs: Sequence[tuple[str, str]]) -> None:
    """Mark (tenant, delivery id) rows as owned by their started workflow, one statement per tenant."""
    by_tenant: dict[str, list[str]] = {}
    for tenant, delivery_id in refs:
        by_tenant.setdefault(tenant, []).append(delivery_id)
    r = WebhookDeliveryRow
    for tenant, ids in by_tenant.items():
        await session.execute(
            update(r).where(r.tenant_id == tenant, r.delivery_id.in_(ids)).values(claimed=True)
        )
