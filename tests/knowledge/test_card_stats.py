"""SopCardStats on GetSopCard / ListSopCards and the usage orders of ListSopCards, over gRPC on SQLite
and PostgreSQL: uses and feedback through the API (the maintained day counters), a use older than the
30-day window, pooled lift from real deal events, keyset pages through ties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1.usage_pb2 import CardFeedback, CardUse, FeedbackRating, FeedbackReasonCategory
from tests.knowledge.conftest import Knowledge
from tests.knowledge.helpers import card, publish
from tests.knowledge.outcome_world import add_use, consumer, deal_life

R = FeedbackRating
WRONG = FeedbackReasonCategory.FEEDBACK_REASON_CATEGORY_WRONG_CONTEXT
PATH = ["initial_contact", "needs_confirmed", "negotiation"]


async def use(k: Knowledge, use_id: str, card_id: str, deal: str, user: str = "rep-a1") -> None:
    u = CardUse(use_id=use_id, deal_id=deal, industry="manufacturing", stage_id="negotiation")
    await k.call("RecordSopCardUse", pb.RecordSopCardUseRequest(card_id=card_id, use=u), user=user)


async def rate(k: Knowledge, use_id: str, rating: int, user: str = "rep-a1") -> None:
    fb = CardFeedback(rating=rating)  # type: ignore[arg-type]
    if rating != R.FEEDBACK_RATING_FULLY:
        fb.reason_category, fb.reason = WRONG, "不适合这个客户"
    await k.call("SubmitCardFeedback", pb.SubmitCardFeedbackRequest(use_id=use_id, feedback=fb), user=user)


async def usage(k: Knowledge) -> None:
    """A: 3 uses by 2 reps (fully, partly, not applicable) and one 40 days ago; B: 1 use (not applicable);
    C and D: none."""
    for c in ("A", "B", "C", "D"):
        await publish(k, card(c, title=f"卡片 {c}"))
    await use(k, "a1", "A", "D1")
    await use(k, "a2", "A", "D2")
    await use(k, "a3", "A", "D3", user="rep-a2")
    await use(k, "b1", "B", "D1")
    await rate(k, "a1", R.FEEDBACK_RATING_FULLY)
    await rate(k, "a2", R.FEEDBACK_RATING_NOT_APPLICABLE)
    await rate(k, "a3", R.FEEDBACK_RATING_PARTLY, user="rep-a2")
    await rate(k, "b1", R.FEEDBACK_RATING_NOT_APPLICABLE)
    await add_use(k.db, "a-old", "A", "D0", datetime.now(UTC) - timedelta(days=40))


async def listed(k: Knowledge, order_by: str, page_size: int, user: str = "admin") -> list[str]:
    """Every card in `order_by`, page by page; no card twice."""
    ids: list[str] = []
    token = ""
    while True:
        req = pb.ListSopCardsRequest(order_by=order_by, page_size=page_size, page_token=token)
        got = await k.call("ListSopCards", req, user=user)
        ids += [c.card_id for c in got.cards]
        assert got.total_size == 4
        token = got.next_page_token
        if not token:
            assert len(ids) == len(set(ids))
            return ids


async def test_stats_from_uses_and_feedback(knowledge: Knowledge) -> None:
    k = knowledge
    await usage(k)
    a = (await k.call("GetSopCard", pb.GetSopCardRequest(card_id="A"), user="rep-a1")).card.stats
    assert (a.uses_30d, a.distinct_users_30d) == (3, 2)  # the use 40 days ago is outside the window
    assert (a.feedback_fully_30d, a.feedback_partly_30d, a.feedback_not_applicable_30d) == (1, 1, 1)
    assert abs(a.negative_rate_30d - 1 / 3) < 1e-4  # partly is not negative by default
    assert datetime.now(UTC) - a.last_used_time.ToDatetime(tzinfo=UTC) < timedelta(minutes=5)
    assert not a.HasField("win_rate_lift_pp") and a.lift_min_sample == 10  # no closed deal: not enough data
    page = await k.call("ListSopCards", pb.ListSopCardsRequest(order_by="title"))
    stats = {c.card_id: c.stats for c in page.cards}
    assert stats["A"] == a
    assert (stats["B"].uses_30d, stats["B"].negative_rate_30d) == (1, 1.0)
    assert stats["C"].uses_30d == 0 and not stats["C"].HasField("last_used_time")


async def test_usage_orders_page_through_ties_by_id(knowledge: Knowledge) -> None:
    k = knowledge
    await usage(k)
    for size in (1, 3, 50):
        assert await listed(k, "uses_30d desc", size) == ["A", "B", "C", "D"]
        assert await listed(k, "negative_rate_30d desc", size) == ["B", "A", "C", "D"]
    # Partly counted as half negative by the tenant's policy: A's rate is (1 + 0.5) / 3.
    settings = (await k.call("GetKnowledgeSettings", pb.GetKnowledgeSettingsRequest())).settings
    settings.iteration.partly_counts_half_negative = True
    await k.call(
        "UpdateKnowledgeSettings",
        pb.UpdateKnowledgeSettingsRequest(settings=settings, update_mask=FieldMask(paths=["iteration"])),
    )
    a = (await k.call("GetSopCard", pb.GetSopCardRequest(card_id="A"))).card.stats
    assert abs(a.negative_rate_30d - 0.5) < 1e-4
    # A token stays valid while the figures move: the next page starts after the last (figure, id).
    first = await k.call("ListSopCards", pb.ListSopCardsRequest(order_by="uses_30d desc", page_size=2))
    assert [c.card_id for c in first.cards] == ["A", "B"]
    await use(k, "c1", "C", "D1")
    await use(k, "d1", "D", "D1")
    await use(k, "d2", "D", "D2")
    rest = await k.call(
        "ListSopCards",
        pb.ListSopCardsRequest(order_by="uses_30d desc", page_size=2, page_token=first.next_page_token),
    )
    assert [c.card_id for c in rest.cards] == ["C"]  # 1 use, then id C: after (1, "B"); D (2) is before
    assert await listed(k, "uses_30d desc", 2) == ["A", "D", "B", "C"]
    # A token of one order is refused by another; unknown orders are refused.
    await k.fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        "ListSopCards",
        pb.ListSopCardsRequest(order_by="negative_rate_30d desc", page_token=first.next_page_token),
    )
    err = await k.fails(
        grpc.StatusCode.INVALID_ARGUMENT, "ListSopCards", pb.ListSopCardsRequest(order_by="uses")
    )
    assert "uses_30d desc" in (err.details() or "")


async def test_stats_lift_pooled_over_the_cells(knowledge: Knowledge) -> None:
    """24 closed deals through 3 stages: the card used on 12 (9 won), not on 12 (4 won). Pooled over
    the 3 cells the deals reached: 36 used (27 won) against 36 (12 won), 75 % vs 33 %."""
    k = knowledge
    await publish(k, card("L"))
    await publish(k, card("N"))
    c = consumer(k.db)
    for n in range(24):
        if n < 12:
            await add_use(k.db, f"u{n:02d}", "L", f"d{n:02d}", datetime(2026, 9, 2, 8, tzinfo=UTC))
        won = n < 9 or 12 <= n < 16
        await deal_life(c, f"d{n:02d}", PATH, "won" if won else "lost")
    got = await k.call("ListSopCards", pb.ListSopCardsRequest(order_by="title"))
    stats = {card.card_id: card.stats for card in got.cards}
    lift = stats["L"]
    assert (lift.lift_used_deals, lift.lift_comparable_deals) == (36, 36)
    assert lift.win_rate_lift_pp == 41.67
    # Three times the sample of one cell: a narrower interval than the cell's 2.18 to 66.97.
    assert 2.18 < lift.win_rate_lift_low_pp < 41.67 < lift.win_rate_lift_high_pp < 66.97
    never = stats["N"]
    assert not never.HasField("win_rate_lift_pp") and not never.HasField("win_rate_lift_low_pp")
    assert (never.lift_used_deals, never.lift_min_sample) == (0, 10)
