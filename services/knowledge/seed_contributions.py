# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""Demo field cases through the API (`make run`), idempotently: one accepted into a LIGHT card
(points and a leaderboard row on first start), one waiting in the review queue, one rejected."""

from __future__ import annotations

from collections.abc import Callable

from salesops.knowledge.v1 import contribution_pb2 as c
from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1 import knowledge_service_pb2_grpc
from salesops.knowledge.v1.sop_card_pb2 import SopCard
from services.knowledge.seed_cards import MANUFACTURING, NEGOTIATION, RETAIL

Metadata = Callable[[str], tuple[tuple[str, str], ...]]
TIMEOUT = 30

CASES = (
    (
        "rep-a1",
        c.Contribution(
            contribution_id="demo-case-01",
            kind=c.CONTRIBUTION_KIND_TURNAROUND_NEGOTIATION,
            title="竞品低价截单后两周翻盘",
            situation="客户拿竞品报价压价 20%，采购暂停了谈判。",
            actions="1. 约技术负责人一起算三年总成本\n2. 把实施费拆成两期\n3. 请老客户做一次电话背书",
            outcome="客户重新进入报价阶段，两周后按原价签约。",
            objections=[
                c.ObjectionResponse(objection="你们比竞品贵 20%", response="三年总成本反而低 8%，这是测算表")
            ],
            scenario="price_talks_breakdown",
            industry=MANUFACTURING,
            stage_id=NEGOTIATION,
        ),
        "accept",
    ),
    (
        "rep-b1",
        c.Contribution(
            contribution_id="demo-case-02",
            kind=c.CONTRIBUTION_KIND_OBJECTION_LIST,
            title="门店增购的五个常见异议",
            objections=[
                c.ObjectionResponse(objection="今年预算已经用完", response="先签框架协议，下季度起付"),
                c.ObjectionResponse(objection="店长没时间培训", response="培训放在闭店后，线上 30 分钟"),
            ],
            scenario="upsell_negotiation",
            industry=RETAIL,
            stage_id=NEGOTIATION,
        ),
        "",
    ),
    (
        "rep-a2",
        c.Contribution(
            contribution_id="demo-case-03",
            kind=c.CONTRIBUTION_KIND_WIN_STORY,
            title="价格谈崩时先确认预算",
            situation="和 demo-card-02 的做法一样。",
            scenario="price_talks_breakdown",
        ),
        "reject",
    ),
)


async def seed_contributions(
    stub: knowledge_service_pb2_grpc.KnowledgeServiceAsyncStub, md: Metadata
) -> None:
    for user, case, review in CASES:
        submit = pb.SubmitContributionRequest(contribution=case)
        done = (await stub.SubmitContribution(submit, metadata=md(user), timeout=TIMEOUT)).contribution
        if review == "accept":
            accept = pb.AcceptContributionRequest(
                contribution_id=case.contribution_id,
                card=SopCard(card_id="demo-light-01", tags=["pricing"]),
                review_comment="很好的翻盘案例，已发布为轻量 SOP",
            )
            await stub.AcceptContribution(accept, metadata=md("admin"), timeout=TIMEOUT)
        elif review == "reject" and done.status == c.CONTRIBUTION_STATUS_SUBMITTED:
            reject = pb.RejectContributionRequest(
                contribution_id=case.contribution_id,
                rejection_reason=c.CONTRIBUTION_REJECTION_REASON_DUPLICATE,
                review_comment="demo-card-02 已覆盖这个做法",
            )
            await stub.RejectContribution(reject, metadata=md("admin"), timeout=TIMEOUT)
