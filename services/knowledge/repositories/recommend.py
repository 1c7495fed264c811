"""Candidate cards for a recommendation: ids and how they match, without loading their bodies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Exists, exists, literal, select

from kit.auth import Principal
from kit.resources import UnitOfWork
from salesops.knowledge.v1.knowledge_service_pb2 import SopCardFilter
from services.knowledge.repositories.cards import INDUSTRY, STAGE, Cards
from services.knowledge.store import SopCardFacetRow, SopCardRow


@dataclass(frozen=True)
class CandidateCard:
    card_id: str
    industry_named: bool  # lists the industry asked for (else: for every industry)
    stage_named: bool  # lists the stage asked for (else: for every stage)
    for_leads: bool


def _names(facet: str, value: str) -> Exists:
    return exists().where(
        SopCardFacetRow.card_id == SopCardRow.card_id,
        SopCardFacetRow.facet == facet,
        SopCardFacetRow.value == value,
    )


class CandidateCards:
    def __init__(self, uow: UnitOfWork) -> None:
        self.session = uow.session

    async def find(self, who: Principal, f: SopCardFilter) -> list[CandidateCard]:
        """The cards `who` may read matching `f` (Cards.matching), with whether each names industry / stage."""
        industry = _names(INDUSTRY, f.industry) if f.industry else None
        stage = _names(STAGE, f.stage_id) if f.stage_id else None
        rows = await self.session.execute(
            select(
                SopCardRow.card_id,
                industry if industry is not None else literal(False),
                stage if stage is not None else literal(False),
                SopCardRow.applies_to_leads,
            )
            .where(Cards.visible_to(who), *Cards.matching(who, f))
            .order_by(SopCardRow.card_id)
        )
        return [CandidateCard(str(c), bool(i), bool(s), bool(leads)) for c, i, s, leads in rows]

    async def rows(self, card_ids: Sequence[str]) -> dict[str, SopCardRow]:
        """The picked cards, whole."""
        if not card_ids:
            return {}
        found = await self.session.scalars(select(SopCardRow).where(SopCardRow.card_id.in_(list(card_ids))))
        return {row.card_id: row for row in found}
