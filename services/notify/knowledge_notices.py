"""Knowledge's review and lifecycle events as system notices (pure): who is told what.

knowledge.ContributionReviewed -> the contributor (accepted: the card and the points; rejected:
the reason category). knowledge.CardRetired / CardReturnedToReview -> the card's author, when
someone else (the monthly iteration, an admin) moved it. consumers.translate makes each notice
a SYSTEM notification; the dedupe key holds the contribution, or the card and its version.
"""

from __future__ import annotations

from dataclasses import dataclass

from kit.events import EventEnvelope, unpack_payload
from salesops.common.v1 import types_pb2
from salesops.knowledge.v1 import contribution_pb2 as contribution
from salesops.knowledge.v1 import events_pb2 as knowledge_events

TYPES = ("knowledge.ContributionReviewed", "knowledge.CardRetired", "knowledge.CardReturnedToReview")


@dataclass(frozen=True)
class Notice:
    user_id: str
    title: str
    message: str
    subject: types_pb2.ResourceRef
    dedupe: str


def notices(envelope: EventEnvelope) -> list[Notice]:
    if envelope.type == "knowledge.ContributionReviewed":
        return [_reviewed(unpack_payload(envelope, knowledge_events.ContributionReviewed))]
    if envelope.type in ("knowledge.CardRetired", "knowledge.CardReturnedToReview"):
        return _card_moved(envelope)
    return []


def _reviewed(e: knowledge_events.ContributionReviewed) -> Notice:
    if e.outcome == contribution.CONTRIBUTION_STATUS_ACCEPTED:
        title = f"Your case was accepted: {e.title}"
        message = f"It is published as SOP card {e.published_card_id}; +{e.points_awarded} points."
    else:
        reason = contribution.ContributionRejectionReason.Name(e.rejection_reason)
        title = f"Your case was not accepted: {e.title}"
        why = reason.removeprefix("CONTRIBUTION_REJECTION_REASON_").lower()
        message = f"Reason: {why}; see the reviewer's comment."
    ref = types_pb2.ResourceRef(service="knowledge", kind="contribution", id=e.contribution_id)
    return Notice(e.contributor_user_id, title, message, ref, f"contribution_reviewed:{e.contribution_id}")


def _card_moved(envelope: EventEnvelope) -> list[Notice]:
    if envelope.type == "knowledge.CardRetired":
        r = unpack_payload(envelope, knowledge_events.CardRetired)
        card_id, version, author, by, why = r.card_id, r.version, r.author_user_id, r.retired_by, r.reason
        headline, key = f"SOP card retired: {r.title}", "card_retired"
    else:
        b = unpack_payload(envelope, knowledge_events.CardReturnedToReview)
        card_id, version, author, by, why = b.card_id, b.version, b.author_user_id, b.returned_by, b.reason
        headline, key = f"SOP card back in review: {b.title}", "card_returned"
    if not author or author == by:
        return []
    ref = types_pb2.ResourceRef(service="knowledge", kind="card", id=card_id)
    return [Notice(author, headline, why, ref, f"{key}:{card_id}:{version}")]
