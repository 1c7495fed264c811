"""Deals: standard methods, stage moves and their dry run, gate reviews, change history."""

from __future__ import annotations

from kit.auth import Principal
from kit.errors import InvalidArgument
from kit.grpc import context as call
from kit.resources import PageRequest, Sort, UnitOfWork, present_all, query_key
from salesops.pipeline.v1 import deal_pb2, types_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import approval_entry, deals, discipline, moves, stock_check
from services.pipeline.api.base import ApiBase, Ctx
from services.pipeline.convert import bounded_lists, enum_name, from_ts, now, optional_date
from services.pipeline.domain import history
from services.pipeline.presenters import CHANGES, DEALS, REVIEWS, DealView
from services.pipeline.repositories.deals import ORDERS, Deals, DealSearch
from services.pipeline.repositories.history import DealChanges, GateReviews
from services.pipeline.store import DealRow

DEFAULT_ORDER = "update_time desc"
# The history holds the tracked fields and the freeze / thaw rows of update discipline.
CHANGE_FIELDS: tuple[str, ...] = (*history.TRACKED, discipline.FROZEN_FIELD)


def deal_search(who: Principal, f: pb.DealFilter) -> DealSearch:
    """ListDeals' filter, checked and normalised (a bad value is INVALID_ARGUMENT on its field)."""
    bounded_lists(f, "filter")
    search = DealSearch(
        owners=[who.user_id if o == "me" else o for o in f.owner_user_ids],
        org_path=f.org_path,
        stage_ids=list(f.stage_ids),
        categories=[enum_name(types_pb2.ForecastCategory, c) for c in f.forecast_categories],
        close_from=optional_date(f.close_date_from, "filter.close_date_from"),
        close_to=optional_date(f.close_date_to, "filter.close_date_to"),
        customer_id=f.customer_id,
        lead_id=f.lead_id,
        industry=f.industry,
        updated_after=from_ts(f.update_time_after, "filter.update_time_after"),
        query=f.query.strip(),
    )
    if f.statuses:
        search.statuses = [enum_name(deal_pb2.DealStatus, x) for x in f.statuses]
    if f.HasField("frozen"):
        search.frozen = f.frozen
    if f.HasField("dwell_exceeded"):
        search.dwell_exceeded = f.dwell_exceeded
    return search


def deal_order(order_by: str) -> Sort:
    key, _, direction = (order_by or DEFAULT_ORDER).strip().partition(" ")
    if key not in ORDERS or direction.strip() not in ("", "desc", "asc"):
        raise InvalidArgument.field("order_by", f"one of {', '.join(ORDERS)}, optionally followed by ' desc'")
    return Sort(ORDERS[key], descending=direction.strip() == "desc")


