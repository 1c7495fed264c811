"""Search use case: segment the query like the cards, expand synonyms, find candidates, rank, highlight.

The index finds every visible card (filters applied in SQL) holding any query
word or synonym; domain/search.py decides what matches and in what order, so
the answer is the same on SQLite and PostgreSQL. Pages are offsets into that
order, in a signed token bound to the tenant, the caller and the query.
"""

from __future__ import annotations

from dataclasses import dataclass

from kit.auth import Principal
from kit.errors import InvalidArgument
from kit.resources import PageRequest, UnitOfWork, query_key
from salesops.knowledge.v1.knowledge_service_pb2 import SearchSopCardsRequest
from salesops.knowledge.v1.sop_card_pb2 import SopCard
from services.knowledge import knowledge_settings
from services.knowledge.domain import search as rules
from services.knowledge.presenters import card_body
from services.knowledge.repositories.cards import Cards
from services.knowledge.repositories.search import SearchIndex
from services.knowledge.segmentation import tokens
from services.knowledge.store import SopCardRow

MAX_QUERY = 200


@dataclass
class Found:
    row: SopCardRow
    score: float
    highlights: list[str]


@dataclass
class Results:
    found: list[Found]
    next_page_token: str
    total_size: int


def _texts(card: SopCard, scenario_names: dict[str, list[str]]) -> list[str]:
    """Where snippets come from, most telling first (the scenario's names: a label-only match shows why)."""
    texts = [card.title, card.summary]
    texts += [a.text for a in card.must_do_actions] + [a.example for a in card.must_do_actions]
    texts += list(card.taboos) + [p.claim for p in card.proof_points] + list(card.tags)
    texts += scenario_names.get(card.scenario, [])
    return [t for t in texts if t]


async def search_cards(uow: UnitOfWork, who: Principal, request: SearchSopCardsRequest) -> Results:
    text = request.query.strip()
    if not text:
        raise InvalidArgument.field("query", "required")
    if len(text) > MAX_QUERY:
        raise InvalidArgument.field("query", f"at most {MAX_QUERY} characters")
    page = PageRequest.parse(request.page_size, request.page_token, default=20, maximum=100)
    key = query_key("SearchSopCards", who.user_id, text, request.filter.SerializeToString(deterministic=True))
    offset = 0
    if page.token:
        values = uow.tokens.decode(page.token, uow.tenant, key)
        if len(values) != 1 or not isinstance(values[0], int) or values[0] < 0:
            raise InvalidArgument.field("page_token", "not a page token of this request")
        offset = values[0]
    settings = await knowledge_settings.current(uow)
    terms = rules.query_terms(tokens(text), knowledge_settings.synonyms_of(settings))
    if not terms:
        return Results([], "", 0)
    where = [Cards.visible_to(who), *Cards.matching(who, request.filter)]
    docs = await SearchIndex(uow).candidates(rules.candidate_words(terms), where)
    hits = rules.rank(docs, terms)
    window = hits[offset : offset + page.size]
    rows = await Cards(uow).by_ids([h.card_id for h in window])
    names = {s.key: [s.name_zh, s.name_en] for s in settings.scenarios}
    found = [
        Found(
            rows[h.card_id], h.score, rules.highlights(_texts(card_body(rows[h.card_id]), names), h.matched)
        )
        for h in window
        if h.card_id in rows
    ]
    token = ""
    if offset + page.size < len(hits):
        token = uow.tokens.encode(uow.tenant, key, [offset + page.size])
    return Results(found, token, len(hits))
