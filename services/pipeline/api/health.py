"""Process health (GetProcessHealth, ListProcessAnomalies): managers over the unit and admins."""

from __future__ import annotations

from datetime import UTC, datetime, time

from sqlalchemy import ColumnElement

from kit.errors import InvalidArgument
from kit.grpc import context as call
from kit.resources import PageRequest, query_key
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import process_health_pb2, types_pb2
from services.pipeline import access, health
from services.pipeline.api.base import ApiBase, Ctx
from services.pipeline.convert import bounded_lists, enum_name, from_ts, now, optional_date
from services.pipeline.repositories.deals import in_org
from services.pipeline.repositories.health import Anomalies
from services.pipeline.store_discipline import AnomalyRow

MAX_ORG = 200


def _org(path: str, field: str) -> str:
    if len(path) > MAX_ORG:
        raise InvalidArgument.field(field, f"at most {MAX_ORG} characters")
    return path.strip("/")


class HealthApi(ApiBase):
    async def GetProcessHealth(
        self, request: pb.GetProcessHealthRequest, context: Ctx
    ) -> pb.GetProcessHealthResponse:
        who = call.principal()
        org_path = _org(request.org_path, "org_path") or who.org
        granularity = enum_name(types_pb2.PeriodGranularity, request.period.granularity)
        if granularity not in ("", "WEEK"):
            raise InvalidArgument.field("period.granularity", "process health is weekly: WEEK")
        access.require_process_view(who, org_path)
        at = now()
        async with self.read(who) as uow:
            t = await health.tuning(uow)
            day = (
                optional_date(request.period.start_date, "period.start_date") or at.astimezone(t.zone).date()
            )
            report = await health.report(uow, org_path, day, at)
        return pb.GetProcessHealthResponse(report=report)

    async def ListProcessAnomalies(
        self, request: pb.ListProcessAnomaliesRequest, context: Ctx
    ) -> pb.ListProcessAnomaliesResponse:
        who = call.principal()
        bounded_lists(request)
        org_path = _org(request.scope.org_path, "scope.org_path")
        if request.scope.user_ids:
            raise InvalidArgument.field("scope.user_ids", "anomalies are per team: give scope.org_path only")
        access.require_process_view(who, org_path or who.org)
        metrics: list[str] = []
        for i, m in enumerate(request.metrics):
            name = enum_name(process_health_pb2.ProcessMetric, m)
            if not name or name.startswith("UNKNOWN_"):
                raise InvalidArgument.field(f"metrics[{i}]", "a process metric")
            metrics.append(name)
        after = from_ts(request.detect_time_after, "detect_time_after")
        page = PageRequest.parse(request.page_size, request.page_token)
        query = query_key("ListProcessAnomalies", org_path, sorted(metrics), request.adverse_only, after)
        async with self.read(who) as uow:
            if after is None:
                zone = (await health.tuning(uow)).zone
                today = datetime.combine(now().astimezone(zone).date(), time(0), tzinfo=zone)
                after = today.astimezone(UTC)
            where: list[ColumnElement[bool]] = [AnomalyRow.detected_at >= after]
            if org_path:
                where.append(in_org(AnomalyRow.org_path, org_path))
            if not access.sees_all(who):
                where.append(in_org(AnomalyRow.org_path, who.org))
            if metrics:
                where.append(AnomalyRow.metric.in_(metrics))
            if request.adverse_only:
                where.append(AnomalyRow.adverse.is_(True))
            found = await Anomalies(uow).page(where, page, query)
        return pb.ListProcessAnomaliesResponse(
            anomalies=[process_health_pb2.ProcessAnomaly.FromString(r.body) for r in found.items],
            next_page_token=found.next_page_token,
        )
