"""Knowledge's events for notify: a reviewed contribution reaches its contributor, a card retired
or returned by the monthly iteration its author (notify's pure translation of each event)."""

from __future__ import annotations

from kit.events import new_envelope
from salesops.knowledge.v1 import contribution_pb2 as c
from salesops.knowledge.v1 import events_pb2 as e
from salesops.notify.v1 import notification_pb2 as n
from services.notify.consumers import TYPES, translate


def test_contribution_reviewed_and_cards_moved_by_the_iteration_reach_the_right_people() -> None:
    assert {
        "knowledge.ContributionReviewed",
        "knowledge.CardRetired",
        "knowledge.CardReturnedToReview",
    } <= set(TYPES)
    accepted = e.ContributionReviewed(
        contribution_id="K1",
        title="价格谈崩后挽回",
        contributor_user_id="rep-a1",
        outcome=c.CONTRIBUTION_STATUS_ACCEPTED,
        published_card_id="L1",
        points_awarded=10,
    )
    [out] = translate(new_envelope("knowledge.ContributionReviewed", "demo", accepted, source="knowledge"))
    assert out.category == n.NOTIFICATION_CATEGORY_SYSTEM and [r.user_id for r in out.recipients] == [
        "rep-a1"
    ]
    assert (
        "+10 points" in str(out.template.variables["message"])
        and out.dedupe_key == "contribution_reviewed:K1"
    )
    rejected = e.ContributionReviewed(
        contribution_id="K2",
        contributor_user_id="rep-a2",
        outcome=c.CONTRIBUTION_STATUS_REJECTED,
        rejection_reason=c.CONTRIBUTION_REJECTION_REASON_DUPLICATE,
    )
    [out] = translate(new_envelope("knowledge.ContributionReviewed", "demo", rejected, source="knowledge"))
    assert "duplicate" in str(out.template.variables["message"])
    retired = e.CardRetired(
        card_id="C1",
        version=2,
        title="t",
        author_user_id="sup-a",
        reason="monthly iteration 2026-11: usage 5 % < 15 % and negative 83 % > 40 %",
        retired_by="system:knowledge",
        iteration_report_id="R1",
    )
    [out] = translate(new_envelope("knowledge.CardRetired", "demo", retired, source="knowledge"))
    assert [r.user_id for r in out.recipients] == ["sup-a"] and out.dedupe_key == "card_retired:C1:2"
    assert str(out.template.variables["message"]).startswith("monthly iteration")
    returned = e.CardReturnedToReview(card_id="C2", version=1, author_user_id="sup-a", returned_by="sup-a")
    assert (
        translate(new_envelope("knowledge.CardReturnedToReview", "demo", returned, source="knowledge")) == []
    )
