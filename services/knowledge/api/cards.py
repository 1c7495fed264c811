"""SOP cards: standard methods, the review lifecycle, versions and status history."""

from __future__ import annotations

from kit.errors import InvalidArgument
from kit.grpc import context as call
from kit.resources import PageRequest, UnitOfWork, present_all, query_key
from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1.sop_card_pb2 import SopCard, SopCardVersion
from services.knowledge import access, card_stats, cards
from services.knowledge.api.base import ApiBase, Ctx
from services.knowledge.knowledge_settings import STORE
from services.knowledge.presenters import CARDS, STATUS_CHANGES, VERSIONS, present_stats
from services.knowledge.repositories.cards import ORDERS, USAGE_ORDERS, Cards, CardVersions, StatusChanges
from services.knowledge.repositories.usage_days import window_start


class CardsApi(ApiBase):
    async def CreateSopCard(self, request: pb.CreateSopCardRequest, context: Ctx) -> pb.CreateSopCardResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> SopCard:
            return CARDS.present(who, await cards.create_card(uow, who, request.card, cards.now()))

        return pb.CreateSopCardResponse(card=await self.write(who, work))

    async def GetSopCard(self, request: pb.GetSopCardRequest, context: Ctx) -> pb.GetSopCardResponse:
        who = call.principal()
        async with self.read(who) as uow:
            row, _ = await cards.visible(uow, who, request.card_id)
            stats = await card_stats.stats_of(uow, [row.card_id], cards.now())
        card = CARDS.present(who, row)
        card.stats.CopyFrom(present_stats(stats[row.card_id]))
        return pb.GetSopCardResponse(card=card)

    async def ListSopCards(self, request: pb.ListSopCardsRequest, context: Ctx) -> pb.ListSopCardsResponse:
        who = call.principal()
        order_by = " ".join(request.order_by.split()).lower()
        if order_by not in ORDERS and order_by not in USAGE_ORDERS:
            orders = [o for o in ORDERS if o] + list(USAGE_ORDERS)
            raise InvalidArgument.field("order_by", f"one of {', '.join(repr(o) for o in orders)}")
        page = PageRequest.parse(request.page_size, request.page_token)
        query = query_key(
            "ListSopCards", who.user_id, order_by, request.filter.SerializeToString(deterministic=True)
        )
        now = cards.now()
        async with self.read(who) as uow:
            if order_by in USAGE_ORDERS:
                half = (await STORE.get(uow)).iteration.partly_counts_half_negative
                since = window_start(now)
                found = await Cards(uow).usage_page(who, request.filter, order_by, since, half, page, query)
            else:
                found = await Cards(uow).page(who, request.filter, order_by, page, query)
            stats = await card_stats.stats_of(uow, [r.card_id for r in found.items], now)
        listed = present_all(CARDS, who, found.items)
        for card in listed:
            card.stats.CopyFrom(present_stats(stats[card.card_id]))
        return pb.ListSopCardsResponse(
            cards=listed, next_page_token=found.next_page_token, total_size=found.total_size or 0
        )

    async def UpdateSopCard(self, request: pb.UpdateSopCardRequest, context: Ctx) -> pb.UpdateSopCardResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> SopCard:
            row = await cards.update_card(uow, who, request.card, request.update_mask, cards.now())
            return CARDS.present(who, row)

        return pb.UpdateSopCardResponse(card=await self.write(who, work))

    async def DeleteSopCard(self, request: pb.DeleteSopCardRequest, context: Ctx) -> pb.DeleteSopCardResponse:
        who = call.principal()

        async def work(uow: UnitOfWork) -> None:
            await cards.delete_card(uow, who, request.card_id, request.etag)

        await self.write(who, work)
        return pb.DeleteSopCardResponse()

    async def _move(
        self, action: str, card_id: str, reason: str, etag: str
    ) -> tuple[SopCard, SopCardVersion]:
        who = call.principal()

        async def work(uow: UnitOfWork) -> tuple[SopCard, SopCardVersion]:
            row, version = await cards.change_status(uow, who, action, card_id, reason, etag, cards.now())
            frozen = VERSIONS.present(who, version) if version is not None else SopCardVersion()
            return CARDS.present(who, row), frozen

        return await self.write(who, work)

    async def SubmitSopCardForReview(
        self, request: pb.SubmitSopCardForReviewRequest, context: Ctx
    ) -> pb.SubmitSopCardForReviewResponse:
        card, _ = await self._move("submit", request.card_id, request.note, request.etag)
        return pb.SubmitSopCardForReviewResponse(card=card)

    async def PublishSopCard(
        self, request: pb.PublishSopCardRequest, context: Ctx
    ) -> pb.PublishSopCardResponse:
        card, version = await self._move("publish", request.card_id, request.change_note, request.etag)
        return pb.PublishSopCardResponse(card=card, version=version)

    async def RetireSopCard(self, request: pb.RetireSopCardRequest, context: Ctx) -> pb.RetireSopCardResponse:
        card, _ = await self._move("retire", request.card_id, request.reason, request.etag)
        return pb.RetireSopCardResponse(card=card)

    async def ReturnSopCardToReview(
        self, request: pb.ReturnSopCardToReviewRequest, context: Ctx
    ) -> pb.ReturnSopCardToReviewResponse:
        card, _ = await self._move("return_to_review", request.card_id, request.reason, request.etag)
        return pb.ReturnSopCardToReviewResponse(card=card)

    async def ReturnSopCardToDraft(
        self, request: pb.ReturnSopCardToDraftRequest, context: Ctx
    ) -> pb.ReturnSopCardToDraftResponse:
        card, _ = await self._move("return_to_draft", request.card_id, request.comment, request.etag)
        return pb.ReturnSopCardToDraftResponse(card=card)

    async def ListSopCardVersions(
        self, request: pb.ListSopCardVersionsRequest, context: Ctx
    ) -> pb.ListSopCardVersionsResponse:
        who = call.principal()
        page = PageRequest.parse(request.page_size, request.page_token)
        async with self.read(who) as uow:
            await cards.visible(uow, who, request.card_id)
            found = await CardVersions(uow).page(
                request.card_id, page, query_key("ListSopCardVersions", request.card_id)
            )
        return pb.ListSopCardVersionsResponse(
            versions=present_all(VERSIONS, who, found.items), next_page_token=found.next_page_token
        )

    async def GetSopCardVersion(
        self, request: pb.GetSopCardVersionRequest, context: Ctx
    ) -> pb.GetSopCardVersionResponse:
        who = call.principal()
        if request.version < 1:
            raise InvalidArgument.field("version", "a published version number, from 1")
        async with self.read(who) as uow:
            await cards.visible(uow, who, request.card_id)
            row = await CardVersions(uow).get(request.card_id, request.version)
        return pb.GetSopCardVersionResponse(version=VERSIONS.present(who, row))

    async def ListSopCardStatusChanges(
        self, request: pb.ListSopCardStatusChangesRequest, context: Ctx
    ) -> pb.ListSopCardStatusChangesResponse:
        who = call.principal()
        page = PageRequest.parse(request.page_size, request.page_token)
        async with self.read(who) as uow:
            row, orgs = await cards.visible(uow, who, request.card_id)
            access.require_manage(who, row, orgs)
            found = await StatusChanges(uow).page(
                request.card_id, page, query_key("ListSopCardStatusChanges", request.card_id)
            )
        return pb.ListSopCardStatusChangesResponse(
            status_changes=present_all(STATUS_CHANGES, who, found.items),
            next_page_token=found.next_page_token,
        )
