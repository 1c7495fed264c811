# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""Bilingual search: Chinese segmented in the application, two-character words, mixed zh / en,
the tenant's synonyms, filters, ranking and highlighted snippets; the same ids on SQLite and
PostgreSQL (asserted exactly on each, and side by side over the demo cards)."""

from __future__ import annotations

from pathlib import Path

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1.settings_pb2 import KnowledgeSettings, SynonymGroup
from salesops.knowledge.v1.sop_card_pb2 import CardAction, CardStatus
from services.knowledge.seed import seed_card
from services.knowledge.seed_cards import CARDS
from tests.knowledge.conftest import Knowledge, running_knowledge, token
from tests.knowledge.helpers import card, publish


async def ids(k: Knowledge, query: str, user: str = "rep-a1", **filters: object) -> list[str]:
    req = pb.SearchSopCardsRequest(query=query, filter=pb.SopCardFilter(**filters))  # type: ignore[arg-type]
    return [r.card.card_id for r in (await k.call("SearchSopCards", req, user=user)).results]


async def library(k: Knowledge) -> None:
    await publish(k, card("P1", "价格谈崩时的三步挽回", tags=["pricing"]))
    await publish(
        k,
        card(
            "P2",
            "预算审批卡住怎么办",
            scenario="budget_objection",
            summary="客户的总预算不够时，先拆分方案。",
            must_do_actions=[CardAction(text="确认预算周期")],
            industries=["retail"],
            stage_ids=["proposal_quote"],
            tags=["budget"],
        ),
    )
    await publish(
        k,
        card(
            "P3",
            "Handling the price objection",
            scenario="price_talks_breakdown",
            language_code="en",
            summary="When the customer pushes back on price, trade every concession.",
            must_do_actions=[CardAction(text="Ask for a matching commitment")],
            taboos=["Never concede twice"],
            industries=["manufacturing", "retail"],
            stage_ids=["negotiation"],
            tags=["objection"],
        ),
    )
    # A draft mentioning 价格 is not served to reps.
    await k.call("CreateSopCard", pb.CreateSopCardRequest(card=card("D1", "价格表草稿")))


async def test_chinese_two_character_words_mixed_and_synonyms(knowledge: Knowledge) -> None:
    k = knowledge
    await library(k)
    # 价格 inside 价格谈崩 (a longer word) and 预算 inside 总预算 / 预算审批 are found.
    assert await ids(k, "价格") == ["P1", "P3"]  # P3 via the seeded synonym 价格 <-> price
    assert await ids(k, "预算") == ["P2", "P1"]  # P2's title beats P1's action text
    # English finds Chinese cards through the synonym table, and the other way round.
    assert await ids(k, "budget") == ["P2", "P1"]
    assert await ids(k, "异议") == ["P3", "P2"]  # objection: P3 in its title, P2 by its scenario (预算异议)
    by_label = (await k.call("SearchSopCards", pb.SearchSopCardsRequest(query="异议"), user="rep-a1")).results
    assert by_label[1].highlights == ["预算<em>异议</em>", "Budget <em>objection</em>"]  # a label-only match
    # Mixed: a card matching both words ranks first.
    assert await ids(k, "价格 objection") == ["P3", "P1", "P2"]
    assert await ids(k, "怎么办") == []  # a stopword alone searches nothing
    # Admins find the draft too; reps never do.
    assert "D1" in await ids(k, "价格", user="admin")
    assert "D1" not in await ids(k, "价格", user="rep-b2")

    # A tenant synonym of its own: 让价 <-> concession.
    current = (await k.call("GetKnowledgeSettings", pb.GetKnowledgeSettingsRequest())).settings
    groups = [*current.synonyms, SynonymGroup(terms=["让价", "concession"])]
    update = pb.UpdateKnowledgeSettingsRequest(
        settings=KnowledgeSettings(synonyms=groups), update_mask=FieldMask(paths=["synonyms"])
    )
    await k.fails(grpc.StatusCode.PERMISSION_DENIED, "UpdateKnowledgeSettings", update, user="rep-a1")
    await k.call("UpdateKnowledgeSettings", update)
    assert await ids(k, "让价") == ["P1", "P2", "P3"]  # P1, P2: 连续两次让价; P3: "every concession"
    bad = pb.UpdateKnowledgeSettingsRequest(
        settings=KnowledgeSettings(synonyms=[SynonymGroup(terms=["单独"])]),
        update_mask=FieldMask(paths=["synonyms"]),
    )
    await k.fails(grpc.StatusCode.INVALID_ARGUMENT, "UpdateKnowledgeSettings", bad)


async def test_filters_ranking_snippets_and_paging(knowledge: Knowledge) -> None:
    k = knowledge
    await library(k)
    assert await ids(k, "价格", industry="retail") == ["P3"]
    assert await ids(k, "预算", stage_id="proposal_quote") == ["P2"]
    assert await ids(k, "价格", tag="pricing") == ["P1"]
    assert await ids(k, "价格", user="admin", statuses=[CardStatus.CARD_STATUS_DRAFT]) == ["D1"]
    req = pb.SearchSopCardsRequest(query="预算 <b>", page_size=1)
    first = await k.call("SearchSopCards", req, user="rep-a1")
    assert first.total_size == 2 and [r.card.card_id for r in first.results] == ["P2"]
    hit = first.results[0]
    assert hit.score > 0 and hit.highlights[0] == "<em>预算</em>审批卡住怎么办"
    assert any("总<em>预算</em>" in h for h in hit.highlights)
    second = await k.call(
        "SearchSopCards",
        pb.SearchSopCardsRequest(query="预算 <b>", page_size=1, page_token=first.next_page_token),
        user="rep-a1",
    )
    assert [r.card.card_id for r in second.results] == ["P1"] and not second.next_page_token
    # A token is bound to its query; an empty or huge query is refused.
    other = pb.SearchSopCardsRequest(query="价格", page_size=1, page_token=first.next_page_token)
    await k.fails(grpc.StatusCode.INVALID_ARGUMENT, "SearchSopCards", other, user="rep-a1")
    await k.fails(grpc.StatusCode.INVALID_ARGUMENT, "SearchSopCards", pb.SearchSopCardsRequest(query=" "))
    await k.fails(
        grpc.StatusCode.INVALID_ARGUMENT, "SearchSopCards", pb.SearchSopCardsRequest(query="价" * 201)
    )
    # English snippets are escaped and whole-word highlighted.
    en = (await k.call("SearchSopCards", pb.SearchSopCardsRequest(query="price"), user="rep-a1")).results
    p3 = next(r for r in en if r.card.card_id == "P3")
    assert p3.highlights[0] == "Handling the <em>price</em> objection"
    # Retired cards leave the reps' results at once.
    await k.call("RetireSopCard", pb.RetireSopCardRequest(card_id="P3", reason="old"))
    assert await ids(k, "objection") == ["P2"]  # P3 gone; P2 by its scenario, 预算异议
    # Re-editing re-indexes: a card back in review, retitled, is found by its new words only.
    await k.call("ReturnSopCardToReview", pb.ReturnSopCardToReviewRequest(card_id="P1", reason="rework"))
    retitle = pb.UpdateSopCardRequest(card=card("P1", "折扣申请流程"), update_mask=FieldMask(paths=["title"]))
    await k.call("UpdateSopCard", retitle)
    await k.call("PublishSopCard", pb.PublishSopCardRequest(card_id="P1"))
    assert await ids(k, "三步") == []  # the old title's word
    assert await ids(k, "discount") == ["P1"]


QUERIES = [
    "价格",
    "预算",
    "异议",
    "objection",
    "price 预算",
    "首次电话",
    "POC 失败",
    "竞品替换",
    "合同",
    "续约 upsell",
]


async def test_sqlite_and_postgres_give_the_same_ids(tmp_path: Path, postgres_url: str) -> None:
    """The demo library on both databases: every query answers the same ids in the same order."""
    answers: list[dict[str, list[str]]] = []
    for url in (f"sqlite+aiosqlite:///{tmp_path / 'k.db'}", postgres_url):
        async with running_knowledge(url) as k:
            for demo in CARDS:
                await seed_card(k.stub, lambda user: (("authorization", f"Bearer {token(user)}"),), demo)
            answers.append({q: await ids(k, q) for q in QUERIES})
    sqlite, postgres = answers
    assert sqlite == postgres
    assert all(sqlite[q] for q in QUERIES), sqlite  # every query finds something
    assert "demo-card-11" not in sqlite["价格"]  # a managers-only card, hidden from the rep
