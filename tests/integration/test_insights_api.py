"""Conversation insights over real gRPC: keyword dictionary CRUD, submit + hits + events, who reads what."""

# ruff: noqa: RUF001  (Chinese punctuation and full-width letters are the point of these transcripts)

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import select

from kit.events import EventEnvelope, unpack_payload
from salesops.integration.v1 import events_pb2 as ev
from salesops.integration.v1 import insights_pb2 as i
from salesops.integration.v1 import integration_service_pb2 as pb
from services.integration.store import outbox
from tests.integration.conftest import Integration

START = Timestamp()
START.FromDatetime(datetime(2026, 12, 1, 10, 0, tzinfo=UTC))


def keyword(kid: str, term: str, category: int, *synonyms: str, **kw: bool) -> pb.CreateInsightKeywordRequest:
    return pb.CreateInsightKeywordRequest(
        keyword=i.InsightKeyword(keyword_id=kid, term=term, category=category, synonyms=synonyms, **kw)  # type: ignore[arg-type]
    )


DICTIONARY = [
    keyword("kw-budget", "预算", i.KEYWORD_CATEGORY_BUDGET, "budget"),
    keyword("kw-tender", "招标", i.KEYWORD_CATEGORY_TENDER, "tender", "RFP"),
    keyword("kw-approval", "领导还没批", i.KEYWORD_CATEGORY_APPROVAL, "the boss has not approved"),
]


def conversation(cid: str, deal_id: str = "D-1", *turns: tuple[int, str]) -> pb.SubmitConversationRequest:
    segments = [i.TranscriptSegment(speaker=s, text=t) for s, t in turns] or [
        i.TranscriptSegment(speaker=i.SPEAKER_REP, text="请问今年的预算有多少？"),
        i.TranscriptSegment(
            speaker=i.SPEAKER_CUSTOMER, text="Budget is tight, and the boss has not approved."
        ),
        i.TranscriptSegment(speaker=i.SPEAKER_CUSTOMER, text="另外要走招标，预算下个月定。"),
    ]
    return pb.SubmitConversationRequest(
        conversation=i.Conversation(
            conversation_id=cid,
            deal_id=deal_id,
            channel=i.CONVERSATION_CHANNEL_PHONE_CALL,
            start_time=START,
            segments=segments,
        )
    )


async def code_of(
    integration: Integration, method: str, request: object, user: str, tenant: str = "demo"
) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await integration.call(method, request, user, tenant)
    return err.value.code()


async def emitted(integration: Integration) -> list[ev.KeywordsExtracted]:
    async with integration.db.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(outbox.c.envelope).where(outbox.c.type == "integration.KeywordsExtracted")
            )
        ).all()
    return [unpack_payload(EventEnvelope.FromString(r[0]), ev.KeywordsExtracted) for r in rows]


async def test_keyword_dictionary_crud_for_admins(integration: Integration) -> None:
    created = await integration.call("CreateInsightKeyword", DICTIONARY[0])
    assert created.keyword.term == "预算" and list(created.keyword.synonyms) == ["budget"]
    again = await integration.call("CreateInsightKeyword", DICTIONARY[0])  # an identical replay
    assert again.keyword.etag == created.keyword.etag
    # The same term (folded) under another id; a bad request; a rep; each refused with its code.
    dup = keyword("kw-other", " 预算 ", i.KEYWORD_CATEGORY_OTHER)
    assert await code_of(integration, "CreateInsightKeyword", dup, "admin") == grpc.StatusCode.ALREADY_EXISTS
    bad = keyword("kw-bad", "", 0)
    assert (
        await code_of(integration, "CreateInsightKeyword", bad, "admin") == grpc.StatusCode.INVALID_ARGUMENT
    )
    assert (
        await code_of(integration, "CreateInsightKeyword", DICTIONARY[1], "rep-a1")
        == grpc.StatusCode.PERMISSION_DENIED
    )
    for req in DICTIONARY[1:]:
        await integration.call("CreateInsightKeyword", req)
    listed = await integration.call("ListInsightKeywords", pb.ListInsightKeywordsRequest(), "rep-a1")
    assert sorted(k.term for k in listed.keywords) == sorted(
        ["招标", "领导还没批", "预算"]
    )  # by term (collation)
    update = pb.UpdateInsightKeywordRequest(
        keyword=i.InsightKeyword(
            keyword_id="kw-budget", synonyms=["budget", "预算不够"], disabled=True, etag=created.keyword.etag
        ),
        update_mask=FieldMask(paths=["synonyms", "disabled"]),
    )
    updated = await integration.call("UpdateInsightKeyword", update)
    assert list(updated.keyword.synonyms) == ["budget", "预算不够"] and updated.keyword.disabled
    assert (
        await code_of(integration, "UpdateInsightKeyword", update, "admin") == grpc.StatusCode.ABORTED
    )  # stale
    enabled = await integration.call("ListInsightKeywords", pb.ListInsightKeywordsRequest())
    assert "预算" not in [k.term for k in enabled.keywords]
    every = await integration.call(
        "ListInsightKeywords", pb.ListInsightKeywordsRequest(include_disabled=True)
    )
    assert len(every.keywords) == 3
    # Another tenant does not see it.
    gone = pb.DeleteInsightKeywordRequest(keyword_id="kw-budget")
    assert (
        await code_of(integration, "DeleteInsightKeyword", gone, "admin", "acme") == grpc.StatusCode.NOT_FOUND
    )
    await integration.call("DeleteInsightKeyword", gone)
    assert await code_of(integration, "DeleteInsightKeyword", gone, "admin") == grpc.StatusCode.NOT_FOUND


