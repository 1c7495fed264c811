"""Closing deals and the weekly update: MarkWon (gated), MarkLost, ReopenDeal, ConfirmDeal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kit.auth import Principal
from kit.grpc import context as call
from kit.resources import UnitOfWork
from salesops.common.v1.types_pb2 import Money
from salesops.pipeline.v1 import deal_pb2, stage_model_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import closing, lost_reasons
from services.pipeline.api.base import ApiBase, Ctx
from services.pipeline.convert import bounded_lists, enum_value, now, optional_date
from services.pipeline.moves import Moved
from services.pipeline.presenters import DEALS, DealView
from services.pipeline.store import DealRow


class ClosingApi(ApiBase):
    async def _changed(
        self, who: Principal, change: Callable[[UnitOfWork], Awaitable[DealRow]]
    ) -> deal_pb2.Deal:
        async def work(uow: UnitOfWork) -> deal_pb2.Deal:
            return DEALS.present(who, DealView(await change(uow)))

        return await self.write(who, work)

    async def MarkWon(self, request: pb.MarkWonRequest, context: Ctx) -> pb.MarkWonResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> tuple[Moved, deal_pb2.Deal]:
            moved = await closing.mark_won(uow, who, request, now())
            return moved, DEALS.present(who, DealView(moved.row))

        moved, deal = await self.write(who, work)
        if moved.refused is not None:
            raise moved.refused  # after the commit: the refused review is on record
        return pb.MarkWonResponse(deal=deal, gate_review=moved.review)

    async def MarkLost(self, request: pb.MarkLostRequest, context: Ctx) -> pb.MarkLostResponse:
        who = call.principal()
        return pb.MarkLostResponse(
            deal=await self._changed(who, lambda uow: closing.mark_lost(uow, who, request, now()))
        )

    async def ReopenDeal(self, request: pb.ReopenDealRequest, context: Ctx) -> pb.ReopenDealResponse:
        who = call.principal()
        deal = await self._changed(who, lambda uow: closing.reopen_deal(uow, who, request, now()))
        return pb.ReopenDealResponse(deal=deal)

    async def ConfirmDeal(self, request: pb.ConfirmDealRequest, context: Ctx) -> pb.ConfirmDealResponse:
        who = call.principal()
        deal = await self._changed(who, lambda uow: closing.confirm_deal(uow, who, request, now()))
        return pb.ConfirmDealResponse(deal=deal)

    async def SummarizeLostReasons(
        self, request: pb.SummarizeLostReasonsRequest, context: Ctx
    ) -> pb.SummarizeLostReasonsResponse:
        who = call.principal()
        bounded_lists(request)
        async with self.read(who) as uow:
            found = await lost_reasons.summarize(
                uow,
                who,
                org_path=request.scope.org_path,
                user_ids=list(request.scope.user_ids),
                lost_from=optional_date(request.lost_from, "lost_from"),
                lost_to=optional_date(request.lost_to, "lost_to"),
                stage_ids=list(request.stage_ids),
                today=now().date(),
            )
        return present_lost(found)


def present_lost(found: lost_reasons.Summary) -> pb.SummarizeLostReasonsResponse:
    """Counts only: the caller's scope was applied in SQL."""
    out = pb.SummarizeLostReasonsResponse(
        lost_deal_count=found.total, lost_amount=Money(amount_minor=found.amount, currency=found.currency)
    )
    for r in found.reasons:
        out.reasons.add(
            category=enum_value(stage_model_pb2.LostReasonCategory, r.category),
            reason_code=r.code,
            count=r.count,
            share=r.count / found.total if found.total else 0.0,
            amount=Money(amount_minor=r.amount, currency=found.currency),
        )
    for c in found.competitors:
        out.competitors.add(
            competitor=c.code, count=c.count, amount=Money(amount_minor=c.amount, currency=found.currency)
        )
    return out
