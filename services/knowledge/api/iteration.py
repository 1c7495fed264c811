"""Monthly iteration reports: run on demand, apply, get, list; and what a viewer sees of one."""

from __future__ import annotations

from kit.auth import Principal
from kit.errors import InvalidArgument, PermissionDenied
from kit.grpc import context as call
from kit.resources import PageRequest, UnitOfWork, query_key
from salesops.knowledge.v1 import iteration_pb2 as it
from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from services.knowledge import access, cards, iteration
from services.knowledge.api.base import ApiBase, Ctx
from services.knowledge.presenters import ts
from services.knowledge.repositories.iteration import IterationReports
from services.knowledge.store_iteration import IterationReportRow


class ReportPresenter:
    """Supervisors and above see whole reports; lists leave the per-card rows out (the contract)."""

    def present(self, viewer: Principal, row: IterationReportRow, *, rows: bool = True) -> it.IterationReport:
        report = it.IterationReport.FromString(row.body)
        report.report_id, report.state = row.report_id, row.state  # type: ignore[assignment]
        report.month.year, report.month.month, report.month.day = row.year, row.month, 0
        if row.completed_at is not None:
            report.complete_time.CopyFrom(ts(row.completed_at))
        if row.applied_at is not None:
            report.apply_time.CopyFrom(ts(row.applied_at))
            report.applied_by = row.applied_by
        if not rows:
            report.ClearField("cards")
        return report


REPORTS = ReportPresenter()


def require_reader(who: Principal) -> None:
    if not (who.is_admin or who.is_service or access.is_manager(who)):
        raise PermissionDenied("iteration reports are for supervisors and above", reason="MANAGERS_ONLY")


class IterationApi(ApiBase):
    async def RunMonthlyIteration(
        self, request: pb.RunMonthlyIterationRequest, context: Ctx
    ) -> pb.RunMonthlyIterationResponse:
        who = call.principal()
        year, month = request.month.year, request.month.month

        async def work(uow: UnitOfWork) -> it.IterationReport:
            row = await iteration.run(uow, who, year, month, request.dry_run, cards.now())
            return REPORTS.present(who, row)

        return pb.RunMonthlyIterationResponse(report=await self.write(who, work))

    async def ApplyIterationReport(
        self, request: pb.ApplyIterationReportRequest, context: Ctx
    ) -> pb.ApplyIterationReportResponse:
        who = call.principal()
        if not request.report_id:
            raise InvalidArgument.field("report_id", "required")

        async def work(uow: UnitOfWork) -> it.IterationReport:
            row = await iteration.apply(uow, who, request.report_id, request.excluded_card_ids, cards.now())
            return REPORTS.present(who, row)

        return pb.ApplyIterationReportResponse(report=await self.write(who, work))

    async def GetIterationReport(
        self, request: pb.GetIterationReportRequest, context: Ctx
    ) -> pb.GetIterationReportResponse:
        who = call.principal()
        require_reader(who)
        if not request.report_id:
            raise InvalidArgument.field("report_id", "required")
        async with self.read(who) as uow:
            row = await IterationReports(uow).get(request.report_id)
            return pb.GetIterationReportResponse(report=REPORTS.present(who, row))

    async def ListIterationReports(
        self, request: pb.ListIterationReportsRequest, context: Ctx
    ) -> pb.ListIterationReportsResponse:
        who = call.principal()
        require_reader(who)
        if request.year < 0:
            raise InvalidArgument.field("year", "a year, or 0 for all")
        page = PageRequest.parse(request.page_size, request.page_token, default=12, maximum=100)
        async with self.read(who) as uow:
            found = await IterationReports(uow).page(
                request.year, page, query_key("ListIterationReports", request.year)
            )
        return pb.ListIterationReportsResponse(
            reports=[REPORTS.present(who, r, rows=False) for r in found.items],
            next_page_token=found.next_page_token,
        )
