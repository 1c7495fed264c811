"""RecommendSopCards' in-process copies (settings, library, card rows, lifts, newcomer uses, ranked
candidates) on SQLite and PostgreSQL: a warm call's round trips, and every change that should move
the answer moving it at once (publish, retire, a new version, placement and audience, uses, a deal
closing, settings), with visibility exact for each caller after another caller warmed the copies."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import event

from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1 import settings_pb2, usage_pb2
from salesops.knowledge.v1.sop_card_pb2 import CardVisibility
from tests.knowledge.conftest import Knowledge
from tests.knowledge.helpers import card, publish
from tests.knowledge.outcome_world import add_use, consumer, deal_life

K = usage_pb2.RecommendationReasonKind
V = CardVisibility
ALL = pb.RecommendSopCardsRequest(
    deal_id="d-open", industry="manufacturing", stage_id="negotiation", max_results=10
)


async def shown(k: Knowledge, user: str = "rep-a1", request: pb.RecommendSopCardsRequest = ALL) -> list[Any]:
    return list((await k.call("RecommendSopCards", request, user)).recommendations)


async def ids(k: Knowledge, user: str = "rep-a1", request: pb.RecommendSopCardsRequest = ALL) -> set[str]:
    return {r.card.card_id for r in await shown(k, user, request)}


@contextmanager
def statements(k: Knowledge) -> Iterator[list[str]]:
    """The SQL statements run on the service's engine meanwhile."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, sql: str, *_: Any) -> None:
        seen.append(sql)

    engine = k.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_warm_call_is_one_read_and_the_impressions(knowledge: Knowledge) -> None:
    k = knowledge
    for n in range(4):
        await publish(k, card(f"c{n}"))
    first = await shown(k)
    with statements(k) as sql:
        again = await shown(k)
    assert [r.recommendation_id for r in again] == [r.recommendation_id for r in first]
    assert len(sql) == 2, sql  # the versions (and recent uses), the impressions
    assert sql[0].lstrip().upper().startswith("SELECT") and "INSERT" in sql[1].upper()
    # Another deal of the same context and audience: the same ranking, its own seed.
    with statements(k) as sql:
        await shown(
            k,
            request=pb.RecommendSopCardsRequest(
                deal_id="d-2", industry="manufacturing", stage_id="negotiation"
            ),
        )
    assert len(sql) <= 3, sql  # and at most the rows of cards not picked before


async def test_publish_retire_and_new_versions_show_at_once(knowledge: Knowledge) -> None:
    k = knowledge
    await publish(k, card("c-a", title="第一版"))
    await publish(k, card("c-b"))
    assert await ids(k) == {"c-a", "c-b"}
    await publish(k, card("c-new"))
    assert await ids(k) == {"c-a", "c-b", "c-new"}
    await k.call("RetireSopCard", pb.RetireSopCardRequest(card_id="c-b", reason="usage 3%"))
    assert await ids(k) == {"c-a", "c-new"}
    # A new version of c-a: while in review it is not recommended; then its new title is shown.
    await k.call("ReturnSopCardToReview", pb.ReturnSopCardToReviewRequest(card_id="c-a", reason="pricing"))
    assert await ids(k) == {"c-new"}
    retitle = pb.UpdateSopCardRequest(
        card=card("c-a", title="第二版"), update_mask=FieldMask(paths=["title"])
    )
    await k.call("UpdateSopCard", retitle)
    await k.call("PublishSopCard", pb.PublishSopCardRequest(card_id="c-a", change_note="v2"))
    got = {r.card.card_id: r.card for r in await shown(k)}
    assert set(got) == {"c-a", "c-new"}
    assert (got["c-a"].title, got["c-a"].version) == ("第二版", 2)