class DealsApi(ApiBase):
    def _present(self, who: Principal, row: DealRow, view: int = pb.DEAL_VIEW_FULL) -> deal_pb2.Deal:
        return DEALS.present(who, DealView(row, full=view != pb.DEAL_VIEW_BASIC))

    async def CreateDeal(self, request: pb.CreateDealRequest, context: Ctx) -> pb.CreateDealResponse:
        who = call.principal()
        origin = "PARTNER_API" if who.is_service else "MANUAL"

        async def work(uow: UnitOfWork) -> deal_pb2.Deal:
            row = await deals.create_deal(uow, who, request.deal, now(), origin=origin)
            return self._present(who, row)

        if request.validate_only:
            # The whole use case runs, gates included, in a unit of work that never commits.
            async with self.read(who) as uow:
                return pb.CreateDealResponse(deal=await work(_Unsent(uow)))
        created = await self.write(who, work)
        # After the commit, outside the transaction: a missing answer is UNKNOWN, never a failed create.
        return pb.CreateDealResponse(deal=created, stock_check=await stock_check.check_deal(created))

    async def GetDeal(self, request: pb.GetDealRequest, context: Ctx) -> pb.GetDealResponse:
        who = call.principal()
        async with self.read(who, snapshot=False) as uow:  # one statement
            row = await Deals(uow).visible(who, request.deal_id)
            return pb.GetDealResponse(deal=self._present(who, row, request.view or pb.DEAL_VIEW_FULL))

    async def ListDeals(self, request: pb.ListDealsRequest, context: Ctx) -> pb.ListDealsResponse:
        who = call.principal()
        page = PageRequest.parse(request.page_size, request.page_token)
        search = deal_search(who, request.filter)
        order = deal_order(request.order_by)
        query = query_key(
            "ListDeals", who.user_id, request.filter, (request.order_by or DEFAULT_ORDER).strip()
        )
        async with self.read(who, snapshot=False) as uow:  # the page and its total: one statement
            found = await Deals(uow).search(who, search, order, page, query)
        view = request.view or pb.DEAL_VIEW_BASIC
        return pb.ListDealsResponse(
            deals=[self._present(who, r, view) for r in found.items],
            next_page_token=found.next_page_token,
            total_size=found.total_size or 0,
        )

    async def UpdateDeal(self, request: pb.UpdateDealRequest, context: Ctx) -> pb.UpdateDealResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> deal_pb2.Deal:
            row = await deals.update_deal(uow, who, request.deal, request.update_mask, now())
            return self._present(who, row)

        if request.validate_only:
            async with self.read(who) as uow:
                return pb.UpdateDealResponse(deal=await work(_Unsent(uow)))
        return pb.UpdateDealResponse(deal=await self.write(who, work))

    async def MoveStage(self, request: pb.MoveStageRequest, context: Ctx) -> pb.MoveStageResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> tuple[moves.Moved, deal_pb2.Deal, list[str]]:
            moved = await moves.move_stage(
                uow, who, request.deal_id, request.to_stage_id, request.etag, request.note, now()
            )
            started: list[str] = []
            if (
                moved.refused is None
                and moved.review is not None
                and moved.row.stage_id == request.to_stage_id
            ):
                # The entry consumer starts them after the commit under these ids.
                started = await approval_entry.entry_approval_ids(
                    uow, moved.row.deal_id, moved.row.stage_id, moved.review.review_id
                )
            return moved, self._present(who, moved.row), started

        moved, deal, started = await self.write(who, work)
        if moved.refused is not None:
            raise moved.refused  # after the commit: the refused review is on record
        return pb.MoveStageResponse(deal=deal, gate_review=moved.review, started_approval_ids=started)

    async def CheckGate(self, request: pb.CheckGateRequest, context: Ctx) -> pb.CheckGateResponse:
        who = call.principal()
        async with self.read(who) as uow:
            review = await moves.check_gate(
                uow, who, request.deal_id, request.to_stage_id, request.to_won, now()
            )
        return pb.CheckGateResponse(gate_review=review)

    async def ListGateReviews(
        self, request: pb.ListGateReviewsRequest, context: Ctx
    ) -> pb.ListGateReviewsResponse:
        who = call.principal()
        page = PageRequest.parse(request.page_size, request.page_token)
        outcome = enum_name(deal_pb2.GateOutcome, request.outcome)
        query = query_key("ListGateReviews", request.deal_id, outcome)
        async with self.read(who) as uow:
            await Deals(uow).visible(who, request.deal_id)
            found = await GateReviews(uow).page(request.deal_id, outcome, page, query)
        return pb.ListGateReviewsResponse(
            gate_reviews=present_all(REVIEWS, who, found.items), next_page_token=found.next_page_token
        )

    async def ListDealChanges(
        self, request: pb.ListDealChangesRequest, context: Ctx
    ) -> pb.ListDealChangesResponse:
        who = call.principal()
        bounded_lists(request)
        page = PageRequest.parse(request.page_size, request.page_token)
        unknown = [f for f in request.fields if f not in CHANGE_FIELDS]
        if unknown:
            raise InvalidArgument.field(
                "fields", f"unknown field(s) {', '.join(unknown)}; one of {', '.join(CHANGE_FIELDS)}"
            )
        before = from_ts(request.change_time_before, "change_time_before")
        query = query_key(
            "ListDealChanges", request.deal_id, sorted(request.fields), request.change_time_before
        )
        async with self.read(who) as uow:
            await Deals(uow).visible(who, request.deal_id)
            found = await DealChanges(uow).page(request.deal_id, list(request.fields), before, page, query)
        return pb.ListDealChangesResponse(
            changes=present_all(CHANGES, who, found.items), next_page_token=found.next_page_token
        )


def _Unsent(uow: UnitOfWork) -> UnitOfWork:
    """A read unit of work made writable for a validate_only run: it is never committed (read() rolls back)."""
    return UnitOfWork(uow.session, uow.tenant, source=uow.source, outbox=uow.outbox, tokens=uow.tokens)