async def test_submit_finds_who_said_what_where_and_attaches_it_to_the_deal(integration: Integration) -> None:
    for req in DICTIONARY:
        await integration.call("CreateInsightKeyword", req)
    submitted = await integration.call("SubmitConversation", conversation("conv-1"), "rep-a1")
    conv = submitted.conversation
    assert conv.analysis_state == i.ANALYSIS_STATE_COMPLETED and conv.submitted_by == "rep-a1"
    assert conv.org_path == "east/team-a"
    assert [(k.term, k.count, k.said_by_customer) for k in conv.keywords] == [
        ("预算", 3, True),
        ("招标", 1, True),
        ("领导还没批", 1, True),
    ]
    where = [(o.keyword_id, o.segment_index, o.speaker, o.matched_text) for o in conv.occurrences]
    assert where[:3] == [
        ("kw-budget", 0, i.SPEAKER_REP, "预算"),
        ("kw-budget", 1, i.SPEAKER_CUSTOMER, "Budget"),
        ("kw-approval", 1, i.SPEAKER_CUSTOMER, "the boss has not approved"),
    ]
    assert not conv.stored_segments  # BASIC view
    # A retried submit is the same conversation; the hits are attached to the deal once, by event.
    again = await integration.call("SubmitConversation", conversation("conv-1"), "rep-a1")
    assert again.conversation.conversation_id == "conv-1"
    [event] = await emitted(integration)
    assert event.deal_id == "D-1" and event.conversation_id == "conv-1" and event.submitted_by == "rep-a1"
    budget = next(h for h in event.keywords if h.keyword_id == "kw-budget")
    assert budget.count == 3 and [o.segment_index for o in budget.occurrences] == [0, 1, 2]
    assert budget.occurrences[1].start_offset == 0 and budget.occurrences[1].end_offset == 6
    # A conversation without any keyword is stored, with no event.
    quiet = conversation("conv-2", "D-2", (i.SPEAKER_CUSTOMER, "天气不错"))
    assert not (await integration.call("SubmitConversation", quiet, "rep-a1")).conversation.keywords
    assert len(await emitted(integration)) == 1
    # Bad input is refused with its field.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await integration.call(
            "SubmitConversation",
            pb.SubmitConversationRequest(conversation=i.Conversation(conversation_id="c3")),
            "rep-a1",
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_reps_read_their_own_managers_their_team_and_another_tenant_nothing(
    integration: Integration,
) -> None:
    for req in DICTIONARY:
        await integration.call("CreateInsightKeyword", req)
    await integration.call("SubmitConversation", conversation("conv-a"), "rep-a1")
    await integration.call("SubmitConversation", conversation("conv-b", "D-9"), "rep-b1")
    full = pb.GetConversationRequest(conversation_id="conv-a", view=i.CONVERSATION_VIEW_FULL)
    mine = await integration.call("GetConversation", full, "rep-a1")
    assert len(mine.conversation.stored_segments) == 3  # the transcript, to its submitter
    manager = await integration.call("GetConversation", full, "sup-a")
    assert len(manager.conversation.stored_segments) == 3
    for user, tenant in (("rep-a2", "demo"), ("sup-b", "demo"), ("rep-a1", "acme"), ("admin", "acme")):
        assert await code_of(integration, "GetConversation", full, user, tenant) == grpc.StatusCode.NOT_FOUND
    listed = {
        user: [
            c.conversation_id
            for c in (
                await integration.call("ListConversations", pb.ListConversationsRequest(), user)
            ).conversations
        ]
        for user in ("rep-a1", "rep-a2", "sup-a", "director-east", "admin")
    }
    assert listed == {
        "rep-a1": ["conv-a"],
        "rep-a2": [],
        "sup-a": ["conv-a"],
        "director-east": ["conv-b", "conv-a"],
        "admin": ["conv-b", "conv-a"],
    }
    by_keyword = await integration.call(
        "ListConversations", pb.ListConversationsRequest(keyword_id="kw-tender", deal_id="D-9"), "admin"
    )
    assert [c.conversation_id for c in by_keyword.conversations] == ["conv-b"]
    # Someone else's id is taken, not theirs to overwrite.
    assert (
        await code_of(integration, "SubmitConversation", conversation("conv-a"), "rep-a2")
        == grpc.StatusCode.ALREADY_EXISTS
    )


