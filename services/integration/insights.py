"""Conversation insights use cases: the keyword dictionary, submitting and analysing transcripts. Never commit.

A submitted conversation is analysed in the same unit of work (one Aho-Corasick
pass, milliseconds for the 200,000-character cap): its keyword hits are stored
and KeywordsExtracted is staged in the outbox, so leads / pipeline attach them to
the lead or deal exactly when the conversation exists. The transcript is kept
until its retention deadline; what was found stays after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp

from kit.auth import Principal
from kit.errors import AlreadyExists, FieldViolation, InvalidArgument, NotFound
from kit.resources import UnitOfWork, merge_update, sanitize_create
from salesops.integration.v1 import events_pb2 as ev
from salesops.integration.v1 import insights_pb2 as i
from services.integration import integration_settings
from services.integration.domain import keywords as kw
from services.integration.insight_access import may_submit_for
from services.integration.repositories.insights import Conversations, InsightKeywords, Subjects
from services.integration.store_insights import ConversationRow, InsightKeywordRow

TRANSCRIPT_RETENTION = timedelta(days=90)  # IntegrationSettings.transcript_retention's default
MAX_TURNS = 2000
MAX_CHARS = 200_000
MAX_ID = 64


def _bad(problems: Sequence[tuple[str, str]], what: str, prefix: str) -> InvalidArgument:
    return InvalidArgument(f"invalid {what}", [FieldViolation(f"{prefix}.{p}", d) for p, d in problems])


def request_time(value: Timestamp, field: str) -> datetime:
    """A request's time as an aware datetime; INVALID_ARGUMENT outside 2000..2100 (before any arithmetic)."""
    try:
        when: datetime | None = value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        when = None
    if when is None or not 2000 <= when.year <= 2100:
        raise InvalidArgument.field(field, "a time between 2000 and 2100")
    return when


def _id_problem(value: str) -> str:
    if not value:
        return "required (a client-made ULID)"
    if len(value) > MAX_ID or not value.replace("-", "").replace("_", "").isalnum():
        return f"at most {MAX_ID} letters, digits, '-' or '_'"
    return ""


# --------------------------------------------------------------------------- keyword dictionary


def tracker(row: InsightKeywordRow) -> kw.Tracker:
    return kw.Tracker(
        row.keyword_id, row.term, row.category, tuple(json.loads(row.synonyms or "[]")), row.customer_only
    )


def _check_keyword(msg: i.InsightKeyword) -> None:
    problems = list(kw.problems(msg.term, list(msg.synonyms)))
    if not msg.category:
        problems.append(("category", "required"))
    elif msg.category not in i.KeywordCategory.values():
        problems.append(("category", "unknown category"))
    if problems:
        raise _bad(problems, "keyword", "keyword")


def _apply(row: InsightKeywordRow, msg: i.InsightKeyword) -> None:
    row.term = kw.normalise_phrase(msg.term)
    row.term_key = kw.fold(row.term)
    row.category = msg.category
    row.synonyms = json.dumps([kw.normalise_phrase(s) for s in msg.synonyms], ensure_ascii=False)
    row.customer_only, row.disabled = msg.customer_only, msg.disabled


async def _term_free(repo: InsightKeywords, row: InsightKeywordRow) -> None:
    holder = await repo.by_term(row.term_key)
    if holder is not None and holder.keyword_id != row.keyword_id:
        raise AlreadyExists("integration.InsightKeyword", holder.keyword_id, f"term {row.term!r} exists")


async def create_keyword(
    uow: UnitOfWork, who: Principal, incoming: i.InsightKeyword, at: datetime
) -> InsightKeywordRow:
    msg = sanitize_create(incoming)
    problem = _id_problem(msg.keyword_id)
    if problem:
        raise InvalidArgument.field("keyword.keyword_id", problem)
    _check_keyword(msg)
    digest = hashlib.sha256(msg.SerializeToString(deterministic=True)).hexdigest()
    repo = InsightKeywords(uow)
    found = await repo.find(msg.keyword_id)
    if found is not None:
        if found.request_digest == digest:
            return found  # a replay of the same create
        raise AlreadyExists("integration.InsightKeyword", msg.keyword_id)
    row = InsightKeywordRow(
        keyword_id=msg.keyword_id,
        created_at=at,
        created_by=who.user_id,
        updated_at=at,
        updated_by=who.user_id,
        version=1,
        request_digest=digest,
    )
    _apply(row, msg)
    await _term_free(repo, row)
    return await repo.add(row)


