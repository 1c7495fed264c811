"""Forecast snapshots: taken by admins (the weekly schedule arrives with the Temporal work), read in scope."""

from __future__ import annotations

from typing import Any

from kit.errors import InvalidArgument
from kit.grpc import context as call
from kit.resources import PageRequest, UnitOfWork, query_key
from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import forecast_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import flows, snapshots
from services.pipeline.api.base import ApiBase, Ctx
from services.pipeline.convert import bounded_lists, enum_name, enum_value, now, optional_date
from services.pipeline.domain import forecast as f
from services.pipeline.forecasting import check_scope
from services.pipeline.presenters import SNAPSHOTS, SnapshotView
from services.pipeline.repositories.snapshots import Snapshots


def _granularity(period: types_pb2.SalesPeriod, *, required: bool) -> f.Granularity | None:
    name = enum_name(types_pb2.PeriodGranularity, period.granularity)
    if not name and not required:
        return None
    if name not in f.Granularity.__members__:
        raise InvalidArgument.field("period.granularity", "one of WEEK, MONTH, QUARTER, YEAR")
    return f.Granularity[name]


class SnapshotsApi(ApiBase):
    async def TakeForecastSnapshot(
        self, request: pb.TakeForecastSnapshotRequest, context: Ctx
    ) -> pb.TakeForecastSnapshotResponse:
        who = call.principal()
        granularity = _granularity(request.period, required=True)
        assert granularity is not None
        day = optional_date(request.period.start_date, "period.start_date")
        if day is None:
            raise InvalidArgument.field("period.start_date", "required: any day inside the period")

        async def work(uow: UnitOfWork) -> forecast_pb2.ForecastSnapshot:
            row = await snapshots.take(uow, who, granularity, day, request.request_id, now())
            return SNAPSHOTS.present(who, SnapshotView(row))

        return pb.TakeForecastSnapshotResponse(snapshot=await self.write(who, work))

    async def GetForecastSnapshot(
        self, request: pb.GetForecastSnapshotRequest, context: Ctx
    ) -> pb.GetForecastSnapshotResponse:
        who = call.principal()
        check_scope(who, request.scope.org_path.strip("/"))
        async with self.read(who) as uow:
            row = await Snapshots(uow).get(request.snapshot_id)
        full = request.view != pb.SNAPSHOT_VIEW_BASIC
        view = SnapshotView(row, full=full, org_path=request.scope.org_path)
        return pb.GetForecastSnapshotResponse(snapshot=SNAPSHOTS.present(who, view))

    async def ListForecastSnapshots(
        self, request: pb.ListForecastSnapshotsRequest, context: Ctx
    ) -> pb.ListForecastSnapshotsResponse:
        who = call.principal()
        page = PageRequest.parse(request.page_size, request.page_token)
        granularity = _granularity(request.period, required=False)
        day = optional_date(request.period.start_date, "period.start_date")
        start = f.period_bounds(granularity, day)[0] if granularity and day else None
        taken_from = optional_date(request.take_date_from, "take_date_from")
        taken_to = optional_date(request.take_date_to, "take_date_to")
        query = query_key(
            "ListForecastSnapshots", request.period, request.take_date_from, request.take_date_to
        )
        async with self.read(who) as uow:
            found = await Snapshots(uow).page(
                granularity.value if granularity else "", start, taken_from, taken_to, page, query
            )
        return pb.ListForecastSnapshotsResponse(
            snapshots=[SNAPSHOTS.present(who, SnapshotView(r, full=False)) for r in found.items],
            next_page_token=found.next_page_token,
        )

    async def CompareForecastSnapshots(
        self, request: pb.CompareForecastSnapshotsRequest, context: Ctx
    ) -> pb.CompareForecastSnapshotsResponse:
        who = call.principal()
        bounded_lists(request)
        level_name = enum_name(types_pb2.OrgLevel, request.group_by)
        if level_name and level_name not in f.Level.__members__:
            raise InvalidArgument.field("group_by", "an org level")
        async with self.read(who) as uow:
            found = await flows.compare(
                uow,
                who,
                request.from_snapshot_id,
                request.to_snapshot_id,
                request.scope.org_path,
                tuple(request.scope.user_ids),
                f.Level[level_name] if level_name else None,
            )
        return pb.CompareForecastSnapshotsResponse(flows=present_flows(request, found))


KINDS = ("NEW", "PULLED_IN", "PUSHED_OUT", "AMOUNT_UP", "AMOUNT_DOWN", "WON", "LOST", "REMOVED")


def _totals(into: Any, totals: f.FlowTotals, currency: str) -> None:
    for kind in KINDS:
        if kind in totals:
            n, amount = totals[kind]
            into.add(
                kind=enum_value(forecast_pb2.FlowKind, kind),
                deal_count=n,
                amount=Money(amount_minor=amount, currency=currency),
            )


def present_flows(
    request: pb.CompareForecastSnapshotsRequest, c: flows.Compared
) -> forecast_pb2.ForecastFlows:
    """Counts only: the caller's scope was applied in SQL."""
    out = forecast_pb2.ForecastFlows(
        from_snapshot_id=request.from_snapshot_id,
        to_snapshot_id=request.to_snapshot_id,
        group_by=enum_value(types_pb2.OrgLevel, c.level.name),
    )
    _totals(out.totals, c.totals, c.currency)
    for key, org, totals in c.rows:
        row = out.rows.add(level=out.group_by, key=key, org_path=org)
        _totals(row.flows, totals, c.currency)
    return out
