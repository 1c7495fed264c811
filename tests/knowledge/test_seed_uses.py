"""The demo uses and feedback `make run` seeds: every duty state on first start, idempotent."""

from __future__ import annotations

from pathlib import Path

from deploy.local.demo import DEMO_USERS
from kit.seeding import SeedClients
from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1.usage_pb2 import FeedbackRating, FeedbackState
from services.knowledge import seed
from tests.knowledge.conftest import running_knowledge, token

S = FeedbackState


async def test_demo_uses_show_rated_late_pending_and_overdue_duties(tmp_path: Path) -> None:
    async with running_knowledge(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}") as k:
        clients = SeedClients(
            tenant="demo",
            addresses={"knowledge": k.address},
            tokens={u.user_id: token(u.user_id) for u in DEMO_USERS},
            users=DEMO_USERS,
        )
        await seed.seed(clients)
        await seed.seed(clients)  # a second run writes nothing twice
        every = pb.ListCardUsesRequest(page_size=100)
        uses = {u.use_id: u for u in (await k.call("ListCardUses", every)).uses}
        assert len(uses) == 9
        rated = {i for i, u in uses.items() if u.feedback_state == S.FEEDBACK_STATE_SUBMITTED}
        assert rated == {f"demo-use-0{n}" for n in range(1, 6)}
        late = uses["demo-use-05"].feedback
        assert late.late and late.rating == FeedbackRating.FEEDBACK_RATING_PARTLY
        assert not uses["demo-use-01"].feedback.late
        # Team A's open duties, soonest deadline first: rep-a2's is past its deadline (the timer marks it
        # OVERDUE once the stack's worker runs it), rep-a1's is due tomorrow.
        team = await k.call(
            "ListFeedbackDuties", pb.ListFeedbackDutiesRequest(org_path="east/team-a"), "sup-a"
        )
        assert [(d.use_id, d.user_id) for d in team.duties] == [
            ("demo-use-06", "rep-a2"),
            ("demo-use-08", "rep-a1"),
        ]
