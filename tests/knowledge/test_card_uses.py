"""Card uses and feedback duties through the gRPC API: one duty per (rep, card, deal), validation, access."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1.usage_pb2 import (
    CardFeedback,
    CardUse,
    FeedbackRating,
    FeedbackReasonCategory,
    FeedbackState,
)
from tests.knowledge.conftest import Knowledge
from tests.knowledge.helpers import card, publish

S = FeedbackState
R = FeedbackRating
NOT_FOUND = grpc.StatusCode.NOT_FOUND
INVALID = grpc.StatusCode.INVALID_ARGUMENT
DENIED = grpc.StatusCode.PERMISSION_DENIED


def stamp(at: datetime) -> Timestamp:
    out = Timestamp()
    out.FromDatetime(at)
    return out


def use(use_id: str, deal: str = "D1", **fields: object) -> CardUse:
    values: dict[str, object] = {"industry": "manufacturing", "stage_id": "negotiation", **fields}
    return CardUse(use_id=use_id, deal_id=deal, **values)  # type: ignore[arg-type]


async def record(
    k: Knowledge, use_id: str, user: str = "rep-a1", card_id: str = "C1", **kw: object
) -> pb.RecordSopCardUseResponse:
    req = pb.RecordSopCardUseRequest(card_id=card_id, use=use(use_id, **kw))  # type: ignore[arg-type]
    return await k.call("RecordSopCardUse", req, user=user)  # type: ignore[no-any-return]


async def duties(k: Knowledge, user: str, **kw: object) -> pb.ListFeedbackDutiesResponse:
    return await k.call("ListFeedbackDuties", pb.ListFeedbackDutiesRequest(**kw), user=user)  # type: ignore[no-any-return, arg-type]


async def test_a_use_opens_one_duty_and_a_repeat_use_none(knowledge: Knowledge) -> None:
    k = knowledge
    await publish(k, card("C1"))
    before = datetime.now(UTC)
    first = await record(k, "U1", use_time=stamp(before - timedelta(hours=1)))
    assert not first.deduplicated
    u = first.use
    assert (u.card_id, u.card_version, u.user_id, u.deal_id) == ("C1", 1, "rep-a1", "D1")
    assert u.feedback_state == S.FEEDBACK_STATE_PENDING
    assert u.feedback_due_time.ToDatetime(tzinfo=UTC) - u.use_time.ToDatetime(tzinfo=UTC) == timedelta(
        hours=48
    )
    # A replay of the same use is the same use; other content under its id is refused.
    again = await record(k, "U1", use_time=stamp(before - timedelta(hours=1)))
    assert again.use == u and not again.deduplicated
    await k.fails(
        grpc.StatusCode.ALREADY_EXISTS,
        "RecordSopCardUse",
        pb.RecordSopCardUseRequest(card_id="C1", use=use("U1", deal="D9")),
        user="rep-a1",
    )
    # A second use on the same deal is recorded (usage) but attaches to the open duty.
    repeat = await record(k, "U2")
    assert repeat.deduplicated and repeat.use.use_id == "U2"
    assert repeat.use.feedback_due_time == u.feedback_due_time
    # Another deal, another rep: their own duties.
    await record(k, "U3", deal="D2")
    await record(k, "U4", user="rep-a2")
    mine = await duties(k, "rep-a1")
    assert [(d.use_id, d.deal_id) for d in mine.duties] == [
        ("U1", "D1"),
        ("U3", "D2"),
    ] and mine.total_size == 2
    assert mine.duties[0].card_title == "价格谈崩时的三步挽回" and mine.duties[0].org_path == "east/team-a"
    listed = await k.call(
        "ListCardUses", pb.ListCardUsesRequest(filter=pb.CardUseFilter(deal_id="D1")), user="rep-a1"
    )
    assert [x.use_id for x in listed.uses] == ["U2", "U1"]
    # Rating either use of the duty settles it.
    fb = CardFeedback(rating=R.FEEDBACK_RATING_FULLY)
    rated = await k.call(
        "SubmitCardFeedback", pb.SubmitCardFeedbackRequest(use_id="U2", feedback=fb), user="rep-a1"
    )
    assert rated.use.feedback_state == S.FEEDBACK_STATE_SUBMITTED and not rated.use.feedback.late
    got = await k.call("GetCardUse", pb.GetCardUseRequest(use_id="U1"), user="rep-a1")
    assert got.use.feedback.rating == R.FEEDBACK_RATING_FULLY
    assert [d.use_id for d in (await duties(k, "rep-a1")).duties] == ["U3"]
    # The same feedback again is a no-op; different feedback is refused.
    await k.call("SubmitCardFeedback", pb.SubmitCardFeedbackRequest(use_id="U1", feedback=fb), user="rep-a1")
    other = CardFeedback(
        rating=R.FEEDBACK_RATING_NOT_APPLICABLE,
        reason_category=FeedbackReasonCategory.FEEDBACK_REASON_CATEGORY_OUTDATED,
        reason="旧价格",
    )
    await k.fails(
        grpc.StatusCode.FAILED_PRECONDITION,
        "SubmitCardFeedback",
        pb.SubmitCardFeedbackRequest(use_id="U1", feedback=other),
        user="rep-a1",
    )
    # A use after the duty was rated still opens no second one.
    assert (await record(k, "U5")).deduplicated
    submitted = await duties(k, "rep-a1", states=[S.FEEDBACK_STATE_SUBMITTED])
    assert [d.use_id for d in submitted.duties] == ["U1"]


async def test_bad_uses_and_feedback_are_refused(knowledge: Knowledge) -> None:
    k = knowledge
    await publish(k, card("C1"))
    await k.call("CreateSopCard", pb.CreateSopCardRequest(card=card("DRAFT")))
    now = datetime.now(UTC)
    bad = [
        CardUse(use_id="B1"),  # no deal or lead
        CardUse(deal_id="D1"),  # no use id
        use("B2", use_time=stamp(now - timedelta(days=8))),
        use("B3", use_time=stamp(now + timedelta(hours=1))),
        use("B4", stage_id="x" * 65),
    ]
    for u in bad:
        await k.fails(
            INVALID, "RecordSopCardUse", pb.RecordSopCardUseRequest(card_id="C1", use=u), user="rep-a1"
        )
    await k.fails(
        grpc.StatusCode.FAILED_PRECONDITION,
        "RecordSopCardUse",
        pb.RecordSopCardUseRequest(card_id="DRAFT", use=use("B5")),
        user="admin",
    )
    await k.fails(
        NOT_FOUND,
        "RecordSopCardUse",
        pb.RecordSopCardUseRequest(card_id="NOPE", use=use("B6")),
        user="rep-a1",
    )
    await record(k, "U1")
    missing_reason = [
        CardFeedback(),  # no rating
        CardFeedback(rating=R.FEEDBACK_RATING_PARTLY),  # no reason
        CardFeedback(rating=R.FEEDBACK_RATING_NOT_APPLICABLE, reason="不适用"),  # no category
        CardFeedback(rating=R.FEEDBACK_RATING_FULLY, reason="x" * 1001),
    ]
    for fb in missing_reason:
        await k.fails(
            INVALID,
            "SubmitCardFeedback",
            pb.SubmitCardFeedbackRequest(use_id="U1", feedback=fb),
            user="rep-a1",
        )
    await k.fails(
        NOT_FOUND,
        "SubmitCardFeedback",
        pb.SubmitCardFeedbackRequest(use_id="NOPE", feedback=CardFeedback(rating=R.FEEDBACK_RATING_FULLY)),
        user="rep-a1",
    )


async def test_reps_see_their_own_supervisors_their_team_other_tenants_nothing(knowledge: Knowledge) -> None:
    k = knowledge
    await publish(k, card("C1"))
    await record(k, "A1", user="rep-a1")
    await record(k, "B1", user="rep-b1", deal="D2")
    get = pb.GetCardUseRequest(use_id="A1")
    for user in ("rep-a1", "sup-a", "director-east", "admin"):
        assert (await k.call("GetCardUse", get, user=user)).use.use_id == "A1", user
    for user in ("rep-a2", "sup-b", "rep-b1"):
        await k.fails(NOT_FOUND, "GetCardUse", get, user=user)
    await k.fails(NOT_FOUND, "GetCardUse", get, user="rep-a1", tenant="acme")
    fb = pb.SubmitCardFeedbackRequest(use_id="A1", feedback=CardFeedback(rating=R.FEEDBACK_RATING_FULLY))
    await k.fails(NOT_FOUND, "SubmitCardFeedback", fb, user="rep-a2")
    await k.fails(NOT_FOUND, "SubmitCardFeedback", fb, user="rep-a1", tenant="acme")
    await k.fails(DENIED, "SubmitCardFeedback", fb, user="sup-a")  # sees it, but only the rep rates it
    # Lists: reps their own; managers their subtree.
    all_uses = pb.ListCardUsesRequest()
    assert [u.use_id for u in (await k.call("ListCardUses", all_uses, user="rep-a2")).uses] == []
    assert [u.use_id for u in (await k.call("ListCardUses", all_uses, user="sup-a")).uses] == ["A1"]
    assert sorted(u.use_id for u in (await k.call("ListCardUses", all_uses, user="director-east")).uses) == [
        "A1",
        "B1",
    ]
    await k.fails(DENIED, "ListFeedbackDuties", pb.ListFeedbackDutiesRequest(user_id="rep-a1"), user="rep-a2")
    await k.fails(
        DENIED, "ListFeedbackDuties", pb.ListFeedbackDutiesRequest(org_path="east/team-a"), user="sup-b"
    )
    team = await duties(k, "sup-a", org_path="east/team-a")
    assert [d.use_id for d in team.duties] == ["A1"]
    assert [d.use_id for d in (await duties(k, "sup-a", user_id="rep-a1")).duties] == ["A1"]
    assert [d.use_id for d in (await duties(k, "sup-a", user_id="rep-b1")).duties] == []  # outside team-a
    assert sorted(d.use_id for d in (await duties(k, "director-east", org_path="east")).duties) == [
        "A1",
        "B1",
    ]
    assert (await duties(k, "rep-a1")).total_size == 1
    acme = await k.call("ListFeedbackDuties", pb.ListFeedbackDutiesRequest(), user="rep-a1", tenant="acme")
    assert list(acme.duties) == []


async def test_concurrent_first_uses_open_one_duty(knowledge: Knowledge) -> None:
    k = knowledge
    await publish(k, card("C1"))
    results = await asyncio.gather(*(record(k, f"P{i}", deal="DX") for i in range(4)))
    assert sum(not r.deduplicated for r in results) == 1  # one opened the duty, the others attached
    [duty] = (await duties(k, "rep-a1")).duties
    listed = await k.call(
        "ListCardUses", pb.ListCardUsesRequest(filter=pb.CardUseFilter(deal_id="DX")), user="rep-a1"
    )
    assert len(listed.uses) == 4
    assert {u.feedback_due_time.ToDatetime() for u in listed.uses} == {duty.due_time.ToDatetime()}
