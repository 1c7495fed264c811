"""Customers, their contact keys, and the leads projection and tags behind the single customer view."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, or_, select, update

from kit.auth import Principal
from kit.errors import NotFound
from kit.resources import Page, PageRequest, Repository, Sort, contains
from services.pipeline import access
from services.pipeline.repositories.deals import in_org, visible_to, visible_where
from services.pipeline.store import DealChangeRow, DealRow
from services.pipeline.store_customers import (
    ContactKeyRow,
    CustomerLeadRow,
    CustomerRow,
    CustomerTagRow,
    LeadFollowUpRow,
)

ORDERS: dict[str, Any] = {"update_time": CustomerRow.updated_at, "display_name": CustomerRow.display_name}
VIEW_LIMIT = 100


def customers_visible_to(who: Principal) -> ColumnElement[bool]:
    """Owned, in the caller's managed org, or holding a deal the caller may see (access.can_view's twin)."""
    if access.sees_all(who):
        return visible_where(who, CustomerRow.owner_user_id, CustomerRow.org_path)
    with_deal = exists().where(DealRow.customer_id == CustomerRow.customer_id, visible_to(who))
    return or_(visible_where(who, CustomerRow.owner_user_id, CustomerRow.org_path), with_deal)


@dataclass
class CustomerSearch:
    owners: list[str]
    org_path: str = ""
    industry: str = ""
    city: str = ""
    query: str = ""
    contact_key: str = ""
    updated_after: datetime | None = None

    def clauses(self, who: Principal) -> list[ColumnElement[bool]]:
        c = [customers_visible_to(who)]
        if self.owners:
            c.append(CustomerRow.owner_user_id.in_(self.owners))
        if self.org_path:
            c.append(in_org(CustomerRow.org_path, self.org_path.strip("/")))
        if self.industry:
            c.append(CustomerRow.industry == self.industry)
        if self.city:
            c.append(CustomerRow.city == self.city)
        if self.query:
            c.append(
                or_(
                    contains(CustomerRow.display_name, self.query),
                    contains(CustomerRow.normalized_name, self.query),
                )
            )
        if self.contact_key:
            key = select(ContactKeyRow.customer_id).where(ContactKeyRow.contact_key == self.contact_key)
            c.append(CustomerRow.customer_id.in_(key))
        if self.updated_after:
            c.append(CustomerRow.updated_at >= self.updated_after)
        return c


class Customers(Repository[CustomerRow]):
    model = CustomerRow
    resource = "pipeline.Customer"
    key = ("customer_id",)

    async def visible(self, who: Principal, customer_id: str) -> CustomerRow:
        """The customer if `who` may see it; NOT_FOUND otherwise (out of scope looks like absent)."""
        stmt = select(CustomerRow).where(CustomerRow.customer_id == customer_id, customers_visible_to(who))
        row = await self.session.scalar(stmt)
        if row is None:
            raise NotFound(self.resource, customer_id)
        return row  # type: ignore[no-any-return]

    async def by_name(self, normalized: str) -> CustomerRow | None:
        return await self.session.scalar(select(CustomerRow).where(CustomerRow.normalized_name == normalized))  # type: ignore[no-any-return]

    async def by_keys(self, keys: list[str]) -> dict[str, str]:
        """contact key -> customer id, for the keys already taken."""
        if not keys:
            return {}
        stmt = select(ContactKeyRow.contact_key, ContactKeyRow.customer_id).where(
            ContactKeyRow.contact_key.in_(keys)
        )
        return {k: c for k, c in (await self.session.execute(stmt)).all()}

    async def set_keys(self, customer_id: str, keys: list[str]) -> None:
        """Replace the customer's contact keys (the unique key refuses one held by another customer)."""
        await self.session.execute(delete(ContactKeyRow).where(ContactKeyRow.customer_id == customer_id))
        for k in dict.fromkeys(keys):
            self.session.add(ContactKeyRow(contact_key=k, customer_id=customer_id))
        await self.session.flush()

    async def rename_deals(self, customer_id: str, name: str, by: str, at: datetime) -> None:
        """The customer's deals take its new name (version bumped: a deal's etag names what it shows)."""
        await self.session.execute(
            update(DealRow)
            .where(DealRow.customer_id == customer_id)
            .values(customer_name=name, version=DealRow.version + 1, updated_at=at, updated_by=by)
            .execution_options(synchronize_session=False)
        )

    async def search(
        self, who: Principal, search: CustomerSearch, order: Sort, page: PageRequest, query: str
    ) -> Page[CustomerRow]:
        return await self.list(search.clauses(who), [order], page, query, count=True)


