"""Forecast accuracy (GetForecastAccuracy) and bias (ListForecastBias) against locked calls."""

from __future__ import annotations

from kit.errors import InvalidArgument
from kit.grpc import context as call
from kit.resources import PageRequest, query_key
from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import forecast_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import accuracy, pipeline_settings
from services.pipeline.api.base import ApiBase, Ctx
from services.pipeline.calls import period_of
from services.pipeline.convert import bounded_lists, date_proto, enum_name, enum_value, now, optional_date
from services.pipeline.domain import accuracy as acc
from services.pipeline.domain import forecast as f
from services.pipeline.repositories.calls import display_names

MAX_BIAS_PERIODS = 12


def org_level(value: int, field: str) -> f.Level | None:
    """The forecast org level a request names (None: unset); shared by the report APIs."""
    name = enum_name(types_pb2.OrgLevel, value)
    if not name:
        return None
    if name not in f.Level.__members__:
        raise InvalidArgument.field(field, "an org level")
    return f.Level[name]


def _weighted(basis: int) -> bool:
    name = enum_name(forecast_pb2.ForecastBasis, basis)
    if name not in ("", "WEIGHTED", "SUBMITTED_COMMIT"):
        raise InvalidArgument.field("basis", "WEIGHTED or SUBMITTED_COMMIT")
    return name == "WEIGHTED"


def _score(into: forecast_pb2.ForecastAccuracy, s: acc.Score, currency: str) -> None:
    def money(minor: int) -> Money:
        return Money(amount_minor=minor, currency=currency)

    into.forecast_amount.CopyFrom(money(s.forecast))
    into.actual_amount.CopyFrom(money(s.actual))
    into.rep_call_amount.CopyFrom(money(s.rep_call))
    into.locked_commit_amount.CopyFrom(money(s.locked_commit))
    into.won_from_commit_amount.CopyFrom(money(s.won_from_commit))
    into.brier_sample_size = s.brier_n
    into.calls_missing = s.missing
    for name, value in (
        ("error_ratio", s.ape),
        ("bias_ratio", s.bias),
        ("wape", s.wape),
        ("attainment_ratio", s.attainment),
        ("commit_conversion_ratio", s.commit_conversion),
        ("brier_score", s.brier),
        ("adjustment_value", s.adjustment_value),
    ):
        if value is not None:
            setattr(into, name, value)


