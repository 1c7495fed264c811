"""Finance facts and reconciliation issues: every query of cross-validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select, true

from kit.auth import Principal
from kit.errors import NotFound
from kit.resources import Page, PageRequest, Repository, Sort
from services.pipeline import access
from services.pipeline.repositories.deals import in_org, visible_to, visible_where
from services.pipeline.store import DealRow
from services.pipeline.store_customers import FinanceFactRow, ReconciliationIssueRow

ISSUE_ORDERS: dict[str, Any] = {
    "detect_time": ReconciliationIssueRow.detected_at,
    "difference_amount": ReconciliationIssueRow.difference_minor,
}


def facts_visible_to(who: Principal) -> ColumnElement[bool]:
    """Facts of deals the caller may see; unmatched facts only for admins and partner systems."""
    if access.sees_all(who):
        return true()
    return FinanceFactRow.deal_id.in_(select(DealRow.deal_id).where(visible_to(who)))


def issues_visible_to(who: Principal) -> ColumnElement[bool]:
    """The deal's owner, their managers, admins (issues carry the deal's owner and org path)."""
    return visible_where(who, ReconciliationIssueRow.owner_user_id, ReconciliationIssueRow.org_path)


class FinanceFacts(Repository[FinanceFactRow]):
    model = FinanceFactRow
    resource = "pipeline.FinanceFact"
    key = ("fact_id",)

    async def by_source(self, source_system: str, external_id: str) -> FinanceFactRow | None:
        stmt = select(FinanceFactRow).where(
            FinanceFactRow.source_system == source_system, FinanceFactRow.external_id == external_id
        )
        return await self.session.scalar(stmt.with_for_update())  # type: ignore[no-any-return]

    async def contract_deal(self, contract_external_id: str) -> str:
        """The deal a matched contract fact with this external id belongs to ("" when none)."""
        stmt = (
            select(FinanceFactRow.deal_id)
            .where(
                FinanceFactRow.external_id == contract_external_id,
                FinanceFactRow.kind == "CONTRACT_SIGNED",
                FinanceFactRow.deal_id != "",
            )
            .limit(1)
        )
        return (await self.session.scalar(stmt)) or ""

    async def deals_of_customer_amount(self, customer_id: str, amount_minor: int) -> list[DealRow]:
        """Deals of the customer at exactly this amount, not lost (the last matching fallback)."""
        stmt = (
            select(DealRow)
            .where(
                DealRow.customer_id == customer_id,
                DealRow.amount_minor == amount_minor,
                DealRow.status != "LOST",
            )
            .limit(2)
        )
        return list(await self.session.scalars(stmt))

    async def of_deal(self, deal_id: str) -> list[FinanceFactRow]:
        stmt = (
            select(FinanceFactRow).where(FinanceFactRow.deal_id == deal_id).order_by(FinanceFactRow.fact_id)
        )
        return list(await self.session.scalars(stmt))

    async def of_deals(self, deal_ids: list[str], limit: int) -> list[FinanceFactRow]:
        if not deal_ids:
            return []
        stmt = (
            select(FinanceFactRow)
            .where(FinanceFactRow.deal_id.in_(deal_ids))
            .order_by(FinanceFactRow.occurred_at.desc(), FinanceFactRow.fact_id)
            .limit(limit)
        )
        return list(await self.session.scalars(stmt))

    async def sums_by_kind(self, deal_ids: list[str]) -> dict[str, int]:
        """Amounts per fact kind over these deals, summed in SQL."""
        if not deal_ids:
            return {}
        stmt = (
            select(FinanceFactRow.kind, func.sum(FinanceFactRow.amount_minor))
            .where(FinanceFactRow.deal_id.in_(deal_ids))
            .group_by(FinanceFactRow.kind)
        )
        return {k: int(v or 0) for k, v in (await self.session.execute(stmt)).all()}

    async def page(
        self, who: Principal, search: FactSearch, page: PageRequest, query: str
    ) -> Page[FinanceFactRow]:
        return await self.list(
            search.clauses(who), [Sort(FinanceFactRow.occurred_at, descending=True)], page, query
        )


@dataclass
class FactSearch:
    deal_id: str = ""
    kinds: list[str] = field(default_factory=list)
    matched: bool | None = None
    source_system: str = ""
    occur_from: datetime | None = None
    occur_to: datetime | None = None

    def clauses(self, who: Principal) -> list[ColumnElement[bool]]:
        c = [facts_visible_to(who)]
        if self.deal_id:
            c.append(FinanceFactRow.deal_id == self.deal_id)
        if self.kinds:
            c.append(FinanceFactRow.kind.in_(self.kinds))
        if self.matched is not None:
            c.append(FinanceFactRow.deal_id != "" if self.matched else FinanceFactRow.deal_id == "")
        if self.source_system:
            c.append(FinanceFactRow.source_system == self.source_system)
        if self.occur_from:
            c.append(FinanceFactRow.occurred_at >= self.occur_from)
        if self.occur_to:
            c.append(FinanceFactRow.occurred_at < self.occur_to)
        return c


@dataclass
class IssueSearch:
    org_path: str = ""
    owners: list[str] = field(default_factory=list)
    deal_id: str = ""
    kinds: list[str] = field(default_factory=list)
    states: list[str] = field(default_factory=lambda: ["OPEN"])
    detect_from: datetime | None = None
    detect_to: datetime | None = None

    def clauses(self, who: Principal) -> list[ColumnElement[bool]]:
        c = [issues_visible_to(who)]
        if self.org_path:
            c.append(in_org(ReconciliationIssueRow.org_path, self.org_path.strip("/")))
        if self.owners:
            c.append(ReconciliationIssueRow.owner_user_id.in_(self.owners))
        if self.deal_id:
            c.append(ReconciliationIssueRow.deal_id == self.deal_id)
        if self.kinds:
            c.append(ReconciliationIssueRow.kind.in_(self.kinds))
        if self.states:
            c.append(ReconciliationIssueRow.state.in_(self.states))
        if self.detect_from:
            c.append(ReconciliationIssueRow.detected_at >= self.detect_from)
        if self.detect_to:
            c.append(ReconciliationIssueRow.detected_at < self.detect_to)
        return c


class ReconciliationIssues(Repository[ReconciliationIssueRow]):
    model = ReconciliationIssueRow
    resource = "pipeline.ReconciliationIssue"
    key = ("issue_id",)

    async def visible(
        self, who: Principal, issue_id: str, *, for_update: bool = False
    ) -> ReconciliationIssueRow:
        stmt = select(ReconciliationIssueRow).where(
            ReconciliationIssueRow.issue_id == issue_id, issues_visible_to(who)
        )
        row = await self.session.scalar(stmt.with_for_update() if for_update else stmt)
        if row is None:
            raise NotFound(self.resource, issue_id)
        return row  # type: ignore[no-any-return]

    async def open_of(self, deal_id: str) -> list[ReconciliationIssueRow]:
        stmt = select(ReconciliationIssueRow).where(
            ReconciliationIssueRow.deal_id == deal_id, ReconciliationIssueRow.state == "OPEN"
        )
        return list(await self.session.scalars(stmt.order_by(ReconciliationIssueRow.issue_id)))

    async def by_open_key(self, open_key: str) -> ReconciliationIssueRow | None:
        stmt = select(ReconciliationIssueRow).where(ReconciliationIssueRow.open_key == open_key)
        return await self.session.scalar(stmt)  # type: ignore[no-any-return]

    async def closed_differences(self, deal_id: str, kind: str) -> set[int]:
        """Differences people already judged on this deal and kind (not raised again as such)."""
        stmt = select(ReconciliationIssueRow.difference_minor).where(
            ReconciliationIssueRow.deal_id == deal_id,
            ReconciliationIssueRow.kind == kind,
            ReconciliationIssueRow.state != "OPEN",
            ReconciliationIssueRow.resolution != "CLEARED_BY_DATA",
        )
        return set(await self.session.scalars(stmt))

    async def open_of_deals(self, deal_ids: list[str]) -> list[ReconciliationIssueRow]:
        if not deal_ids:
            return []
        stmt = select(ReconciliationIssueRow).where(
            ReconciliationIssueRow.deal_id.in_(deal_ids), ReconciliationIssueRow.state == "OPEN"
        )
        return list(await self.session.scalars(stmt.order_by(ReconciliationIssueRow.detected_at.desc())))

    async def page(
        self, who: Principal, search: IssueSearch, order: Sort, page: PageRequest, query: str
    ) -> Page[ReconciliationIssueRow]:
        return await self.list(search.clauses(who), [order], page, query, count=True)
