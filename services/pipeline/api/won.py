"""Won revenue over time (GetWonRevenue): per rep or unit and period, for the managers' dashboards."""

from __future__ import annotations

from kit.errors import InvalidArgument
from kit.grpc import context as call
from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import forecast_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import accuracy, won_revenue
from services.pipeline.api.accuracy import org_level
from services.pipeline.api.base import ApiBase, Ctx
from services.pipeline.convert import bounded_lists, date_proto, enum_name, enum_value, now
from services.pipeline.domain import forecast as f
from services.pipeline.repositories.calls import display_names

DEFAULT_PERIODS = 6


class WonApi(ApiBase):
    async def GetWonRevenue(self, request: pb.GetWonRevenueRequest, context: Ctx) -> pb.GetWonRevenueResponse:
        who = call.principal()
        bounded_lists(request)
        level = org_level(request.group_by, "group_by")
        g = enum_name(types_pb2.PeriodGranularity, request.granularity) or "MONTH"
        if g not in f.Granularity.__members__:
            raise InvalidArgument.field("granularity", "one of WEEK, MONTH, QUARTER, YEAR")
        count = request.period_count or DEFAULT_PERIODS
        async with self.read(who) as uow:
            today = await accuracy.local_today(uow, now())
            won = await won_revenue.won_revenue(
                uow,
                who,
                f.Granularity[g],
                today,
                count,
                request.scope.org_path,
                tuple(request.scope.user_ids),
                level,
            )
            reps = [r.key for r in won.rows] if won.level is f.Level.REP else []
            if won.scope.level is f.Level.REP:
                reps.append(won.scope.key)
            names = await display_names(uow, reps)
        # The total is labelled with the scope its figures cover (the viewer's team, region, own deals...).
        total = _series(won, won.total, won.scope.level, won.scope.name(names), g)
        rows = [_series(won, r, won.level, names.get(r.key, r.key), g) for r in won.rows]
        return pb.GetWonRevenueResponse(total=total, rows=rows)


def _series(
    won: won_revenue.Won, s: won_revenue.Series, level: f.Level, name: str, granularity: str
) -> forecast_pb2.WonRevenueSeries:
    out = forecast_pb2.WonRevenueSeries(
        level=enum_value(types_pb2.OrgLevel, level.name), key=s.key, display_name=name
    )
    for (start, end), amount, n in zip(won.periods, s.amounts, s.counts, strict=True):
        point = out.points.add(
            won_amount=Money(amount_minor=amount, currency=won.currency),
            won_deal_count=n,
            average_deal_size=Money(amount_minor=amount // n if n else 0, currency=won.currency),
        )
        point.period.granularity = enum_value(types_pb2.PeriodGranularity, granularity)
        point.period.start_date.CopyFrom(date_proto(start))
        point.period.end_date.CopyFrom(date_proto(end))
    return out
