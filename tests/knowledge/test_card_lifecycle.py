"""SOP card lifecycle: draft -> review -> published -> retired and back, with who and why;
every publish freezes an immutable version; events for notify."""

from __future__ import annotations

import asyncio

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from sqlalchemy import select

from kit.events import parse_envelope, unpack_payload
from salesops.knowledge.v1 import events_pb2
from salesops.knowledge.v1 import knowledge_service_pb2 as pb
from salesops.knowledge.v1.sop_card_pb2 import CardAction, CardStatus
from services.knowledge.store import outbox
from tests.knowledge.conftest import Knowledge
from tests.knowledge.helpers import card

S = CardStatus


async def test_lifecycle_versions_history_and_events(knowledge: Knowledge) -> None:
    k = knowledge
    created = (await k.call("CreateSopCard", pb.CreateSopCardRequest(card=card("C1")), user="sup-a")).card
    assert created.status == S.CARD_STATUS_DRAFT and created.version == 0
    assert created.author_user_id == created.owner_user_id == "sup-a"
    # A replay of the same create is the same card; other content under the id is refused.
    again = (await k.call("CreateSopCard", pb.CreateSopCardRequest(card=card("C1")), user="sup-a")).card
    assert again.etag == created.etag
    await k.fails(
        grpc.StatusCode.ALREADY_EXISTS,
        "CreateSopCard",
        pb.CreateSopCardRequest(card=card("C1", "other")),
        "sup-a",
    )
    # Publishing straight from draft is refused: the status is compare-and-set.
    err = await k.fails(
        grpc.StatusCode.FAILED_PRECONDITION, "PublishSopCard", pb.PublishSopCardRequest(card_id="C1")
    )
    assert "CARD_STATUS_DRAFT" in (err.details() or "")
    await k.call(
        "SubmitSopCardForReview", pb.SubmitSopCardForReviewRequest(card_id="C1", note="ready"), "sup-a"
    )
    # Only admins (sales ops) publish.
    await k.fails(
        grpc.StatusCode.PERMISSION_DENIED, "PublishSopCard", pb.PublishSopCardRequest(card_id="C1"), "sup-a"
    )
    published = await k.call("PublishSopCard", pb.PublishSopCardRequest(card_id="C1", change_note="first"))
    assert published.card.status == S.CARD_STATUS_PUBLISHED and published.card.version == 1
    assert published.version.version == 1 and published.version.card.title == "价格谈崩时的三步挽回"
    assert published.version.published_by_user_id == "admin" and published.version.change_note == "first"

    # Content of a published card changes only through review; placement changes in place.
    retitle = pb.UpdateSopCardRequest(card=card("C1", "新标题"), update_mask=FieldMask(paths=["title"]))
    await k.fails(grpc.StatusCode.FAILED_PRECONDITION, "UpdateSopCard", retitle)
    retag = pb.UpdateSopCardRequest(
        card=card("C1", tags=["pricing", "discount"]), update_mask=FieldMask(paths=["tags"])
    )
    tagged = (await k.call("UpdateSopCard", retag)).card
    assert list(tagged.tags) == ["pricing", "discount"] and tagged.version == 1
    # A stale etag is ABORTED.
    stale = pb.RetireSopCardRequest(card_id="C1", reason="old", etag=published.card.etag)
    await k.fails(grpc.StatusCode.ABORTED, "RetireSopCard", stale)

    back = pb.ReturnSopCardToReviewRequest(card_id="C1", reason="pricing changed")
    await k.fails(
        grpc.StatusCode.INVALID_ARGUMENT,
        "ReturnSopCardToReview",
        pb.ReturnSopCardToReviewRequest(card_id="C1"),
    )
    assert (await k.call("ReturnSopCardToReview", back)).card.status == S.CARD_STATUS_IN_REVIEW
    retitled = (await k.call("UpdateSopCard", retitle)).card
    assert retitled.title == "新标题"
    v2 = await k.call("PublishSopCard", pb.PublishSopCardRequest(card_id="C1", change_note="new title"))
    assert v2.card.version == 2 and v2.version.card.title == "新标题"
    # Version 1 is immutable: what was used before still reads as it was.
    v1 = (await k.call("GetSopCardVersion", pb.GetSopCardVersionRequest(card_id="C1", version=1))).version
    assert v1.card.title == "价格谈崩时的三步挽回" and v1.change_note == "first"
    listed = (await k.call("ListSopCardVersions", pb.ListSopCardVersionsRequest(card_id="C1"))).versions
    assert [v.version for v in listed] == [2, 1]
    await k.fails(
        grpc.StatusCode.NOT_FOUND, "GetSopCardVersion", pb.GetSopCardVersionRequest(card_id="C1", version=3)
    )

    retired = (await k.call("RetireSopCard", pb.RetireSopCardRequest(card_id="C1", reason="usage 3%"))).card
    assert retired.status == S.CARD_STATUS_RETIRED and retired.status_reason == "usage 3%"
    retag_retired = pb.UpdateSopCardRequest(
        card=card("C1", tags=["late"]), update_mask=FieldMask(paths=["tags"])
    )
    await k.fails(grpc.StatusCode.FAILED_PRECONDITION, "UpdateSopCard", retag_retired)
    await k.fails(grpc.StatusCode.FAILED_PRECONDITION, "DeleteSopCard", pb.DeleteSopCardRequest(card_id="C1"))
    # Revived through review, then sent back to its author as a draft.
    await k.call("ReturnSopCardToReview", pb.ReturnSopCardToReviewRequest(card_id="C1", reason="revive"))
    draft = pb.ReturnSopCardToDraftRequest(card_id="C1", comment="add a proof point")
    assert (await k.call("ReturnSopCardToDraft", draft)).card.status == S.CARD_STATUS_DRAFT

    history = (
        await k.call("ListSopCardStatusChanges", pb.ListSopCardStatusChangesRequest(card_id="C1"))
    ).status_changes
    assert [(h.from_status, h.to_status, h.actor_user_id, h.reason) for h in history] == [
        (S.CARD_STATUS_UNSPECIFIED, S.CARD_STATUS_DRAFT, "sup-a", "created"),
        (S.CARD_STATUS_DRAFT, S.CARD_STATUS_IN_REVIEW, "sup-a", "ready"),
        (S.CARD_STATUS_IN_REVIEW, S.CARD_STATUS_PUBLISHED, "admin", "first"),
        (S.CARD_STATUS_PUBLISHED, S.CARD_STATUS_IN_REVIEW, "admin", "pricing changed"),
        (S.CARD_STATUS_IN_REVIEW, S.CARD_STATUS_PUBLISHED, "admin", "new title"),
        (S.CARD_STATUS_PUBLISHED, S.CARD_STATUS_RETIRED, "admin", "usage 3%"),
        (S.CARD_STATUS_RETIRED, S.CARD_STATUS_IN_REVIEW, "admin", "revive"),
        (S.CARD_STATUS_IN_REVIEW, S.CARD_STATUS_DRAFT, "admin", "add a proof point"),
    ]
    assert [h.version for h in history][2:6] == [1, 1, 2, 2]

    async with k.db.engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.type, outbox.c.envelope).order_by(outbox.c.id))).all()
    assert [t for t, _ in rows] == [
        "knowledge.CardPublished",
        "knowledge.CardReturnedToReview",
        "knowledge.CardPublished",
        "knowledge.CardRetired",
        "knowledge.CardReturnedToReview",
    ]
    first = unpack_payload(parse_envelope(rows[0][1]), events_pb2.CardPublished)
    assert (first.card_id, first.version, first.published_by) == ("C1", 1, "admin")
    assert list(first.industries) == ["manufacturing"] and list(first.stage_ids) == ["negotiation"]
    gone = unpack_payload(parse_envelope(rows[3][1]), events_pb2.CardRetired)
    assert (gone.version, gone.reason, gone.retired_by) == (2, "usage 3%", "admin")


