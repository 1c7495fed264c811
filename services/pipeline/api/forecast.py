"""The weighted forecast (GetForecast): computed live in SQL for the caller's scope."""

from __future__ import annotations

from kit.errors import InvalidArgument
from kit.grpc import context as call
from salesops.pipeline.v1 import forecast_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline.api.base import ApiBase, Ctx
from services.pipeline.convert import bounded_lists, date_proto, enum_name, enum_value, now, optional_date, ts
from services.pipeline.domain import forecast as f
from services.pipeline.forecasting import Computed, Covered, ForecastQuery, compute
from services.pipeline.presenters import totals_proto

LEVELS = {lv.name: lv for lv in f.Level}


def covered_scope(asked: types_pb2.OrgScope, covers: Covered) -> types_pb2.OrgScope:
    """The scope the figures cover, not the one asked for: a supervisor's default forecast is their
    team's (org_path = the team), a rep's their own deals (user_ids = [the rep]), "" only the company."""
    if covers.level is f.Level.REP:
        return types_pb2.OrgScope(org_path=asked.org_path.strip("/"), user_ids=[covers.key])
    return types_pb2.OrgScope(org_path=covers.key, user_ids=asked.user_ids)


def present_forecast(request: pb.GetForecastRequest, c: Computed) -> forecast_pb2.Forecast:
    """The wire form; the caller's scope was applied in SQL, so every number here is theirs to see."""
    out = forecast_pb2.Forecast(
        scope=covered_scope(request.scope, c.covers),
        group_by=enum_value(types_pb2.OrgLevel, c.level.name),
        totals=totals_proto(c.totals, c.currency),
        compute_time=ts(now()),
    )
    out.period.granularity = request.period.granularity
    out.period.start_date.CopyFrom(date_proto(c.start))
    out.period.end_date.CopyFrom(date_proto(c.end))
    for row in c.rows:
        out.rows.add(
            level=enum_value(types_pb2.OrgLevel, c.level.name),
            key=row.key,
            display_name=row.key,
            org_path=row.org_path,
            totals=totals_proto(row.totals, c.currency),
        )
    return out


class ForecastApi(ApiBase):
    async def GetForecast(self, request: pb.GetForecastRequest, context: Ctx) -> pb.GetForecastResponse:
        who = call.principal()
        bounded_lists(request)
        granularity = enum_name(types_pb2.PeriodGranularity, request.period.granularity)
        if granularity not in f.Granularity.__members__:
            raise InvalidArgument.field("period.granularity", "one of WEEK, MONTH, QUARTER, YEAR")
        day = optional_date(request.period.start_date, "period.start_date")
        if day is None:
            raise InvalidArgument.field("period.start_date", "required: any day inside the period")
        level_name = enum_name(types_pb2.OrgLevel, request.group_by)
        if level_name and level_name not in LEVELS:
            raise InvalidArgument.field("group_by", "an org level")
        query = ForecastQuery(
            f.Granularity[granularity],
            day,
            request.scope.org_path,
            tuple(request.scope.user_ids),
            LEVELS[level_name] if level_name else None,
        )
        async with self.read(who) as uow:
            computed = await compute(uow, who, query)
        return pb.GetForecastResponse(forecast=present_forecast(request, computed))
