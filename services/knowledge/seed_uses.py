# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""Demo card uses and feedback, written through the API as the reps (`make run`), idempotently.

Uses lie in the last days (a use may be logged up to 7 days late), so on first
start the demo shows every state of a feedback duty: rated (fully, partly, not
applicable, one of them late), pending (due tomorrow), and overdue (its timer
marks it at once and notify tells the rep and their supervisor). A second run
finds the uses (ALREADY_EXISTS: their times moved) and rates nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc

from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1 import knowledge_service_pb2_grpc
from salesops.knowledge.v1.usage_pb2 import CardFeedback, CardUse
from salesops.knowledge.v1.usage_pb2 import FeedbackRating as R
from salesops.knowledge.v1.usage_pb2 import FeedbackReasonCategory as C

Metadata = Callable[[str], tuple[tuple[str, str], ...]]
TIMEOUT = 30


@dataclass(frozen=True)
class DemoUse:
    use_id: str
    user: str
    card_id: str
    deal_id: str
    industry: str
    stage_id: str
    hours_ago: int
    rating: int = 0  # 0 = no feedback yet
    category: int = 0
    reason: str = ""
    rated_after_hours: int = 0  # when the rep rated it (device time); 0 = now, so late if overdue


USES: tuple[DemoUse, ...] = (
    DemoUse("demo-use-01", "rep-a1", "demo-card-02", "demo-rep-a1-1", "manufacturing", "negotiation", 120,
            R.FEEDBACK_RATING_FULLY, rated_after_hours=5),
    DemoUse("demo-use-02", "rep-a2", "demo-card-02", "demo-rep-a2-1", "manufacturing", "negotiation", 100,
            R.FEEDBACK_RATING_PARTLY, C.FEEDBACK_REASON_CATEGORY_MISSING_STEP, "客户要先看同行案例，卡片里没有这一步",
            20),
    DemoUse("demo-use-03", "rep-b1", "demo-card-05", "demo-rep-b1-1", "retail", "needs_confirmed", 90,
            R.FEEDBACK_RATING_NOT_APPLICABLE, C.FEEDBACK_REASON_CATEGORY_WRONG_CONTEXT, "客户是集团统一采购，预算不在门店",
            30),
    DemoUse("demo-use-04", "rep-a1", "demo-card-15", "demo-rep-a1-2", "manufacturing", "initial_contact", 80,
            R.FEEDBACK_RATING_FULLY, rated_after_hours=2),
    DemoUse("demo-use-05", "rep-b2", "demo-card-19", "demo-rep-b2-1", "manufacturing", "negotiation", 70,
            R.FEEDBACK_RATING_PARTLY, C.FEEDBACK_REASON_CATEGORY_OUTDATED, "The discount bands changed this quarter"),
    DemoUse("demo-use-06", "rep-a2", "demo-card-01", "demo-rep-a2-2", "manufacturing", "initial_contact", 60),
    DemoUse("demo-use-07", "rep-b1", "demo-card-16", "demo-rep-b1-2", "retail", "proposal_quote", 52),
    DemoUse("demo-use-08", "rep-a1", "demo-card-05", "demo-rep-a1-3", "manufacturing", "needs_confirmed", 20),
    DemoUse("demo-use-09", "rep-b2", "demo-card-04", "demo-rep-b2-2", "retail", "proposal_quote", 6),
)  # fmt: skip


async def seed_use(
    stub: knowledge_service_pb2_grpc.KnowledgeServiceAsyncStub, md: Metadata, demo: DemoUse, now: datetime
) -> None:
    use = CardUse(use_id=demo.use_id, deal_id=demo.deal_id, industry=demo.industry, stage_id=demo.stage_id)
    use.use_time.FromDatetime(now - timedelta(hours=demo.hours_ago))
    try:
        await stub.RecordSopCardUse(
            pb.RecordSopCardUseRequest(card_id=demo.card_id, use=use), metadata=md(demo.user), timeout=TIMEOUT
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.ALREADY_EXISTS:  # an earlier run recorded it
            raise
    if not demo.rating:
        return
    feedback = CardFeedback(rating=demo.rating, reason_category=demo.category, reason=demo.reason)  # type: ignore[arg-type]
    if demo.rated_after_hours:
        feedback.submit_time.FromDatetime(now - timedelta(hours=demo.hours_ago - demo.rated_after_hours))
    await stub.SubmitCardFeedback(  # the same feedback again is a no-op
        pb.SubmitCardFeedbackRequest(use_id=demo.use_id, feedback=feedback),
        metadata=md(demo.user),
        timeout=TIMEOUT,
    )


async def seed_uses(stub: knowledge_service_pb2_grpc.KnowledgeServiceAsyncStub, md: Metadata) -> None:
    now = datetime.now(UTC)
    for demo in USES:
        await seed_use(stub, md, demo, now)