class CustomerActivity(Repository[CustomerLeadRow]):
    """The leads projection: converted leads, their follow-ups, and keyword tags."""

    model = CustomerLeadRow
    resource = "pipeline.CustomerLead"
    key = ("lead_id",)

    async def leads_of(self, customer_id: str) -> list[CustomerLeadRow]:
        stmt = (
            select(CustomerLeadRow)
            .where(CustomerLeadRow.customer_id == customer_id)
            .order_by(CustomerLeadRow.converted_at.desc(), CustomerLeadRow.lead_id)
            .limit(VIEW_LIMIT)
        )
        return list(await self.session.scalars(stmt))

    async def lead_ids(self, customer_id: str) -> list[str]:
        stmt = (
            select(CustomerLeadRow.lead_id)
            .where(CustomerLeadRow.customer_id == customer_id)
            .order_by(CustomerLeadRow.lead_id)
        )
        return list(await self.session.scalars(stmt))

    async def follow_ups_of(self, leads: list[str]) -> list[LeadFollowUpRow]:
        if not leads:
            return []
        stmt = (
            select(LeadFollowUpRow)
            .where(LeadFollowUpRow.lead_id.in_(leads))
            .order_by(LeadFollowUpRow.occurred_at.desc(), LeadFollowUpRow.activity_id)
            .limit(VIEW_LIMIT)
        )
        return list(await self.session.scalars(stmt))

    async def follow_up(self, activity_id: str) -> LeadFollowUpRow | None:
        return await self.session.get(
            LeadFollowUpRow, {"tenant_id": self.uow.tenant, "activity_id": activity_id}
        )

    async def tags_of(self, customer_id: str) -> list[CustomerTagRow]:
        stmt = (
            select(CustomerTagRow)
            .where(CustomerTagRow.customer_id == customer_id)
            .order_by(CustomerTagRow.count.desc(), CustomerTagRow.tag)
        )
        return list(await self.session.scalars(stmt))

    async def tag(self, customer_id: str, tag: str) -> CustomerTagRow | None:
        return await self.session.get(
            CustomerTagRow, {"tenant_id": self.uow.tenant, "customer_id": customer_id, "tag": tag}
        )


class CustomerDeals(Repository[DealRow]):
    """A customer's deals within the caller's scope, and their history, for the single customer view."""

    model = DealRow
    resource = "pipeline.Deal"
    key = ("deal_id",)

    async def visible_of(self, who: Principal, customer_id: str) -> list[DealRow]:
        stmt = (
            select(DealRow)
            .where(DealRow.customer_id == customer_id, visible_to(who))
            .order_by(DealRow.updated_at.desc(), DealRow.deal_id)
            .limit(VIEW_LIMIT)
        )
        return list(await self.session.scalars(stmt))

    async def changes_of(self, deal_ids: list[str]) -> dict[str, list[DealChangeRow]]:
        """Each deal's last VIEW_LIMIT changes, oldest first."""
        out: dict[str, list[DealChangeRow]] = {d: [] for d in deal_ids}
        if not deal_ids:
            return out
        ranked = (
            select(
                DealChangeRow.change_id,
                func.row_number()
                .over(partition_by=DealChangeRow.deal_id, order_by=DealChangeRow.change_id.desc())
                .label("n"),
            )
            .where(DealChangeRow.deal_id.in_(deal_ids))
            .subquery()
        )
        stmt = (
            select(DealChangeRow)
            .join(ranked, ranked.c.change_id == DealChangeRow.change_id)
            .where(ranked.c.n <= VIEW_LIMIT, DealChangeRow.deal_id.in_(deal_ids))
            .order_by(DealChangeRow.deal_id, DealChangeRow.change_id)
        )
        for row in await self.session.scalars(stmt):
            out[row.deal_id].append(row)
        return out
