# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""Small builders shared by the knowledge tests."""

from __future__ import annotations

from typing import Any

from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1.sop_card_pb2 import CardAction, ProofPoint, SopCard
from tests.knowledge.conftest import Knowledge


def card(card_id: str, title: str = "价格谈崩时的三步挽回", **fields: Any) -> SopCard:
    base: dict[str, Any] = {
        "card_id": card_id,
        "title": title,
        "scenario": "price_talks_breakdown",
        "summary": "客户嫌价格太高时的挽回步骤。",
        "must_do_actions": [CardAction(text="先确认预算区间", example="您的预算大概在什么范围？")],
        "taboos": ["不要在同一次会议里连续两次让价"],
        "proof_points": [ProofPoint(claim="签约率提高 23%", source="华东区复盘")],
        "industries": ["manufacturing"],
        "stage_ids": ["negotiation"],
        "tags": ["pricing"],
    }
    base.update(fields)
    return SopCard(**base)


async def publish(k: Knowledge, c: SopCard, author: str = "admin", tenant: str = "demo") -> SopCard:
    """Create, submit and publish a card; returns it as published."""
    await k.call("CreateSopCard", pb.CreateSopCardRequest(card=c), user=author, tenant=tenant)
    await k.call(
        "SubmitSopCardForReview", pb.SubmitSopCardForReviewRequest(card_id=c.card_id), author, tenant
    )
    req = pb.PublishSopCardRequest(card_id=c.card_id, change_note="v1")
    return (await k.call("PublishSopCard", req, "admin", tenant)).card  # type: ignore[no-any-return]
