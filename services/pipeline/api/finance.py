"""Finance facts and reconciliation issues: ingest, list, read, resolve."""

from __future__ import annotations

from kit.errors import InvalidArgument
from kit.grpc import context as call
from kit.resources import PageRequest, Sort, UnitOfWork, present_all, query_key
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from salesops.pipeline.v1 import reconciliation_pb2
from services.pipeline import reconciliation
from services.pipeline.api.base import ApiBase, Ctx
from services.pipeline.convert import bounded_lists, enum_name, from_ts, now
from services.pipeline.presenters import FACTS, ISSUES
from services.pipeline.repositories.finance import (
    ISSUE_ORDERS,
    FactSearch,
    FinanceFacts,
    IssueSearch,
    ReconciliationIssues,
)

DEFAULT_ISSUE_ORDER = "detect_time desc"


def issue_order(order_by: str) -> Sort:
    key, _, direction = (order_by or DEFAULT_ISSUE_ORDER).strip().partition(" ")
    if key not in ISSUE_ORDERS or direction.strip() not in ("", "desc", "asc"):
        raise InvalidArgument.field(
            "order_by", f"one of {', '.join(ISSUE_ORDERS)}, optionally followed by ' desc'"
        )
    return Sort(ISSUE_ORDERS[key], descending=direction.strip() == "desc")


class FinanceApi(ApiBase):
    async def IngestFinanceFacts(
        self, request: pb.IngestFinanceFactsRequest, context: Ctx
    ) -> pb.IngestFinanceFactsResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> list[pb.FinanceFactResult]:
            return await reconciliation.ingest(uow, who, list(request.facts), now())

        return pb.IngestFinanceFactsResponse(results=await self.write(who, work))

    async def ListFinanceFacts(
        self, request: pb.ListFinanceFactsRequest, context: Ctx
    ) -> pb.ListFinanceFactsResponse:
        who = call.principal()
        bounded_lists(request)
        page = PageRequest.parse(request.page_size, request.page_token)
        search = FactSearch(
            deal_id=request.deal_id,
            kinds=[enum_name(reconciliation_pb2.FinanceFactKind, k) for k in request.kinds],
            source_system=request.source_system,
            occur_from=from_ts(request.occur_time_from, "occur_time_from"),
            occur_to=from_ts(request.occur_time_to, "occur_time_to"),
        )
        if request.match_status:
            search.matched = request.match_status == reconciliation_pb2.FACT_MATCH_STATUS_MATCHED
        query = query_key(
            "ListFinanceFacts", who.user_id, request.deal_id, list(request.kinds), request.match_status,
            request.source_system, request.occur_time_from, request.occur_time_to,
        )  # fmt: skip
        async with self.read(who) as uow:
            found = await FinanceFacts(uow).page(who, search, page, query)
        return pb.ListFinanceFactsResponse(
            facts=present_all(FACTS, who, found.items), next_page_token=found.next_page_token
        )

    async def ListReconciliationIssues(
        self, request: pb.ListReconciliationIssuesRequest, context: Ctx
    ) -> pb.ListReconciliationIssuesResponse:
        who = call.principal()
        f = request.filter
        bounded_lists(f, "filter")
        page = PageRequest.parse(request.page_size, request.page_token)
        search = IssueSearch(
            org_path=f.scope.org_path,
            owners=list(f.scope.user_ids),
            deal_id=f.deal_id,
            kinds=[enum_name(reconciliation_pb2.ReconciliationIssueKind, k) for k in f.kinds],
            detect_from=from_ts(f.detect_time_from, "filter.detect_time_from"),
            detect_to=from_ts(f.detect_time_to, "filter.detect_time_to"),
        )
        if f.states:
            search.states = [enum_name(reconciliation_pb2.ReconciliationIssueState, s) for s in f.states]
        order = issue_order(request.order_by)
        query = query_key(
            "ListReconciliationIssues", who.user_id, f, (request.order_by or DEFAULT_ISSUE_ORDER).strip()
        )
        async with self.read(who) as uow:
            found = await ReconciliationIssues(uow).page(who, search, order, page, query)
        return pb.ListReconciliationIssuesResponse(
            issues=present_all(ISSUES, who, found.items),
            next_page_token=found.next_page_token,
            total_size=found.total_size or 0,
        )

    async def GetReconciliationIssue(
        self, request: pb.GetReconciliationIssueRequest, context: Ctx
    ) -> pb.GetReconciliationIssueResponse:
        who = call.principal()
        async with self.read(who) as uow:
            row = await ReconciliationIssues(uow).visible(who, request.issue_id)
        return pb.GetReconciliationIssueResponse(issue=ISSUES.present(who, row))

    async def ResolveReconciliationIssue(
        self, request: pb.ResolveReconciliationIssueRequest, context: Ctx
    ) -> pb.ResolveReconciliationIssueResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> reconciliation_pb2.ReconciliationIssue:
            return ISSUES.present(who, await reconciliation.resolve(uow, who, request, now()))

        return pb.ResolveReconciliationIssueResponse(issue=await self.write(who, work))
