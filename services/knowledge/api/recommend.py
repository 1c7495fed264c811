"""RecommendSopCards: parse, one unit of work (it records impressions), present."""

from __future__ import annotations

from datetime import UTC, datetime

from kit.auth import Principal
from kit.grpc import context as call
from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1 import usage_pb2
from services.knowledge import recommend
from services.knowledge.api.base import ApiBase, Ctx
from services.knowledge.domain import recommend as rules
from services.knowledge.domain.lift import Lift
from services.knowledge.presenters import CARDS


def present_lift(lift: Lift, industry: str, stage_id: str) -> usage_pb2.WinRateLift:
    out = usage_pb2.WinRateLift(
        industry=industry,
        stage_id=stage_id,
        used_deals=lift.used_deals,
        used_won=lift.used_won,
        comparable_deals=lift.comparable_deals,
        comparable_won=lift.comparable_won,
        enough_data=lift.enough_data,
        min_sample=lift.min_sample,
    )
    if lift.enough_data and lift.used and lift.comparable and lift.lift:
        out.used_win_rate, out.used_low, out.used_high = lift.used.rate, lift.used.low, lift.used.high
        out.comparable_win_rate = lift.comparable.rate
        out.comparable_low, out.comparable_high = lift.comparable.low, lift.comparable.high
        out.lift_pp, out.lift_low_pp, out.lift_high_pp = (
            round(lift.lift.rate * 100, 2),
            round(lift.lift.low * 100, 2),
            round(lift.lift.high * 100, 2),
        )
    return out


class RecommendationPresenter:
    """A shown card as the viewer sees it (CARDS decides the card), its reasons as data and text."""

    def present(
        self, viewer: Principal, shown: recommend.Shown, industry: str, stage_id: str
    ) -> usage_pb2.Recommendation:
        out = usage_pb2.Recommendation(
            recommendation_id=shown.recommendation_id,
            rank=shown.pick.rank,
            score=shown.pick.score,
            card=CARDS.present(viewer, shown.row),
        )
        for reason in shown.pick.reasons:
            r = out.reasons.add(
                kind=int(reason.kind),  # type: ignore[arg-type]
                text=rules.reason_text(reason, shown.row.language_code),
                value=round(reason.value, 2),
            )
            if reason.lift is not None:
                r.lift.CopyFrom(present_lift(reason.lift, industry, stage_id))
        return out


RECOMMENDATIONS = RecommendationPresenter()


class RecommendApi(ApiBase):
    async def RecommendSopCards(
        self, request: pb.RecommendSopCardsRequest, context: Ctx
    ) -> pb.RecommendSopCardsResponse:
        who = call.principal()
        now = datetime.now(UTC)
        shown = await self.write(who, lambda uow: recommend.recommend_cards(uow, who, request, now))
        return pb.RecommendSopCardsResponse(
            recommendations=[
                RECOMMENDATIONS.present(who, s, request.industry, request.stage_id) for s in shown
            ]
        )
