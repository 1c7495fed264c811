"""Forecast snapshots: the stored snapshot documents and each snapshot's deals (copied in SQL)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, insert, literal, select

from kit.resources import Page, PageRequest, Repository, Sort
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
        """Every open or won deal of the period as it stands, in one INSERT ... SELECT (no rows in Python)."""
        source = select(
            DealRow.tenant_id,
            literal(snapshot_id),
            *(getattr(DealRow, c) for c in COPIED),
        ).where(
            DealRow.tenant_id == self.uow.tenant,
            DealRow.status.in_(("OPEN", "WON")),
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