async def test_the_default_dictionary_seeds_idempotently_and_matches(integration: Integration) -> None:
    from services.integration.seed_insights import DEFAULT_KEYWORDS, seed_insights
    from tests.integration.conftest import token

    md = (("authorization", f"Bearer {token('admin')}"),)
    for _ in range(2):  # `make run` seeds at every start
        await seed_insights(integration.stub, md)
    listed = await integration.call("ListInsightKeywords", pb.ListInsightKeywordsRequest())
    assert len(listed.keywords) == len(DEFAULT_KEYWORDS)
    said = conversation("conv-d", "D-5", (i.SPEAKER_CUSTOMER, "Too expensive, 下个季度再说，领导没批"))
    found = (await integration.call("SubmitConversation", said, "rep-a1")).conversation
    assert sorted(k.term for k in found.keywords) == sorted(["太贵", "下个季度", "领导还没批"])


async def test_reps_submit_for_their_own_leads_and_deals_managers_for_their_team(
    integration: Integration,
) -> None:
    from kit.events import new_envelope
    from salesops.leads.v1 import events_pb2 as leads_events
    from salesops.pipeline.v1 import events_pb2 as pipeline_events
    from services.integration.insight_consumer import CONSUMER, record_owner

    assert set(CONSUMER.types or ()) >= {"pipeline.DealCreated", "leads.LeadAssigned"}
    owned = [
        new_envelope(
            "pipeline.DealCreated",
            "demo",
            pipeline_events.DealCreated(
                deal=pipeline_events.DealContext(
                    deal_id="D-1", owner_user_id="rep-a1", org_path="east/team-a"
                )
            ),
            source="pipeline",
        ),
        new_envelope(
            "leads.LeadAssigned",
            "demo",
            leads_events.LeadAssigned(
                lead=leads_events.LeadContext(lead_id="L-1", owner_user_id="rep-a2", team_path="east/team-a")
            ),
            source="leads",
        ),
    ]
    async with integration.db.session("demo") as session:  # what the consumer group applies, once each
        for envelope in owned:
            await record_owner(envelope, session)
        await session.commit()
    await integration.call("SubmitConversation", conversation("c-own"), "rep-a1")
    assert (
        await code_of(integration, "SubmitConversation", conversation("c-not-mine"), "rep-a2")
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        await code_of(integration, "SubmitConversation", conversation("c-other-team"), "sup-b")
        == grpc.StatusCode.NOT_FOUND
    )
    await integration.call("SubmitConversation", conversation("c-team"), "sup-a")
    lead = conversation("c-lead")
    lead.conversation.lead_id = "L-1"
    assert await code_of(integration, "SubmitConversation", lead, "rep-a1") == grpc.StatusCode.NOT_FOUND
    await integration.call("SubmitConversation", lead, "rep-a2")
    # A deal no event has named yet (events lag by seconds) is not refused.
    await integration.call("SubmitConversation", conversation("c-new", "D-new"), "rep-a2")


async def test_out_of_range_input_is_refused_with_its_field(integration: Integration) -> None:
    far = conversation("c-far")
    far.conversation.start_time.seconds = -62135596800  # year 1
    long_ref = conversation("c-long")
    long_ref.conversation.source_connector_id, long_ref.conversation.external_id = "wecom", "x" * 300
    nul = keyword("kw-nul", "预\x00算", i.KEYWORD_CATEGORY_BUDGET)
    period = pb.ListConversationsRequest()
    period.start_period.start_time.seconds = 253402300800 * 4  # beyond year 9999
    for method, request in (
        ("SubmitConversation", far),
        ("SubmitConversation", long_ref),
        ("CreateInsightKeyword", nul),
        ("ListConversations", period),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await integration.call(method, request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, method