async def test_review_needs_a_complete_card_and_bad_input_is_refused(knowledge: Knowledge) -> None:
    k = knowledge
    bare = card("C2", must_do_actions=[])
    await k.call("CreateSopCard", pb.CreateSopCardRequest(card=bare))
    err = await k.fails(
        grpc.StatusCode.FAILED_PRECONDITION,
        "SubmitSopCardForReview",
        pb.SubmitSopCardForReviewRequest(card_id="C2"),
    )
    assert "must_do_actions" in (err.details() or "")
    bad = [
        card("C3", scenario="no_such_scenario"),
        card("C4", title=""),
        card("C5", title="x" * 121),
        card("C6", industries=["bad industry!"]),
        card("C7", visibility=2),  # ORG_UNITS without paths
        card("C8", language_code="fr"),
        card("../x"),
        card("C9", must_do_actions=[CardAction(text="")]),
    ]
    for c in bad:
        await k.fails(grpc.StatusCode.INVALID_ARGUMENT, "CreateSopCard", pb.CreateSopCardRequest(card=c))
    # Nothing of the refused creates was written.
    listed = (await k.call("ListSopCards", pb.ListSopCardsRequest())).cards
    assert [c.card_id for c in listed] == ["C2"]
    # A never-published card may be deleted.
    await k.call("DeleteSopCard", pb.DeleteSopCardRequest(card_id="C2"))
    await k.fails(grpc.StatusCode.NOT_FOUND, "GetSopCard", pb.GetSopCardRequest(card_id="C2"))


async def test_concurrent_publishes_freeze_one_version(knowledge: Knowledge) -> None:

    k = knowledge
    await k.call("CreateSopCard", pb.CreateSopCardRequest(card=card("C9")))
    await k.call("SubmitSopCardForReview", pb.SubmitSopCardForReviewRequest(card_id="C9"))
    req = pb.PublishSopCardRequest(card_id="C9", change_note="race")
    outcomes = await asyncio.gather(
        *(k.call("PublishSopCard", req) for _ in range(4)), return_exceptions=True
    )
    won = [o for o in outcomes if not isinstance(o, BaseException)]
    lost = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(won) == 1 and len(lost) == 3, outcomes
    assert {e.code() for e in lost} <= {grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ABORTED}
    versions = (await k.call("ListSopCardVersions", pb.ListSopCardVersionsRequest(card_id="C9"))).versions
    assert [v.version for v in versions] == [1]
    odd = card("C10", visibility=99)  # an enum value the contract does not know
    await k.fails(grpc.StatusCode.INVALID_ARGUMENT, "CreateSopCard", pb.CreateSopCardRequest(card=odd))
