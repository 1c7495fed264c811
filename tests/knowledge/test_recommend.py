"""RecommendSopCards over real gRPC on SQLite and PostgreSQL: candidates by industry, stage and
visibility, reasons with lift from real deal events, newcomers, exploration, impressions, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
from sqlalchemy import func, select

from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1 import usage_pb2
from salesops.knowledge.v1.sop_card_pb2 import CardVisibility
from services.knowledge.store_outcomes import CardImpressionRow
from tests.knowledge.conftest import Knowledge
from tests.knowledge.helpers import card, publish
from tests.knowledge.outcome_world import T0, add_use, consumer, deal_life

K = usage_pb2.RecommendationReasonKind
PATH = ["initial_contact", "needs_confirmed", "negotiation"]
ASK = pb.RecommendSopCardsRequest(deal_id="d-open", industry="manufacturing", stage_id="negotiation")


async def library(k: Knowledge) -> None:
    await publish(k, card("c-exact", title="谈判阶段价格挽回"))
    await publish(k, card("c-industry", title="Manufacturing any stage", language_code="en", stage_ids=[]))
    await publish(k, card("c-all", title="通用开场", industries=[], stage_ids=[]))
    await publish(k, card("c-retail", title="零售谈判", industries=["retail"]))
    await publish(k, card("c-managers", title="经理专用", visibility=CardVisibility.CARD_VISIBILITY_MANAGERS))
    await publish(k, card("c-lead", title="线索首呼", stage_ids=[], applies_to_leads=True))


async def history(k: Knowledge) -> None:
    """24 closed manufacturing deals that reached negotiation: c-exact used on 12 (9 won), not on 12 (4 won).
    rep-b1 is a newcomer (first deal 10 days ago) who used c-industry 3 times this week."""
    c = consumer(k.db)
    for n in range(24):
        deal_id = f"d{n:02d}"
        if n < 12:
            await add_use(k.db, f"u{n:02d}", "c-exact", deal_id, T0 + timedelta(hours=30))
        won = n < 9 or 12 <= n < 16
        await deal_life(c, deal_id, PATH, "won" if won else "lost")
    now = datetime.now(UTC)
    await deal_life(c, "d-new", PATH[:1], "open", at=now - timedelta(days=10), owner="rep-b1")
    for n in range(3):
        await add_use(k.db, f"nb{n}", "c-industry", "d-new", now - timedelta(days=1), user="rep-b1")


async def test_top_three_with_reasons_lift_newcomers_and_exploration(knowledge: Knowledge) -> None:
    await library(knowledge)
    await history(knowledge)
    got = (await knowledge.call("RecommendSopCards", ASK, "rep-a1")).recommendations
    assert [(r.rank, r.card.card_id) for r in got] == [(1, "c-exact"), (2, "c-industry"), (3, "c-all")]
    exact, industry, explore = got
    assert [x.kind for x in exact.reasons] == [
        K.RECOMMENDATION_REASON_KIND_WIN_RATE_LIFT,
        K.RECOMMENDATION_REASON_KIND_CONTEXT_MATCH,
    ]
    lift = exact.reasons[0].lift
    assert (lift.used_deals, lift.used_won, lift.comparable_deals, lift.comparable_won) == (12, 9, 12, 4)
    assert lift.enough_data and lift.min_sample == 10
    assert (lift.industry, lift.stage_id) == ("manufacturing", "negotiation")
    assert (lift.lift_pp, lift.lift_low_pp, lift.lift_high_pp) == (41.67, 2.18, 66.97)  # 75 % vs 33 %
    assert exact.reasons[0].value == 41.67 and "使用后赢单率 75%" in exact.reasons[0].text
    assert [x.kind for x in industry.reasons] == [
        K.RECOMMENDATION_REASON_KIND_CONTEXT_MATCH,
        K.RECOMMENDATION_REASON_KIND_NEWCOMER_POPULAR,
        K.RECOMMENDATION_REASON_KIND_WIN_RATE_LIFT,
    ]
    assert (
        industry.reasons[1].value == 3
        and industry.reasons[1].text == "Most used by newcomers this week (3 uses)"
    )
    assert not industry.reasons[2].lift.enough_data and "not enough data" in industry.reasons[2].text
    assert explore.reasons[0].kind == K.RECOMMENDATION_REASON_KIND_EXPLORATION
    assert explore.reasons[0].text.startswith("探索位")
    assert exact.score > industry.score > explore.score
    # Same input, same day: the same list and ids; impressions counted once.
    again = (await knowledge.call("RecommendSopCards", ASK, "rep-a1")).recommendations
    assert [(r.recommendation_id, r.card.card_id) for r in again] == [
        (r.recommendation_id, r.card.card_id) for r in got
    ]
    async with knowledge.db.session("demo", read_only=True) as session:
        shown = await session.scalar(select(func.count()).select_from(CardImpressionRow))
    assert shown == 3


async def test_visibility_leads_skips_and_tenants(knowledge: Knowledge) -> None:
    await library(knowledge)
    many = pb.RecommendSopCardsRequest(
        deal_id="d-x", industry="manufacturing", stage_id="negotiation", max_results=10
    )
    rep = {
        r.card.card_id for r in (await knowledge.call("RecommendSopCards", many, "rep-a1")).recommendations
    }
    assert rep == {"c-exact", "c-industry", "c-all"}
    sup = {r.card.card_id for r in (await knowledge.call("RecommendSopCards", many, "sup-a")).recommendations}
    assert sup == rep | {"c-managers"}
    lead = pb.RecommendSopCardsRequest(lead_id="l-1", industry="manufacturing")
    assert [
        r.card.card_id for r in (await knowledge.call("RecommendSopCards", lead, "rep-a1")).recommendations
    ] == ["c-lead"]
    assert not (await knowledge.call("RecommendSopCards", many, "rep-a1", tenant="acme")).recommendations
    # A card the rep already used on this deal is skipped (skip_recently_used, 14 days).
    await add_use(knowledge.db, "mine", "c-exact", "d-x", datetime.now(UTC) - timedelta(days=2))
    rep = {
        r.card.card_id for r in (await knowledge.call("RecommendSopCards", many, "rep-a1")).recommendations
    }
    assert rep == {"c-industry", "c-all"}


async def test_bad_requests(knowledge: Knowledge) -> None:
    bad = [
        pb.RecommendSopCardsRequest(industry="manufacturing"),
        pb.RecommendSopCardsRequest(deal_id="d", lead_id="l"),
        pb.RecommendSopCardsRequest(deal_id="d", max_results=11),
        pb.RecommendSopCardsRequest(lead_id="l", stage_id="negotiation"),
        pb.RecommendSopCardsRequest(deal_id="d" * 65),
    ]
    for request in bad:
        await knowledge.fails(grpc.StatusCode.INVALID_ARGUMENT, "RecommendSopCards", request, "rep-a1")
