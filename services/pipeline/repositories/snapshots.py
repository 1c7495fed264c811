"""Forecast snapshots: the stored snapshot documents and each snapshot's deals (copied in SQL)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, insert, literal, or_, select
from sqlalchemy.orm import aliased

from kit.resources import Page, PageRequest, Repository, Sort, UnitOfWork
from services.pipeline.store import DealRow, SnapshotDealRow, SnapshotRow

COPIED = (
    "deal_id",
    "owner_user_id",
    "org_path",
    "stage_id",
    "status",
    "forecast_category",
    "frozen",
    "amount_minor",
    "weighted_minor",
    "probability",
    "expected_close_date",
)


class Snapshots(Repository[SnapshotRow]):
    model = SnapshotRow
    resource = "pipeline.ForecastSnapshot"
    key = ("snapshot_id",)

    async def by_request(self, request_id: str) -> SnapshotRow | None:
        return await self.session.scalar(select(SnapshotRow).where(SnapshotRow.request_id == request_id))  # type: ignore[no-any-return]

    async def copy_deals(self, snapshot_id: str, start: date, end: date) -> int:
        """Every deal closing in the period (open, won or lost) as it stands, in one INSERT ... SELECT."""
        source = select(
            DealRow.tenant_id,
            literal(snapshot_id),
            *(getattr(DealRow, c) for c in COPIED),
        ).where(
            DealRow.tenant_id == self.uow.tenant,
            DealRow.expected_close_date >= start,
            DealRow.expected_close_date <= end,
        )
        stmt = insert(SnapshotDealRow).from_select(["tenant_id", "snapshot_id", *COPIED], source)
        result = await self.session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def page(
        self,
        granularity: str,
        period_start: date | None,
        taken_from: date | None,
        taken_to: date | None,
        page: PageRequest,
        query: str,
    ) -> Page[SnapshotRow]:
        where: list[ColumnElement[bool]] = []
        if granularity:
            where.append(SnapshotRow.granularity == granularity)
        if period_start:
            where.append(SnapshotRow.period_start == period_start)
        if taken_from:
            where.append(SnapshotRow.take_date >= taken_from)
        if taken_to:
            where.append(SnapshotRow.take_date <= taken_to)
        return await self.list(where, [Sort(SnapshotRow.snapshot_id, descending=True)], page, query)


@dataclass(frozen=True)
class FlowSum:
    kind: str
    owner: str
    org_path: str
    count: int
    amount: int


class SnapshotFlows:
    """Deals compared between two snapshots in SQL, summed per kind of flow, owner and org path."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.session = uow.session
        self.tenant = uow.tenant

    async def between(
        self,
        earlier: SnapshotRow,
        later: SnapshotRow,
        where: Callable[[Any, Any], Sequence[ColumnElement[bool]]],
    ) -> list[FlowSum]:
        """`where(owner, org_path)` restricts by the deal's later owner and team (its earlier ones if gone)."""
        a, b = aliased(SnapshotDealRow), aliased(SnapshotDealRow)
        omitted = and_(b.forecast_category == "OMITTED", a.forecast_category != "OMITTED")
        kind = case(
            (b.deal_id.is_(None), "PUSHED_OUT"),
            (b.status == "WON", "WON"),
            (b.status == "LOST", "LOST"),
            (omitted, "REMOVED"),
            (b.amount_minor > a.amount_minor, "AMOUNT_UP"),
            (b.amount_minor < a.amount_minor, "AMOUNT_DOWN"),
            else_="",
        )
        amount = case(
            (b.deal_id.is_(None), a.amount_minor),
            (b.status == "WON", b.amount_minor),
            (or_(b.status == "LOST", omitted), a.amount_minor),
            (b.amount_minor > a.amount_minor, b.amount_minor - a.amount_minor),
            else_=a.amount_minor - b.amount_minor,
        )
        owner = func.coalesce(b.owner_user_id, a.owner_user_id)
        org = func.coalesce(b.org_path, a.org_path)
        join = and_(b.tenant_id == a.tenant_id, b.snapshot_id == later.snapshot_id, b.deal_id == a.deal_id)
        out = (
            select(kind, owner, org, func.count(), func.sum(amount))
            .select_from(a)
            .outerjoin(b, join)
            .where(
                a.tenant_id == self.tenant,
                a.snapshot_id == earlier.snapshot_id,
                a.status == "OPEN",
                *where(owner, org),
            )
            .group_by(kind, owner, org)
        )
        # In the later snapshot only: new since the earlier one, or pulled into the period.
        c, d = aliased(SnapshotDealRow), aliased(SnapshotDealRow)
        arrived = case((DealRow.created_at > earlier.take_time, "NEW"), else_="PULLED_IN")
        gone = and_(d.tenant_id == c.tenant_id, d.snapshot_id == earlier.snapshot_id, d.deal_id == c.deal_id)
        came = (
            select(arrived, c.owner_user_id, c.org_path, func.count(), func.sum(c.amount_minor))
            .select_from(c)
            .outerjoin(d, gone)
            .join(DealRow, and_(DealRow.tenant_id == c.tenant_id, DealRow.deal_id == c.deal_id))
            .where(
                c.tenant_id == self.tenant,
                c.snapshot_id == later.snapshot_id,
                d.deal_id.is_(None),
                c.status.in_(("OPEN", "WON")),
                *where(c.owner_user_id, c.org_path),
            )
            .group_by(arrived, c.owner_user_id, c.org_path)
        )
        sums: list[FlowSum] = []
        for stmt in (out, came):
            for k, who_, path, n, total in (await self.session.execute(stmt)).all():
                if k:
                    sums.append(FlowSum(str(k), str(who_), str(path), int(n), int(total or 0)))
        return sums
