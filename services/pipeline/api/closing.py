"""Closing deals and the weekly update: MarkWon (gated), MarkLost, ReopenDeal, ConfirmDeal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from kit.auth import Principal
from kit.grpc import context as call
from kit.resources import UnitOfWork
from salesops.pipeline.v1 import deal_pb2
from salesops.pipeline.v1 import pipeline_service_pb2 as pb
from services.pipeline import closing
from services.pipeline.api.base import ApiBase, Ctx
from services.pipeline.convert import now
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
