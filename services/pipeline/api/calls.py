"""Forecast submissions: a rep's or manager's call and managers' adjustments (CreateForecastSubmission,
ListForecastSubmissions). Parse, one unit of work, use case, present."""

from __future__ import annotations

from sqlalchemy import ColumnElement

from kit.errors import InvalidArgument, NotFound
from kit.grpc import context as call
from kit.resources import PageRequest, UnitOfWork, query_key
from salesops.pipeline.v1 import forecast_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import calls, coaching
from services.pipeline.accuracy import local_today
from services.pipeline.api.base import ApiBase, Ctx
from services.pipeline.convert import bounded_lists, enum_name, now
from services.pipeline.domain import forecast as f
from services.pipeline.forecasting import check_scope
from services.pipeline.repositories.calls import Submissions
from services.pipeline.repositories.deals import in_org
from services.pipeline.store_calls import SubmissionRow


async def present_rows(uow: UnitOfWork, rows: list[SubmissionRow]) -> list[forecast_pb2.ForecastSubmission]:
    """Submissions with their latest flag and audit history (two queries for the whole page)."""
    repo = Submissions(uow)
    latest = await repo.latest_ids(rows)
    history = await repo.changes([r.submission_id for r in rows])
    return [calls.present_submission(r, r.submission_id in latest, history[r.submission_id]) for r in rows]


class CallsApi(ApiBase):
    async def CreateForecastSubmission(
        self, request: pb.CreateForecastSubmissionRequest, context: Ctx
    ) -> pb.CreateForecastSubmissionResponse:
        who = call.principal()
        at = now()

        async def work(uow: UnitOfWork) -> forecast_pb2.ForecastSubmission:
            today = await local_today(uow, at)
            row = await calls.create_submission(uow, who, request.submission, at, today)
            if not calls.can_view_submission(who, row):  # a replay of someone else's id
                raise NotFound(Submissions.resource, row.submission_id)
            return (await present_rows(uow, [row]))[0]

        return pb.CreateForecastSubmissionResponse(submission=await self.write(who, work))

    async def GetForecastCoachingView(
        self, request: pb.GetForecastCoachingViewRequest, context: Ctx
    ) -> pb.GetForecastCoachingViewResponse:
        who = call.principal()
        granularity, start, _ = calls.period_of(request.period)
        if len(request.user_id) > 128:
            raise InvalidArgument.field("user_id", "at most 128 characters")
        at = now()

        async def work(uow: UnitOfWork) -> forecast_pb2.ForecastCoachingView:
            return await coaching.coaching_view(uow, who, request.user_id, granularity, start, at)

        # Written: the view is recorded, so a new rep's submission can quote it.
        return pb.GetForecastCoachingViewResponse(coaching_view=await self.write(who, work))

    async def ListForecastSubmissions(
        self, request: pb.ListForecastSubmissionsRequest, context: Ctx
    ) -> pb.ListForecastSubmissionsResponse:
        who = call.principal()
        bounded_lists(request)
        page = PageRequest.parse(request.page_size, request.page_token)
        S = SubmissionRow
        where: list[ColumnElement[bool]] = [calls.submissions_visible_to(who)]
        if request.period.granularity or request.period.HasField("start_date"):
            granularity, start, _ = calls.period_of(request.period)
            where += [S.granularity == granularity.value, S.period_start == start]
        org = request.scope.org_path.strip("/")
        check_scope(who, org)
        if org:
            where.append(in_org(S.org_path, org))
        if request.scope.user_ids:
            where.append(S.subject_key.in_(list(request.scope.user_ids)))
        level = enum_name(types_pb2.OrgLevel, request.level)
        if level:
            if level not in f.Level.__members__:
                raise InvalidArgument.field("level", "an org level")
            where.append(S.level == level)
        query = query_key(
            "ListForecastSubmissions", request.period, request.scope, request.level, request.latest_only
        )
        async with self.read(who) as uow:
            found = await Submissions(uow).page(where, request.latest_only, page, query)
            items = await present_rows(uow, found.items)
        return pb.ListForecastSubmissionsResponse(submissions=items, next_page_token=found.next_page_token)