def keyword_message(row: InsightKeywordRow) -> i.InsightKeyword:
    return i.InsightKeyword(
        keyword_id=row.keyword_id,
        term=row.term,
        category=row.category,  # type: ignore[arg-type]
        synonyms=json.loads(row.synonyms or "[]"),
        customer_only=row.customer_only,
        disabled=row.disabled,
    )


async def update_keyword(
    uow: UnitOfWork, who: Principal, incoming: i.InsightKeyword, mask: FieldMask, at: datetime
) -> InsightKeywordRow:
    if not mask.paths:
        raise InvalidArgument.field("update_mask", "required: name the fields to change")
    repo = InsightKeywords(uow)
    row = await repo.get(incoming.keyword_id)
    repo.check_etag(row, incoming.etag)
    merged = merge_update(keyword_message(row), incoming, mask)
    _check_keyword(merged)
    _apply(row, merged)
    await _term_free(repo, row)
    row.updated_at, row.updated_by = at, who.user_id
    return await repo.update_if_etag(row, incoming.etag)


async def delete_keyword(uow: UnitOfWork, keyword_id: str, etag: str = "") -> None:
    """Past hits keep their term and category, so digests of past weeks stay as they were."""
    repo = InsightKeywords(uow)
    row = await repo.get(keyword_id)
    await repo.delete_if_etag(row, etag)


# --------------------------------------------------------------------------- conversations


def turns_of(msg: i.Conversation) -> list[kw.Turn]:
    turns = [kw.Turn(s.speaker, s.text) for s in msg.segments]
    if msg.text:
        turns.append(kw.Turn(i.SPEAKER_UNSPECIFIED, msg.text))
    return turns


def _check_conversation(msg: i.Conversation) -> None:
    problems: list[tuple[str, str]] = []
    problem = _id_problem(msg.conversation_id)
    if problem:
        problems.append(("conversation_id", problem))
    which = msg.WhichOneof("subject")
    if which is None or not getattr(msg, which):
        problems.append(("lead_id", "one of lead_id or deal_id is required"))
    refs: list[tuple[str, int]] = [(which, MAX_ID)] if which else []
    refs += [("customer_id", MAX_ID), ("source_connector_id", MAX_ID), ("external_id", 256)]
    for name, longest in refs:
        value = getattr(msg, name)
        if len(value) > longest or not value.isprintable():
            problems.append((name, f"at most {longest} printable characters"))
    if not msg.channel or msg.channel not in i.ConversationChannel.values():
        problems.append(("channel", "required"))
    if not msg.HasField("start_time"):
        problems.append(("start_time", "required"))
    else:
        try:
            request_time(msg.start_time, "conversation.start_time")
        except InvalidArgument:
            problems.append(("start_time", "a time between 2000 and 2100"))
    if not msg.segments and not msg.text.strip():
        problems.append(("segments", "a transcript is required: speaker turns or text"))
    if len(msg.segments) > MAX_TURNS:
        problems.append(("segments", f"at most {MAX_TURNS} turns"))
    for n, seg in enumerate(msg.segments):
        if not seg.text.strip():
            problems.append((f"segments[{n}].text", "required"))
    if sum(len(s.text) for s in msg.segments) + len(msg.text) > MAX_CHARS:
        problems.append(("segments", f"the transcript is at most {MAX_CHARS} characters"))
    if bool(msg.source_connector_id) != bool(msg.external_id):
        problems.append(("external_id", "source_connector_id and external_id go together"))
    if problems:
        raise _bad(problems, "conversation", "conversation")


def _findings(
    mentions: Sequence[kw.Mention], found: Sequence[kw.Occurrence]
) -> tuple[i.Conversation, ev.KeywordsExtracted]:
    """What is stored with the conversation (mentions with excerpts, occurrences) and what the event carries."""
    stored = i.Conversation()
    event = ev.KeywordsExtracted()
    for m in mentions:
        stored.keywords.add(
            keyword_id=m.keyword_id,
            term=m.term,
            category=m.category,  # type: ignore[arg-type]
            count=m.count,
            said_by_customer=m.said_by_customer,
            excerpt=m.excerpt,
        )
        hit = event.keywords.add(
            keyword_id=m.keyword_id,
            term=m.term,
            category=m.category,  # type: ignore[arg-type]
            count=m.count,
            said_by_customer=m.said_by_customer,
        )
        for o in found:
            if o.keyword_id == m.keyword_id:
                hit.occurrences.add(**_occurrence(o))
    for o in found:
        stored.occurrences.add(**_occurrence(o))
    return stored, event


