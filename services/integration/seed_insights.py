"""Demo data of conversation insights: the default keyword dictionary, through the API, idempotently."""

from __future__ import annotations

from typing import Any

import grpc

from salesops.integration.v1 import insights_pb2 as i
from salesops.integration.v1 import integration_service_pb2 as pb

# (id, term, category, variants): what sales teams listen for, Chinese and English.
DEFAULT_KEYWORDS: tuple[tuple[str, str, int, tuple[str, ...]], ...] = (
    ("kw-budget", "预算", i.KEYWORD_CATEGORY_BUDGET, ("budget", "预算不够", "没有预算", "经费")),
    ("kw-tender", "招标", i.KEYWORD_CATEGORY_TENDER, ("投标", "tender", "RFP", "bidding")),
    (
        "kw-approval",
        "领导还没批",
        i.KEYWORD_CATEGORY_APPROVAL,
        ("老板没批", "领导没批", "the boss has not approved", "pending approval"),
    ),
    ("kw-timeline", "下个季度", i.KEYWORD_CATEGORY_TIMELINE, ("明年", "next quarter", "next year")),
    ("kw-price", "太贵", i.KEYWORD_CATEGORY_PRICE, ("价格太高", "too expensive", "over budget")),
    ("kw-risk", "再考虑一下", i.KEYWORD_CATEGORY_RISK, ("再等等", "put on hold", "not a priority")),
    ("kw-decision", "拍板", i.KEYWORD_CATEGORY_DECISION_MAKER, ("决策人", "decision maker", "sign off")),
)


async def seed_insights(  # stub: the async IntegrationServiceStub (typed sync in the stubs)
    stub: Any, md: tuple[tuple[str, str], ...]
) -> None:
    for keyword_id, term, category, variants in DEFAULT_KEYWORDS:
        keyword = i.InsightKeyword(
            keyword_id=keyword_id,
            term=term,
            category=category,  # type: ignore[arg-type]
            synonyms=variants,
        )
        try:
            await stub.CreateInsightKeyword(
                pb.CreateInsightKeywordRequest(keyword=keyword), metadata=md, timeout=30
            )
        except grpc.aio.AioRpcError as exc:  # an admin changed it since: theirs stands
            if exc.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise
