"""Deals: visibility, the typed ListDeals search, counts per stage, evidence kinds attached."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select, true

from kit.auth import Principal
from kit.errors import NotFound
from kit.resources import Page, PageRequest, Repository, Sort, contains, starts_with
from services.pipeline import access
from services.pipeline.store import DealRow, EvidenceRow
from services.pipeline.store_discipline import DwellFlagRow

OPEN = "OPEN"
# ListDeals' total_size is exact up to this many matches; above it, COUNT_CAP + 1 says "more".
COUNT_CAP = 1000

# ListDeals' documented orders -> column ("stage" follows the model: base probabilities never decrease).
ORDERS: dict[str, Any] = {
    "expected_close_date": DealRow.expected_close_date,
    "amount": DealRow.amount_minor,
    "weighted_amount": DealRow.weighted_minor,
    "update_time": DealRow.updated_at,
    "stage": DealRow.stage_probability,
}


def in_org(column: Any, org: str) -> ColumnElement[bool]:
    """`column` is `org` or below it in the org tree (segment-wise: "east" is not "eastern")."""
    return or_(column == org, starts_with(column, org + "/", case_sensitive=True))


def visible_to(who: Principal) -> ColumnElement[bool]:
    """The deals `who` may see (the SQL twin of access.can_view)."""
    return visible_where(who, DealRow.owner_user_id, DealRow.org_path)


def visible_where(who: Principal, owner: Any, org_path: Any) -> ColumnElement[bool]:
    """access.can_view over any owner and org path columns (deals, snapshot copies of deals)."""
    if access.sees_all(who):
        return true()
    mine: ColumnElement[bool] = owner == who.user_id
    org = who.org.strip("/")
    if who.has_role(*access.MANAGERS) and org:
        return or_(mine, in_org(org_path, org))
    return mine


@dataclass
class DealSearch:
    owners: list[str] = field(default_factory=list)
    org_path: str = ""
    stage_ids: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=lambda: [OPEN])
    categories: list[str] = field(default_factory=list)
    frozen: bool | None = None
    dwell_exceeded: bool | None = None  # flagged over its limit in the stay it is in now
    close_from: date | None = None
    close_to: date | None = None
    customer_id: str = ""
    lead_id: str = ""
    industry: str = ""
    updated_after: datetime | None = None
    query: str = ""

    def clauses(self, who: Principal) -> list[ColumnElement[bool]]:
        c: list[ColumnElement[bool]] = [visible_to(who)]
        if self.owners:
            c.append(DealRow.owner_user_id.in_(self.owners))
        if self.org_path:
            c.append(in_org(DealRow.org_path, self.org_path.strip("/")))
        if self.stage_ids:
            c.append(DealRow.stage_id.in_(self.stage_ids))
        if self.statuses:
            c.append(DealRow.status.in_(self.statuses))
        if self.categories:
            c.append(DealRow.forecast_category.in_(self.categories))
        if self.frozen is not None:
            c.append(DealRow.frozen.is_(self.frozen))
        if self.dwell_exceeded is not None:
            over = exists().where(
                DwellFlagRow.tenant_id == DealRow.tenant_id,
                DwellFlagRow.deal_id == DealRow.deal_id,
                DwellFlagRow.stage_id == DealRow.stage_id,
                DwellFlagRow.stage_entered_at == DealRow.stage_entered_at,
            )
            c.append(over if self.dwell_exceeded else ~over)
        if self.close_from:
            c.append(DealRow.expected_close_date >= self.close_from)
        if self.close_to:
            c.append(DealRow.expected_close_date <= self.close_to)
        if self.customer_id:
            c.append(DealRow.customer_id == self.customer_id)
        if self.lead_id:
            c.append(DealRow.lead_id == self.lead_id)
        if self.industry:
            c.append(DealRow.industry == self.industry)
        if self.updated_after:
            c.append(DealRow.updated_at >= self.updated_after)
        if self.query:
            c.append(or_(contains(DealRow.title, self.query), contains(DealRow.customer_name, self.query)))
        return c


class Deals(Repository[DealRow]):
    model = DealRow
    resource = "pipeline.Deal"
    key = ("deal_id",)

    async def locked(self, deal_id: str) -> DealRow | None:
        stmt = select(DealRow).where(DealRow.deal_id == deal_id).with_for_update()
        return await self.session.scalar(stmt)  # type: ignore[no-any-return]

    async def visible(self, who: Principal, deal_id: str, *, for_update: bool = False) -> DealRow:
        """The deal if `who` may see it; NOT_FOUND otherwise (out of scope looks like absent)."""
        row = await (self.locked(deal_id) if for_update else self.find(deal_id))
        if row is None or not access.can_view(who, row.owner_user_id, row.org_path):
            raise NotFound(self.resource, deal_id)
        return row

    async def by_lead(self, lead_id: str) -> DealRow | None:
        return await self.session.scalar(select(DealRow).where(DealRow.lead_id == lead_id))  # type: ignore[no-any-return]

    async def search(
        self, who: Principal, search: DealSearch, order: Sort, page: PageRequest, query: str
    ) -> Page[DealRow]:
        """A page and its total (ListDealsResponse.total_size, exact up to COUNT_CAP) in one
        statement (`Repository.paginate_counted`)."""
        return await self.paginate_counted(search.clauses(who), [order], page, query, cap=COUNT_CAP)

    async def open_counts_by_stage(self) -> dict[str, int]:
        stmt = select(DealRow.stage_id, func.count()).where(DealRow.status == OPEN).group_by(DealRow.stage_id)
        return {stage: int(n) for stage, n in (await self.session.execute(stmt)).all()}

    async def open_in(self, stage_ids: Sequence[str]) -> list[DealRow]:
        if not stage_ids:
            return []
        stmt = select(DealRow).where(and_(DealRow.status == OPEN, DealRow.stage_id.in_(list(stage_ids))))
        return list(await self.session.scalars(stmt))

    async def open_deals(self) -> list[DealRow]:
        return list(await self.session.scalars(select(DealRow).where(DealRow.status == OPEN)))

    async def evidence_types(self, deal_id: str) -> set[str]:
        stmt = select(EvidenceRow.evidence_type_id).where(EvidenceRow.deal_id == deal_id).distinct()
        return set(await self.session.scalars(stmt))


__all__ = ["COUNT_CAP", "OPEN", "ORDERS", "DealSearch", "Deals", "in_org", "visible_to", "visible_where"]