def _occurrence(o: kw.Occurrence) -> dict[str, object]:
    return {
        "keyword_id": o.keyword_id,
        "matched_text": o.matched_text,
        "segment_index": o.segment_index,
        "start_offset": o.start,
        "end_offset": o.end,
        "speaker": o.speaker,
    }


def _body(msg: i.Conversation) -> bytes:
    body = i.Conversation()
    body.CopyFrom(msg)
    for name in ("segments", "text", "etag"):
        if name in body.DESCRIPTOR.fields_by_name:
            body.ClearField(name)  # type: ignore[arg-type]
    return body.SerializeToString(deterministic=True)


async def submit_conversation(
    uow: UnitOfWork, who: Principal, incoming: i.Conversation, at: datetime
) -> ConversationRow:
    """Store, analyse, attach: the hits and KeywordsExtracted (when any) in this unit of work."""
    msg = sanitize_create(incoming)
    _check_conversation(msg)
    digest = hashlib.sha256(msg.SerializeToString(deterministic=True)).hexdigest()
    repo = Conversations(uow)
    found = await repo.find(msg.conversation_id)
    if found is not None:
        if found.request_digest == digest and found.submitted_by == who.user_id:
            return found  # a retried submit
        raise AlreadyExists("integration.Conversation", msg.conversation_id)
    if msg.source_connector_id:
        imported = await repo.by_external(msg.source_connector_id, msg.external_id)
        if imported is not None:
            return imported  # a re-import of the same archive record is ignored
    which = msg.WhichOneof("subject")
    lead_id = msg.lead_id if which == "lead_id" else ""
    deal_id = msg.deal_id if which == "deal_id" else ""
    kind, subject_id = ("lead", lead_id) if lead_id else ("deal", deal_id)
    owner = await Subjects(uow).find(kind, subject_id)
    # Known from leads' / pipeline's events; one not seen yet (events lag by seconds) is let through.
    if owner is not None and not may_submit_for(who, owner.owner_user_id, owner.org_path):
        raise NotFound("leads.Lead" if lead_id else "pipeline.Deal", subject_id)
    trackers = [tracker(r) for r in await InsightKeywords(uow).enabled()]
    matcher = kw.Matcher(trackers)
    turns = turns_of(msg)
    occurrences = matcher.find(turns)
    mentions = kw.mentions(matcher, turns, occurrences)
    stored, event = _findings(mentions, occurrences)
    start = request_time(msg.start_time, "conversation.start_time")
    transcript = i.Conversation(stored_segments=list(msg.segments))
    if msg.text:
        transcript.stored_segments.add(speaker=i.SPEAKER_UNSPECIFIED, text=msg.text)
    retention = integration_settings.duration(await integration_settings.get(uow), "transcript_retention")
    row = ConversationRow(
        conversation_id=msg.conversation_id,
        lead_id=lead_id,
        deal_id=deal_id,
        customer_id=msg.customer_id,
        channel=msg.channel,
        start_time=start,
        source_connector_id=msg.source_connector_id or None,
        external_id=msg.external_id or None,
        submitted_by=who.user_id,
        org_path=who.org,
        analysis_state=i.ANALYSIS_STATE_COMPLETED,
        created_at=at,
        request_digest=digest,
        body=_body(msg),
        transcript=transcript.SerializeToString(deterministic=True),
        transcript_expire_at=at + retention,
        findings=stored.SerializeToString(deterministic=True),
    )
    await repo.add(row)
    await repo.add_hits(
        [
            {
                "tenant_id": uow.tenant,
                "conversation_id": row.conversation_id,
                "keyword_id": m.keyword_id,
                "term": m.term,
                "category": m.category,
                "mentions": m.count,
                "customer_mentions": m.customer_count,
                "lead_id": lead_id,
                "deal_id": deal_id,
                "org_path": row.org_path,
                "start_time": start,
            }
            for m in mentions
        ]
    )
    if mentions:
        if lead_id:
            event.lead_id = lead_id
        else:
            event.deal_id = deal_id
        event.conversation_id, event.customer_id = row.conversation_id, row.customer_id
        event.channel, event.submitted_by = msg.channel, who.user_id
        event.start_time.CopyFrom(msg.start_time)
        await uow.emit("integration.KeywordsExtracted", event, subject=lead_id or deal_id)
    return row
