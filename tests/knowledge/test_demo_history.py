"""The demo data `make run` writes (seed.py's cards, then seed_outcomes' history after READY):
recommendations show lift, "not enough data" and an exploration slot on first start; idempotent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deploy.local.demo import DEMO_USERS
from kit.seeding import SeedClients
from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1 import usage_pb2
from services.knowledge import seed, seed_outcomes
from tests.knowledge.conftest import Knowledge, running_knowledge, token

K = usage_pb2.RecommendationReasonKind


def lift_reason(r: usage_pb2.Recommendation) -> usage_pb2.RecommendationReason:
    return next(x for x in r.reasons if x.kind == K.RECOMMENDATION_REASON_KIND_WIN_RATE_LIFT)


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[tuple[Knowledge, SeedClients]]:
    async with running_knowledge(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}") as k:
        clients = SeedClients(
            tenant="demo",
            addresses={"knowledge": k.address},
            tokens={u.user_id: token(u.user_id) for u in DEMO_USERS},
            users=DEMO_USERS,
        )
        await seed.seed(clients)
        yield k, clients


async def test_demo_history_gives_lift_and_not_enough_data(demo: tuple[Knowledge, SeedClients]) -> None:
    k, _ = demo
    now = datetime.now(UTC)
    assert await seed_outcomes.seed_history(k.db, "demo", list(DEMO_USERS), now) == 64
    assert await seed_outcomes.seed_history(k.db, "demo", list(DEMO_USERS), now) == 0  # idempotent

    ask = pb.RecommendSopCardsRequest(deal_id="d-1", industry="manufacturing", stage_id="negotiation")
    got = (await k.call("RecommendSopCards", ask, "rep-a2")).recommendations
    shown = [r.card.card_id for r in got]
    assert (
        shown[0] == "demo-card-02" and "demo-card-19" in shown and "demo-card-11" not in shown
    )  # 11: managers
    lift = got[0].reasons[0].lift
    assert got[0].reasons[0].kind == K.RECOMMENDATION_REASON_KIND_WIN_RATE_LIFT
    assert (lift.used_deals, lift.used_won, lift.comparable_deals, lift.comparable_won) == (14, 10, 16, 5)
    assert lift.enough_data and lift.lift_low_pp > 0
    no_data = lift_reason(got[shown.index("demo-card-19")])
    assert not no_data.lift.enough_data and no_data.lift.used_deals == 4
    assert "数据不足" in no_data.text or "not enough data" in no_data.text

    retail = pb.RecommendSopCardsRequest(deal_id="d-2", industry="retail", stage_id="proposal_quote")
    got = (await k.call("RecommendSopCards", retail, "rep-b1")).recommendations
    assert len(got) == 3 and got[0].card.card_id == "demo-card-10"
    measured = lift_reason(got[0]).lift
    assert (measured.used_deals, measured.used_won, measured.comparable_deals, measured.comparable_won) == (
        12,
        7,
        12,
        5,
    )
    assert (
        measured.enough_data and measured.lift_low_pp < 0 < measured.lift_high_pp
    )  # +16.7 pp, not significant
    assert got[2].reasons[0].kind == K.RECOMMENDATION_REASON_KIND_EXPLORATION