async def test_audience_is_exact_for_each_caller_after_others_warmed_it(knowledge: Knowledge) -> None:
    k = knowledge
    await publish(k, card("c-all"))
    await publish(
        k, card("c-team-a", visibility=V.CARD_VISIBILITY_ORG_UNITS, visible_org_paths=["east/team-a"])
    )
    await publish(k, card("c-managers", visibility=V.CARD_VISIBILITY_MANAGERS))
    # rep-b1 wrote a card only team A sees: their own card is theirs to see, no one else's in team B.
    await publish(
        k,
        card("c-by-b1", visibility=V.CARD_VISIBILITY_ORG_UNITS, visible_org_paths=["east/team-a"]),
        author="sup-b",
    )
    assert await ids(k, "sup-a") == {"c-all", "c-team-a", "c-managers", "c-by-b1"}
    assert await ids(k, "rep-a1") == {"c-all", "c-team-a", "c-by-b1"}
    assert await ids(k, "rep-b1") == {"c-all"}
    assert await ids(k, "sup-b") == {"c-all", "c-managers", "c-by-b1"}  # sup-b's own card
    assert await ids(k, "rep-b2") == {"c-all"}
    assert await ids(k, "rep-a2") == {"c-all", "c-team-a", "c-by-b1"}
    # The audience moves without a new version (a placement change): every caller sees it at once.
    narrower = pb.UpdateSopCardRequest(
        card=card("c-all", visibility=V.CARD_VISIBILITY_MANAGERS), update_mask=FieldMask(paths=["visibility"])
    )
    await k.call("UpdateSopCard", narrower)
    assert await ids(k, "rep-a1") == {"c-team-a", "c-by-b1"}
    assert await ids(k, "rep-b1") == set()
    assert await ids(k, "sup-b") == {"c-all", "c-managers", "c-by-b1"}
    # Another stage for c-team-a: no longer a candidate at negotiation.
    moved = pb.UpdateSopCardRequest(
        card=card("c-team-a", stage_ids=["proposal_quote"]), update_mask=FieldMask(paths=["stage_ids"])
    )
    await k.call("UpdateSopCard", moved)
    assert await ids(k, "rep-a1") == {"c-by-b1"}
    # Another tenant never sees the demo tenant's copies.
    assert not (await k.call("RecommendSopCards", ALL, "rep-a1", tenant="acme")).recommendations


async def test_uses_closes_and_settings_move_the_answer(knowledge: Knowledge) -> None:
    k = knowledge
    c = consumer(k.db)
    for n in range(5):
        await publish(k, card(f"c{n}"))
    now = datetime.now(UTC)
    await deal_life(c, "d-new", ["initial_contact"], "open", at=now - timedelta(days=10), owner="rep-b1")
    ask = pb.RecommendSopCardsRequest(deal_id="d-open", industry="manufacturing", stage_id="negotiation")
    before = await shown(k, request=ask)
    assert not any(x.kind == K.RECOMMENDATION_REASON_KIND_NEWCOMER_POPULAR for r in before for x in r.reasons)
    # A newcomer's use this week: that card is now "most used by newcomers" and ranks first.
    await add_use(k.db, "nb-1", "c3", "d-new", now - timedelta(hours=1), user="rep-b1")
    after = await shown(k, request=ask)
    assert after[0].card.card_id == "c3"
    assert [x.value for x in after[0].reasons if x.kind == K.RECOMMENDATION_REASON_KIND_NEWCOMER_POPULAR] == [
        1
    ]
    await add_use(k.db, "nb-2", "c3", "d-new", now - timedelta(hours=1), user="rep-b1")
    again = await shown(k, request=ask)
    assert [x.value for x in again[0].reasons if x.kind == K.RECOMMENDATION_REASON_KIND_NEWCOMER_POPULAR] == [
        2
    ]
    # The caller uses c3 on this deal: skipped from now on (and the others are still ranked right).
    await add_use(k.db, "mine", "c3", "d-open", now - timedelta(hours=1))
    assert "c3" not in {r.card.card_id for r in await shown(k, request=ask)}
    assert "c3" in {r.card.card_id for r in await shown(k, request=ask, user="rep-a2")}
    # A deal closes in the cell after a use of c1: c1's lift reason counts it.
    await add_use(k.db, "u-c1", "c1", "d-closed", now - timedelta(days=3))
    await deal_life(c, "d-closed", ["initial_contact", "negotiation"], "won", at=now - timedelta(days=5))
    lift = {
        r.card.card_id: x.lift
        for r in await shown(k, request=ALL, user="rep-a2")
        for x in r.reasons
        if x.kind in (K.RECOMMENDATION_REASON_KIND_WIN_RATE_LIFT, K.RECOMMENDATION_REASON_KIND_EXPLORATION)
    }
    assert (lift["c1"].used_deals, lift["c1"].used_won) == (1, 1)
    # Settings: two by default now, exploration off, and no skipping.
    policy = settings_pb2.RecommendationPolicy(
        default_count=2, exploration_disabled=True, skip_recently_used=Duration()
    )
    update = pb.UpdateKnowledgeSettingsRequest(
        settings=settings_pb2.KnowledgeSettings(recommendation=policy),
        update_mask=FieldMask(
            paths=[
                "recommendation.default_count",
                "recommendation.exploration_disabled",
                "recommendation.skip_recently_used",
            ]
        ),
    )
    await k.call("UpdateKnowledgeSettings", update)
    two = await shown(k, request=ask)
    assert len(two) == 2 and two[0].card.card_id == "c3"  # no longer skipped
    assert not any(x.kind == K.RECOMMENDATION_REASON_KIND_EXPLORATION for r in two for x in r.reasons)