class AccuracyApi(ApiBase):
    async def GetForecastAccuracy(
        self, request: pb.GetForecastAccuracyRequest, context: Ctx
    ) -> pb.GetForecastAccuracyResponse:
        who = call.principal()
        bounded_lists(request)
        granularity, start, _ = period_of(request.period)
        level = org_level(request.group_by, "group_by")
        weighted = _weighted(request.basis)
        as_of = optional_date(request.as_of_date, "as_of_date")
        scope = accuracy.Scope(request.scope.org_path.strip("/"), tuple(request.scope.user_ids))
        at = now()
        async with self.read(who) as uow:
            today = await accuracy.local_today(uow, at)
            m = await accuracy.measure(uow, who, granularity, start, scope, level, weighted, as_of, today)
            reps = [r.key for r in m.rows] if m.level is f.Level.REP else []
            names = await display_names(uow, [*reps, m.covers.key] if m.covers.level is f.Level.REP else reps)

        def base(level: f.Level, key: str, name: str) -> forecast_pb2.ForecastAccuracy:
            out = forecast_pb2.ForecastAccuracy(
                level=enum_value(types_pb2.OrgLevel, level.name),
                key=key,
                display_name=name,
                basis=forecast_pb2.FORECAST_BASIS_WEIGHTED
                if weighted
                else forecast_pb2.FORECAST_BASIS_SUBMITTED_COMMIT,
                forecast_date=date_proto(m.lock.lock_date),
                period_closed=m.period_closed,
                lock_point=enum_value(forecast_pb2.LockPoint, m.lock.lock_point),
            )
            out.period.granularity = request.period.granularity
            out.period.start_date.CopyFrom(date_proto(m.lock.period_start))
            out.period.end_date.CopyFrom(date_proto(m.lock.period_end))
            return out

        # The total is labelled with the scope its figures cover (the viewer's team, region, own deals...).
        total = base(m.covers.level, m.covers.key, m.covers.name(names))
        _score(total, m.total, m.currency)
        rows = []
        for r in m.rows:
            row = base(m.level, r.key, names.get(r.key, r.key))
            _score(row, r.score, m.currency)
            rows.append(row)
        return pb.GetForecastAccuracyResponse(total=total, rows=rows)

    async def ListForecastBias(
        self, request: pb.ListForecastBiasRequest, context: Ctx
    ) -> pb.ListForecastBiasResponse:
        who = call.principal()
        bounded_lists(request)
        level = org_level(request.level, "level")
        if level is None or (level is f.Level.COMPANY and request.scope.org_path.strip("/")):
            raise InvalidArgument.field("level", "required: the level of the subjects (e.g. ORG_LEVEL_REP)")
        weighted = _weighted(request.basis)
        g = enum_name(types_pb2.PeriodGranularity, request.granularity) or "MONTH"
        if g not in f.Granularity.__members__:
            raise InvalidArgument.field("granularity", "one of WEEK, MONTH, QUARTER, YEAR")
        if not 0 <= request.period_count <= MAX_BIAS_PERIODS:
            raise InvalidArgument.field("period_count", f"1 to {MAX_BIAS_PERIODS} (0 = 4)")
        count = request.period_count or acc.FLAG_PERIODS
        tendency = enum_name(forecast_pb2.BiasTendency, request.tendency)
        page = PageRequest.parse(request.page_size, request.page_token)
        scope = accuracy.Scope(request.scope.org_path.strip("/"), tuple(request.scope.user_ids))
        query = query_key("ListForecastBias", request.level, request.scope, g, count, request.basis, tendency)
        at = now()
        async with self.read(who) as uow:
            today = await accuracy.local_today(uow, at)
            found = await accuracy.biases(uow, who, f.Granularity[g], scope, level, weighted, count, today)
            if tendency:
                found = [b for b in found if b.bias.tendency.value == tendency]
            after = (
                uow.tokens.decode(request.page_token, uow.tenant, query)[0] if request.page_token else None
            )
            if after is not None and not isinstance(after, str):
                raise InvalidArgument.field("page_token", "not a page token of this request")
            rest = [b for b in found if after is None or b.key > after]
            items = rest[: page.size]
            token = uow.tokens.encode(uow.tenant, query, [items[-1].key]) if len(rest) > page.size else ""
            names = await display_names(uow, [b.key for b in items] if level is f.Level.REP else [])
            currency = await pipeline_settings.base_currency(uow)
        biases = [_bias(b, level, weighted, names.get(b.key, b.key), g, currency) for b in items]
        return pb.ListForecastBiasResponse(biases=biases, next_page_token=token)


def _bias(
    b: accuracy.SubjectBias, level: f.Level, weighted: bool, name: str, granularity: str, currency: str
) -> forecast_pb2.ForecastBias:
    out = forecast_pb2.ForecastBias(
        level=enum_value(types_pb2.OrgLevel, level.name),
        key=b.key,
        display_name=name,
        org_path=b.org_path,
        basis=forecast_pb2.FORECAST_BASIS_WEIGHTED
        if weighted
        else forecast_pb2.FORECAST_BASIS_SUBMITTED_COMMIT,
        mean_bias_ratio=b.bias.ratio,
        tendency=enum_value(forecast_pb2.BiasTendency, b.bias.tendency.value),
        tracking_signal=b.bias.tracking_signal,
        coaching_flag=b.bias.coaching_flag,
    )
    for p in b.points:
        point = out.history.add(
            forecast_amount=Money(amount_minor=p.forecast, currency=currency),
            actual_amount=Money(amount_minor=p.actual, currency=currency),
        )
        point.period.granularity = enum_value(types_pb2.PeriodGranularity, granularity)
        point.period.start_date.CopyFrom(date_proto(p.start))
        point.period.end_date.CopyFrom(date_proto(p.end))
        if p.actual:
            point.bias_ratio = (p.forecast - p.actual) / p.actual
    return out
