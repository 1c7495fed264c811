# ruff: noqa: RUF001  (Chinese text uses full-width punctuation on purpose)
"""Co-creation through the API on SQLite and PostgreSQL: a contribution's lifecycle, acceptance
into a LIGHT card, rejection, access by role and tenant, points once per source (submission,
acceptance, uses and praise from our own events, with the monthly cap), the leaderboard and
admin adjustments."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import select

from kit.events import EventEnvelope, parse_envelope, unpack_payload
from salesops.knowledge.v1 import contribution_pb2 as c
from salesops.knowledge.v1 import events_pb2, settings_pb2
from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1.sop_card_pb2 import CardKind, CardStatus, SopCard
from salesops.knowledge.v1.usage_pb2 import CardFeedback, CardUse, FeedbackRating, FeedbackReasonCategory
from services.knowledge import points_consumer
from services.knowledge.store import outbox
from tests.knowledge.conftest import Knowledge

ST = c.ContributionStatus
DENIED = grpc.StatusCode.PERMISSION_DENIED
NOT_FOUND = grpc.StatusCode.NOT_FOUND
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def case(cid: str, title: str = "价格谈崩后两周挽回签约", **fields: Any) -> c.Contribution:
    base: dict[str, Any] = {
        "contribution_id": cid,
        "kind": c.CONTRIBUTION_KIND_TURNAROUND_NEGOTIATION,
        "title": title,
        "situation": "客户说我们比竞品贵 20%，谈判中断。",
        "actions": "1. 先确认预算区间\n2. 拆分交付阶段，首期降到预算内",
        "outcome": "客户重新进入报价阶段，两周后签约",
        "objections": [c.ObjectionResponse(objection="你们比竞品贵 20%", response="算三年总成本给他看")],
        "scenario": "price_talks_breakdown",
        "industry": "manufacturing",
        "stage_id": "negotiation",
        "deal_id": "D1",
    }
    base.update(fields)
    return c.Contribution(**base)


async def submit(
    k: Knowledge, cid: str, user: str = "rep-a1", tenant: str = "demo", **kw: Any
) -> c.Contribution:
    req = pb.SubmitContributionRequest(contribution=case(cid, **kw))
    return (await k.call("SubmitContribution", req, user, tenant)).contribution  # type: ignore[no-any-return]


async def accept(k: Knowledge, cid: str, card_id: str, **card: Any) -> pb.AcceptContributionResponse:
    req = pb.AcceptContributionRequest(
        contribution_id=cid, card=SopCard(card_id=card_id, **card), review_comment="写得好"
    )
    return await k.call("AcceptContribution", req)  # type: ignore[no-any-return]


async def outbox_events(k: Knowledge) -> list[EventEnvelope]:
    async with k.db.system_session() as s:
        return [parse_envelope(r.envelope) for r in (await s.execute(select(outbox))).all()]


async def consume(k: Knowledge, seen: set[str]) -> None:
    """Feed our own CardUsed / FeedbackRecorded from the outbox to the points consumer, each once
    plus once more (a redelivery), as the stream consumer would, in its own transaction."""
    for env in await outbox_events(k):
        if env.type not in points_consumer.POINTS_CONSUMER.types or env.id in seen:  # type: ignore[operator]
            continue
        seen.add(env.id)
        for _ in range(2):
            async with k.db.session(env.tenant) as session:
                await points_consumer.award(env, session)
                await session.commit()


async def test_submit_edit_withdraw_and_access(knowledge: Knowledge) -> None:
    k = knowledge
    first = await submit(k, "K1")
    assert first.status == ST.CONTRIBUTION_STATUS_SUBMITTED and first.contributor_user_id == "rep-a1"
    assert first.points_awarded == 1 and first.language_code == "zh-CN" and first.etag == "1"
    # Offline replay: the same case is the same contribution, other content under the id is refused.
    assert (await submit(k, "K1")).etag == first.etag
    await k.fails(
        grpc.StatusCode.ALREADY_EXISTS,
        "SubmitContribution",
        pb.SubmitContributionRequest(contribution=case("K1", "别的")),
        "rep-a1",
    )
    # Every problem at once, nothing written.
    bad = pb.SubmitContributionRequest(
        contribution=c.Contribution(contribution_id="K2", title="x" * 121, objections=[c.ObjectionResponse()])
    )
    err = await k.fails(INVALID, "SubmitContribution", bad, "rep-a1")
    assert "contribution.kind" in (err.details() or "")
    # Who sees it: the contributor, their supervisor, admins; not another rep, another team's
    # supervisor, or anyone in another tenant.
    get = pb.GetContributionRequest(contribution_id="K1")
    for user in ("rep-a1", "sup-a", "director-east", "admin"):
        assert (await k.call("GetContribution", get, user)).contribution.title == first.title
    assert not (await k.call("GetContribution", get, "sup-a")).contribution.attachments
    for user in ("rep-a2", "sup-b"):
        await k.fails(NOT_FOUND, "GetContribution", get, user)
    await k.fails(NOT_FOUND, "GetContribution", get, "rep-a1", tenant="acme")
    # Edits: the contributor only, editable fields only, etag checked.
    edit = pb.UpdateContributionRequest(
        contribution=case("K1", "新标题", etag="1"), update_mask=FieldMask(paths=["title"])
    )
    edited = (await k.call("UpdateContribution", edit, "rep-a1")).contribution
    assert edited.title == "新标题" and edited.etag == "2"
    await k.fails(grpc.StatusCode.ABORTED, "UpdateContribution", edit, "rep-a1")
    await k.fails(DENIED, "UpdateContribution", edit, "admin")
    await k.fails(NOT_FOUND, "UpdateContribution", edit, "rep-a2")
    status = pb.UpdateContributionRequest(contribution=case("K1"), update_mask=FieldMask(paths=["status"]))
    await k.fails(INVALID, "UpdateContribution", status, "rep-a1")
    # Withdraw, then nothing more happens to it.
    withdrawn = (
        await k.call("WithdrawContribution", pb.WithdrawContributionRequest(contribution_id="K1"), "rep-a1")
    ).contribution
    assert withdrawn.status == ST.CONTRIBUTION_STATUS_WITHDRAWN
    await k.fails(grpc.StatusCode.FAILED_PRECONDITION, "UpdateContribution", edit, "rep-a1")
    err = await k.fails(
        grpc.StatusCode.FAILED_PRECONDITION,
        "AcceptContribution",
        pb.AcceptContributionRequest(contribution_id="K1", card=SopCard(card_id="L1")),
    )
    assert "CONTRIBUTION_STATUS_WITHDRAWN" in (err.details() or "")
    # Lists: reps see their own, supervisors their team's, admins all; oldest first.
    await submit(k, "K3", user="rep-a2")
    await submit(k, "K4", user="rep-b1")
    listed = pb.ListContributionsRequest()
    assert [
        x.contribution_id for x in (await k.call("ListContributions", listed, "rep-a1")).contributions
    ] == ["K1"]
    team = (await k.call("ListContributions", listed, "sup-a")).contributions
    assert [x.contribution_id for x in team] == ["K1", "K3"]
    everything = await k.call("ListContributions", pb.ListContributionsRequest(page_size=2), "admin")
    assert [x.contribution_id for x in everything.contributions] == [
        "K1",
        "K3",
    ] and everything.total_size == 3
    rest = pb.ListContributionsRequest(page_size=2, page_token=everything.next_page_token)
    assert [x.contribution_id for x in (await k.call("ListContributions", rest)).contributions] == ["K4"]
    queue = pb.ListContributionsRequest(statuses=[ST.CONTRIBUTION_STATUS_SUBMITTED])
    assert [x.contribution_id for x in (await k.call("ListContributions", queue)).contributions] == [
        "K3",
        "K4",
    ]
    mine_only = pb.ListContributionsRequest(contributor_user_id="rep-b1")
    assert (await k.call("ListContributions", mine_only, "rep-a1")).contributions == []


async def test_accept_into_a_light_card_and_reject_with_a_reason(knowledge: Knowledge) -> None:
    k = knowledge
    await submit(k, "K1")
    await k.fails(
        DENIED,
        "AcceptContribution",
        pb.AcceptContributionRequest(contribution_id="K1", card=SopCard(card_id="L1")),
        "sup-a",
    )
    done = await accept(k, "K1", "L1", tags=["pricing"])
    card = done.card
    assert card.status == CardStatus.CARD_STATUS_PUBLISHED and card.kind == CardKind.CARD_KIND_LIGHT
    assert (
        card.source_contribution_id == "K1"
        and card.author_user_id == "rep-a1"
        and card.owner_user_id == "admin"
    )
    # Derived from the case: title, scenario, industry, stage; steps and objections become actions.
    assert card.title == "价格谈崩后两周挽回签约" and list(card.industries) == ["manufacturing"]
    assert [a.text for a in card.must_do_actions] == [
        "1. 先确认预算区间",
        "2. 拆分交付阶段，首期降到预算内",
        "你们比竞品贵 20%",
    ]
    assert card.must_do_actions[2].example == "算三年总成本给他看" and list(card.tags) == ["pricing"]
    contribution = done.contribution
    assert contribution.status == ST.CONTRIBUTION_STATUS_ACCEPTED and contribution.published_card_id == "L1"
    assert contribution.points_awarded == 11 and contribution.reviewer_user_id == "admin"
    # A replay returns the same; the rep sees the published card.
    assert (await accept(k, "K1", "L1")).contribution.etag == contribution.etag
    got = (await k.call("GetSopCard", pb.GetSopCardRequest(card_id="L1"), "rep-a2")).card
    assert got.kind == CardKind.CARD_KIND_LIGHT
    # Reject: a reason category and a comment are required.
    await submit(k, "K2", user="rep-a2", title="重复的案例")
    for reason, comment in ((0, "重复"), (c.CONTRIBUTION_REJECTION_REASON_DUPLICATE, " ")):
        req = pb.RejectContributionRequest(contribution_id="K2", review_comment=comment)
        req.rejection_reason = reason  # type: ignore[assignment]
        await k.fails(INVALID, "RejectContribution", req)
    req = pb.RejectContributionRequest(
        contribution_id="K2",
        rejection_reason=c.CONTRIBUTION_REJECTION_REASON_DUPLICATE,
        review_comment="卡片 L1 已覆盖",
    )
    await k.fails(DENIED, "RejectContribution", req, "rep-a2")
    rejected = (await k.call("RejectContribution", req)).contribution
    assert rejected.status == ST.CONTRIBUTION_STATUS_REJECTED and rejected.review_comment == "卡片 L1 已覆盖"
    assert (await k.call("RejectContribution", req)).contribution.etag == rejected.etag  # repeated: same
    await k.fails(
        grpc.StatusCode.FAILED_PRECONDITION,
        "AcceptContribution",
        pb.AcceptContributionRequest(contribution_id="K2", card=SopCard(card_id="L2")),
    )
    # Events for notify: submitted, reviewed (accepted with points, rejected with the reason), published.
    envs = await outbox_events(k)
    reviewed = [
        unpack_payload(e, events_pb2.ContributionReviewed)
        for e in envs
        if e.type == "knowledge.ContributionReviewed"
    ]
    assert [(r.contribution_id, r.outcome, r.points_awarded, r.published_card_id) for r in reviewed] == [
        ("K1", ST.CONTRIBUTION_STATUS_ACCEPTED, 10, "L1"),
        ("K2", ST.CONTRIBUTION_STATUS_REJECTED, 0, ""),
    ]
    assert reviewed[1].rejection_reason == c.CONTRIBUTION_REJECTION_REASON_DUPLICATE
    published = [
        unpack_payload(e, events_pb2.CardPublished) for e in envs if e.type == "knowledge.CardPublished"
    ]
    assert [(p.card_id, p.kind, p.source_contribution_id) for p in published] == [
        ("L1", CardKind.CARD_KIND_LIGHT, "K1")
    ]
    assert len([e for e in envs if e.type == "knowledge.ContributionSubmitted"]) == 2


async def use_card(k: Knowledge, use_id: str, user: str, deal: str, rating: int = 0) -> None:
    u = CardUse(use_id=use_id, deal_id=deal, industry="manufacturing", stage_id="negotiation")
    await k.call("RecordSopCardUse", pb.RecordSopCardUseRequest(card_id="L1", use=u), user)
    if rating:
        category = (
            0
            if rating == FeedbackRating.FEEDBACK_RATING_FULLY
            else FeedbackReasonCategory.FEEDBACK_REASON_CATEGORY_TOO_GENERIC
        )
        fb = CardFeedback(rating=rating, reason_category=category, reason="有用")  # type: ignore[arg-type]
        await k.call("SubmitCardFeedback", pb.SubmitCardFeedbackRequest(use_id=use_id, feedback=fb), user)


async def ledger(k: Knowledge, user: str, viewer: str = "admin") -> pb.ListPointEntriesResponse:
    return await k.call("ListPointEntries", pb.ListPointEntriesRequest(user_id=user), viewer)  # type: ignore[no-any-return]


async def test_points_once_per_source_with_the_cap_leaderboard_and_adjustments(knowledge: Knowledge) -> None:
    k = knowledge
    await submit(k, "K1")
    await accept(k, "K1", "L1")
    seen: set[str] = set()
    fully = FeedbackRating.FEEDBACK_RATING_FULLY
    await use_card(k, "U1", "rep-a2", "D1", fully)  # used +1, praised +2
    await use_card(k, "U2", "rep-a2", "D1")  # a repeat use on the same deal: nothing
    await use_card(k, "U3", "rep-a1", "D2", fully)  # the contributor's own use: nothing
    await use_card(k, "U4", "rep-b1", "D3", FeedbackRating.FEEDBACK_RATING_PARTLY)  # used +1
    await consume(k, seen)
    entries = (await ledger(k, "rep-a1", "rep-a1")).entries
    reasons = sorted(c.PointReason.Name(e.reason) for e in entries)  # type: ignore[arg-type]
    assert reasons == sorted(
        [
            "POINT_REASON_CONTRIBUTION_SUBMITTED",
            "POINT_REASON_CONTRIBUTION_ACCEPTED",
            "POINT_REASON_CONTRIBUTED_CARD_USED",
            "POINT_REASON_CONTRIBUTED_CARD_PRAISED",
            "POINT_REASON_CONTRIBUTED_CARD_USED",
        ]
    )
    assert (await ledger(k, "rep-a1")).total_points == 1 + 10 + 1 + 2 + 1
    # The monthly cap on use points per card (here 5: 4 booked, one more point allowed).
    mask = FieldMask(paths=["points.monthly_use_points_cap_per_card"])
    s = settings_pb2.KnowledgeSettings(points=settings_pb2.PointsPolicy(monthly_use_points_cap_per_card=5))
    await k.call("UpdateKnowledgeSettings", pb.UpdateKnowledgeSettingsRequest(settings=s, update_mask=mask))
    await use_card(k, "U5", "rep-a3", "D4", fully)  # used +1 (cap reached), praise: nothing
    await use_card(k, "U6", "rep-a4", "D5")
    await consume(k, seen)
    assert (await ledger(k, "rep-a1")).total_points == 15 + 1
    # Who sees a ledger: the user, managers over them, admins; not another rep.
    await k.fails(DENIED, "ListPointEntries", pb.ListPointEntriesRequest(user_id="rep-a1"), "rep-a2")
    assert (await ledger(k, "rep-a1", "sup-a")).total_points == 16
    assert (await ledger(k, "rep-a1", "sup-b")).entries == []

    # Admin adjustments: idempotent on the request id, a reason required, audited in the ledger.
    adj = pb.AdjustPointsRequest(request_id="ADJ1", user_id="rep-a1", points=-6, note="刷用次数")
    await k.fails(DENIED, "AdjustPoints", adj, "sup-a")
    for bad in (
        pb.AdjustPointsRequest(request_id="ADJ2", user_id="rep-a1", points=0, note="x"),
        pb.AdjustPointsRequest(request_id="ADJ2", user_id="rep-a1", points=3, note=" "),
    ):
        await k.fails(INVALID, "AdjustPoints", bad)
    entry = (await k.call("AdjustPoints", adj)).entry
    assert entry.entry_id == "ADJ1" and entry.reason == c.POINT_REASON_ADJUSTMENT and entry.note == "刷用次数"
    assert (await k.call("AdjustPoints", adj)).entry == entry
    await k.fails(
        grpc.StatusCode.ALREADY_EXISTS,
        "AdjustPoints",
        pb.AdjustPointsRequest(request_id="ADJ1", user_id="rep-a1", points=6, note="刷用次数"),
    )
    assert (await ledger(k, "rep-a1")).total_points == 10
    # A second contributor in team B, tied with rep-a1 at 10 after their acceptance: ties share a rank.
    await submit(k, "K9", user="rep-b1")
    await accept(k, "K9", "L9")
    await k.call(
        "AdjustPoints", pb.AdjustPointsRequest(request_id="ADJ3", user_id="rep-b1", points=-1, note="对齐")
    )
    board = await k.call("GetContributorLeaderboard", pb.GetContributorLeaderboardRequest(), "rep-a2")
    rows = [(e.rank, e.user_id, e.points) for e in board.entries]
    assert rows == [(1, "rep-a1", 10), (1, "rep-b1", 10)]
    first = board.entries[0]
    assert (
        first.org_path,
        first.submitted_contributions,
        first.accepted_contributions,
        first.uses_by_others,
    ) == (
        "east/team-a",
        1,
        1,
        3,
    )
    assert board.period.HasField("start_time") and not board.HasField("caller_entry")  # rep-a2 has no points
    team_b = pb.GetContributorLeaderboardRequest(org_path="east/team-b", page_size=1)
    mine = await k.call("GetContributorLeaderboard", team_b, "rep-b1")
    assert [e.user_id for e in mine.entries] == ["rep-b1"] and mine.caller_entry.rank == 1
    paged = await k.call("GetContributorLeaderboard", pb.GetContributorLeaderboardRequest(page_size=1))
    nxt = pb.GetContributorLeaderboardRequest(page_size=1, page_token=paged.next_page_token)
    assert [e.user_id for e in (await k.call("GetContributorLeaderboard", nxt)).entries] == ["rep-b1"]
    forged = pb.GetContributorLeaderboardRequest(
        page_size=1, page_token=paged.next_page_token, org_path="east"
    )
    await k.fails(INVALID, "GetContributorLeaderboard", forged)
    all_time = pb.GetContributorLeaderboardRequest(period=c.LEADERBOARD_PERIOD_ALL_TIME)
    assert not (await k.call("GetContributorLeaderboard", all_time)).HasField("period")
    # Another tenant has its own board and ledger.
    assert (
        await k.call("GetContributorLeaderboard", pb.GetContributorLeaderboardRequest(), tenant="acme")
    ).entries == []


async def test_demo_cases_seed_idempotently(knowledge: Knowledge) -> None:
    from services.knowledge import seed
    from services.knowledge.seed_cards import CARDS
    from services.knowledge.seed_contributions import seed_contributions
    from tests.knowledge.conftest import token

    def md(user: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {token(user)}"),)

    k = knowledge
    for demo in CARDS:
        await seed.seed_card(k.stub, md, demo)
    for _ in range(2):
        await seed_contributions(k.stub, md)
    listed = (await k.call("ListContributions", pb.ListContributionsRequest())).contributions
    assert [(x.contribution_id, x.status) for x in listed] == [
        ("demo-case-01", ST.CONTRIBUTION_STATUS_ACCEPTED),
        ("demo-case-02", ST.CONTRIBUTION_STATUS_SUBMITTED),
        ("demo-case-03", ST.CONTRIBUTION_STATUS_REJECTED),
    ]
    board = (await k.call("GetContributorLeaderboard", pb.GetContributorLeaderboardRequest())).entries
    assert [(e.user_id, e.points) for e in board] == [("rep-a1", 11), ("rep-a2", 1), ("rep-b1", 1)]
