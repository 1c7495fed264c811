"""Gate reviews on the write paths: the error a refused move answers, and the recorded review.

A refused move is FAILED_PRECONDITION with one PreconditionFailure violation per
missing item (type GATE_REQUIRED_FIELD / GATE_EVIDENCE / GATE_CHECKLIST /
GATE_APPROVAL, subject "<stage_id>/<key>", description the item's label and what
would satisfy it) and ErrorInfo reason GATE_REJECTED with the review id.
"""

from __future__ import annotations

from datetime import datetime

from ulid import ULID

from kit.errors import FailedPrecondition, PreconditionViolation
from kit.resources import UnitOfWork
from salesops.pipeline.v1 import deal_pb2, events_pb2
from services.pipeline import events
from services.pipeline.domain.stages import Review
from services.pipeline.presenters import review_proto
from services.pipeline.repositories.history import GateReviews
from services.pipeline.store import DealRow, GateReviewRow

GATE_REJECTED = "GATE_REJECTED"


def refusal(review: Review, review_id: str) -> FailedPrecondition:
    violations = [
        PreconditionViolation(
            f"GATE_{gi.item.kind.value}",
            f"{gi.stage_id}/{gi.item.key}",
            f"{gi.item.label}: {gi.item.hint}" if gi.item.hint else gi.item.label,
        )
        for gi in review.missing
    ]
    target = review.to_stage_id
    error = FailedPrecondition(
        f"the gate of {target} refused the move: {len(violations)} item(s) missing",
        violations,
        reason=GATE_REJECTED,
    )
    if review_id:
        error.metadata["review_id"] = review_id
    return error


async def record(uow: UnitOfWork, row: DealRow, review: Review, by: str, at: datetime) -> deal_pb2.GateReview:
    """Store the review (passed or refused) and, when refused, announce it."""
    review_id = str(ULID())
    msg = review_proto(review, row.deal_id, by, at, review_id)
    outcome = "PASSED" if review.passed else "REJECTED"
    await GateReviews(uow).add(
        GateReviewRow(
            review_id=review_id,
            deal_id=row.deal_id,
            outcome=outcome,
            created_at=at,
            body=msg.SerializeToString(deterministic=True),
        )
    )
    if not review.passed:
        rejected = events_pb2.DealGateRejected(
            deal=await events.deal_context(uow, row),
            gate_review_id=review_id,
            to_stage_id=msg.to_stage_id,
            to_won=msg.to_won,
            missing_items=[i for i in msg.items if not i.satisfied],
            attempted_by=by,
        )
        await uow.emit(events.DEAL_GATE_REJECTED, rejected, subject=row.deal_id)
    return msg
