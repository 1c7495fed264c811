"""Bilingual search across the cards the caller may see."""

from __future__ import annotations

from kit.grpc import context as call
from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from services.knowledge import search
from services.knowledge.api.base import ApiBase, Ctx
from services.knowledge.presenters import CARDS


class SearchApi(ApiBase):
    async def SearchSopCards(
        self, request: pb.SearchSopCardsRequest, context: Ctx
    ) -> pb.SearchSopCardsResponse:
        who = call.principal()
        async with self.read(who) as uow:
            results = await search.search_cards(uow, who, request)
        return pb.SearchSopCardsResponse(
            results=[
                pb.SopCardSearchResult(card=CARDS.present(who, f.row), score=f.score, highlights=f.highlights)
                for f in results.found
            ],
            next_page_token=results.next_page_token,
            total_size=results.total_size,
        )
