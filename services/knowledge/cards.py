"""SOP card use cases: create, update, delete, and the review lifecycle with immutable versions.

Each takes the unit of work and never commits. Access is asked of access.py,
rules of domain/cards.py; every write re-indexes the card for search.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from google.protobuf.field_mask_pb2 import FieldMask
from ulid import ULID

from kit.auth import Principal
from kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    PreconditionViolation,
)
from kit.resources import UnitOfWork, merge_update, sanitize_create
from salesops.knowledge.v1 import events_pb2
from salesops.knowledge.v1.sop_card_pb2 import (
    CardKind,
    CardStatus,
    CardVisibility,
    SopCard,
    SopCardVersion,
)
from services.knowledge import access, knowledge_settings
from services.knowledge.domain import cards as rules
from services.knowledge.presenters import card_body, ts
from services.knowledge.repositories.cards import (
    INDUSTRY,
    ORG,
    STAGE,
    TAG,
    Cards,
    CardVersions,
    StatusChanges,
)
from services.knowledge.repositories.search import SearchIndex
from services.knowledge.segmentation import tokens
from services.knowledge.store import SopCardRow, SopCardStatusChangeRow, SopCardVersionRow

CARD_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_\-]{0,63}$")
MAX_REASON = 1000
EVENT_PUBLISHED = "knowledge.CardPublished"
EVENT_RETIRED = "knowledge.CardRetired"
EVENT_RETURNED = "knowledge.CardReturnedToReview"


def now() -> datetime:
    return datetime.now(UTC)


def _digest(card: SopCard) -> str:
    return hashlib.sha256(card.SerializeToString(deterministic=True)).hexdigest()


async def visible(uow: UnitOfWork, who: Principal, card_id: str) -> tuple[SopCardRow, list[str]]:
    """The card and its audience's org paths, if `who` may read it; NOT_FOUND otherwise."""
    if not CARD_ID.match(card_id):
        raise InvalidArgument.field("card_id", "a card id (letters, digits, _ and -, at most 64)")
    repo = Cards(uow)
    row = await repo.find(card_id)
    if row is None:
        raise NotFound(access.RESOURCE, card_id)
    orgs = (await repo.org_paths([card_id])).get(card_id, [])
    access.require_read(who, row, orgs)
    return row, orgs


def _invalid(problems: list[rules.Problem]) -> None:
    if problems:
        summary = "; ".join(f"{p.field}: {p.description}" for p in problems[:3])
        raise InvalidArgument(
            f"invalid card: {summary}", [FieldViolation(p.field, p.description) for p in problems]
        )


def _facets(card: SopCard) -> dict[str, list[str]]:
    return {
        INDUSTRY: list(card.industries),
        STAGE: list(card.stage_ids),
        TAG: list(card.tags),
        ORG: [p.strip("/") for p in card.visible_org_paths],
    }


async def _index(uow: UnitOfWork, card: SopCard) -> None:
    """Segment the card's text: title, labels (scenario key and names, tags), then the body."""
    settings = await knowledge_settings.current(uow)
    names = next(((s.name_zh, s.name_en) for s in settings.scenarios if s.key == card.scenario), ("", ""))
    title = tokens(card.title)
    # Labels are a set: the scenario's key and its two names often repeat a word.
    labels = list(dict.fromkeys(tokens(" ".join([card.scenario.replace("_", " "), *names, *card.tags]))))
    body: list[str] = tokens(card.summary)
    for action in card.must_do_actions:
        body += tokens(action.text) + tokens(action.example)
    for taboo in card.taboos:
        body += tokens(taboo)
    for proof in card.proof_points:
        body += tokens(proof.claim) + tokens(proof.source)
    await SearchIndex(uow).put(card.card_id, [*title, *labels, *body], title, labels)


def _stored(card: SopCard) -> bytes:
    """The body kept in the row: content and placement; server-set fields live in columns."""
    body = SopCard()
    body.CopyFrom(card)
    for name in ("etag", "audit", "stats", "status", "status_reason", "status_change_time", "version"):
        body.ClearField(name)
    body.ClearField("publish_time")
    body.ClearField("status_changed_by_user_id")
    return body.SerializeToString(deterministic=True)


def _columns(row: SopCardRow, card: SopCard) -> None:
    row.title = card.title
    row.scenario = card.scenario
    row.language_code = card.language_code
    row.visibility = card.visibility
    row.applies_to_leads = card.applies_to_leads
    row.author_user_id = card.author_user_id
    row.owner_user_id = card.owner_user_id
    row.body = _stored(card)


async def _record(
    uow: UnitOfWork, row: SopCardRow, before: int, who: Principal, reason: str, at: datetime
) -> None:
    await StatusChanges(uow).append(
        SopCardStatusChangeRow(
            card_id=row.card_id,
            from_status=before,
            to_status=row.status,
            actor_user_id=who.user_id,
            reason=reason,
            card_version=row.published_version,
            changed_at=at,
        )
    )


async def create_card(
    uow: UnitOfWork,
    who: Principal,
    incoming: SopCard,
    at: datetime,
    *,
    kind: int = CardKind.CARD_KIND_STANDARD,
    source_contribution_id: str = "",
) -> SopCardRow:
    """A new card in DRAFT; a replay of the same create (same id and content) returns it.

    `kind` and `source_contribution_id` are output-only on the wire: set here by
    AcceptContribution for the LIGHT card it makes (contributions.py).
    """
    access.require_write(who)
    card = sanitize_create(incoming)
    card.ClearField("etag")
    card.source_contribution_id = source_contribution_id
    if card.card_id and not CARD_ID.match(card.card_id):
        raise InvalidArgument.field("card.card_id", "letters, digits, _ and -, at most 64")
    if (card.author_user_id and card.author_user_id != who.user_id and not who.is_admin) or (
        card.owner_user_id and card.owner_user_id != who.user_id and not who.is_admin
    ):
        raise PermissionDenied("only admins credit a card to someone else", reason="ADMIN_ONLY")
    digest = _digest(card)
    repo = Cards(uow)
    card.card_id = card.card_id or str(ULID())
    found = await repo.find(card.card_id)
    if found is not None:
        if found.request_digest != digest or not access.can_read(who, found, []):
            raise AlreadyExists(repo.resource, card.card_id, "a different card already has this card_id")
        return found
    card.language_code = card.language_code or "zh-CN"
    if card.visibility == CardVisibility.CARD_VISIBILITY_UNSPECIFIED:
        card.visibility = CardVisibility.CARD_VISIBILITY_TENANT
    card.author_user_id = card.author_user_id or who.user_id
    card.owner_user_id = card.owner_user_id or card.author_user_id
    _invalid(rules.check(card, await knowledge_settings.scenario_keys(uow)))
    row = SopCardRow(
        card_id=card.card_id,
        status=rules.DRAFT,
        kind=kind,
        published_version=0,
        status_reason="",
        status_changed_at=at,
        status_changed_by=who.user_id,
        created_at=at,
        created_by=who.user_id,
        updated_at=at,
        updated_by=who.user_id,
        version=1,
        request_digest=digest,
    )
    _columns(row, card)
    await repo.add(row)
    await repo.replace_facets(row.card_id, _facets(card))
    await _index(uow, card)
    await _record(uow, row, CardStatus.CARD_STATUS_UNSPECIFIED, who, "created", at)
    return row


def _changed(before: SopCard, after: SopCard) -> set[str]:
    """The editable top-level fields whose value differs (repeated fields compare element-wise)."""
    names = rules.CONTENT_FIELDS | rules.PLACEMENT_FIELDS
    return {name for name in names if getattr(before, name) != getattr(after, name)}


async def update_card(
    uow: UnitOfWork, who: Principal, incoming: SopCard, mask: FieldMask, at: datetime
) -> SopCardRow:
    """Content in DRAFT / IN_REVIEW only; placement and audience in any status but RETIRED."""
    if not incoming.card_id:
        raise InvalidArgument.field("card.card_id", "required")
    row, orgs = await visible(uow, who, incoming.card_id)
    access.require_manage(who, row, orgs)
    before = card_body(row)
    merged = merge_update(before, incoming, mask)
    changed = _changed(before, merged)
    if changed and row.status == rules.RETIRED:
        raise FailedPrecondition(
            "a retired card is not edited; return it to review first", reason="CARD_RETIRED"
        )
    content = sorted(changed & rules.CONTENT_FIELDS)
    if content and row.status == rules.PUBLISHED:
        raise FailedPrecondition(
            "a published card's content changes through review (a new version follows): "
            f"return it to review first ({', '.join(content)})",
            [PreconditionViolation("CARD_STATUS", row.card_id, f"{name} is content") for name in content],
            reason="CARD_PUBLISHED",
        )
    if changed & {"author_user_id", "owner_user_id"} and not who.is_admin:
        raise PermissionDenied("only admins change a card's author or owner", reason="ADMIN_ONLY")
    merged.language_code = merged.language_code or "zh-CN"
    _invalid(rules.check(merged, await knowledge_settings.scenario_keys(uow)))
    _columns(row, merged)
    row.updated_at, row.updated_by = at, who.user_id
    await Cards(uow).update_if_etag(row, incoming.etag)
    await Cards(uow).replace_facets(row.card_id, _facets(merged))
    await _index(uow, merged)
    return row


async def delete_card(uow: UnitOfWork, who: Principal, card_id: str, etag: str) -> None:
    row, orgs = await visible(uow, who, card_id)
    access.require_manage(who, row, orgs)
    if row.published_version:
        raise FailedPrecondition(
            "a card that was ever published is kept for its uses and feedback; retire it instead",
            reason="CARD_WAS_PUBLISHED",
        )
    await SearchIndex(uow).remove(card_id)
    await Cards(uow).remove(row, etag)


def _reason(field: str, text: str, required: bool) -> str:
    text = text.strip()
    if required and not text:
        raise InvalidArgument.field(field, "required: say why")
    if len(text) > MAX_REASON:
        raise InvalidArgument.field(field, f"at most {MAX_REASON} characters")
    return text


async def change_status(
    uow: UnitOfWork,
    who: Principal,
    action: str,
    card_id: str,
    reason: str,
    etag: str,
    at: datetime,
    *,
    iteration_report_id: str = "",
) -> tuple[SopCardRow, SopCardVersionRow | None]:
    """One lifecycle call: a compare-and-set on the status, recorded with who and why.

    `action` is a key of domain.cards.TRANSITIONS; for "publish" `reason` is the change note.
    `iteration_report_id`: the monthly iteration report behind a retire / return (on the event).
    """
    row, orgs = await visible(uow, who, card_id)
    if action == "submit":
        access.require_manage(who, row, orgs)
    else:
        access.require_admin(who)
    field = {"submit": "note", "publish": "change_note", "return_to_draft": "comment"}.get(action, "reason")
    reason = _reason(field, reason, required=action in ("retire", "return_to_review", "return_to_draft"))
    target = rules.transition(action, row.status)
    if target is None:
        current = CardStatus.Name(row.status)  # type: ignore[arg-type]
        raise FailedPrecondition(
            f"cannot {action.replace('_', ' ')} a card in {current}",
            [PreconditionViolation("CARD_STATUS", card_id, f"the card is {current}")],
            reason="CARD_STATUS",
        )
    card = card_body(row)
    if action == "submit" and (missing := rules.missing_for_review(card)):
        raise FailedPrecondition(
            f"the card is not complete enough for review: {', '.join(missing)}",
            [PreconditionViolation("CARD_INCOMPLETE", name, "required before review") for name in missing],
            reason="CARD_INCOMPLETE",
        )
    before = row.status
    row.status = target
    row.status_reason, row.status_changed_at, row.status_changed_by = reason, at, who.user_id
    row.updated_at, row.updated_by = at, who.user_id
    version: SopCardVersionRow | None = None
    if action == "publish":
        row.published_version += 1
        row.published_at = at
        version = await _freeze(uow, row, who, reason, at)
    await Cards(uow).update_if_etag(row, etag)
    await _record(uow, row, before, who, reason, at)
    await _announce(uow, action, row, card, before, who, reason, at, iteration_report_id)
    return row, version


async def _freeze(
    uow: UnitOfWork, row: SopCardRow, who: Principal, note: str, at: datetime
) -> SopCardVersionRow:
    """The immutable snapshot of what goes live: written once, never updated."""
    card = card_body(row)
    for name in ("etag", "audit", "stats", "status_reason", "status_changed_by_user_id"):
        card.ClearField(name)
    snapshot = SopCardVersion(
        card_id=row.card_id,
        version=row.published_version,
        card=card,
        change_note=note,
        published_by_user_id=who.user_id,
        publish_time=ts(at),
    )
    version = SopCardVersionRow(
        card_id=row.card_id,
        version=row.published_version,
        published_at=at,
        published_by=who.user_id,
        body=snapshot.SerializeToString(deterministic=True),
    )
    return await CardVersions(uow).add(version)


async def _announce(
    uow: UnitOfWork,
    action: str,
    row: SopCardRow,
    card: SopCard,
    before: int,
    who: Principal,
    reason: str,
    at: datetime,
    iteration_report_id: str = "",
) -> None:
    if action == "publish":
        await uow.emit(
            EVENT_PUBLISHED,
            events_pb2.CardPublished(
                card_id=row.card_id,
                version=row.published_version,
                title=row.title,
                scenario=row.scenario,
                industries=card.industries,
                stage_ids=card.stage_ids,
                applies_to_leads=row.applies_to_leads,
                kind=row.kind,  # type: ignore[arg-type]
                author_user_id=row.author_user_id,
                source_contribution_id=card.source_contribution_id,
                published_by=who.user_id,
                publish_time=ts(at),
            ),
            subject=row.card_id,
        )
    elif action == "retire":
        await uow.emit(
            EVENT_RETIRED,
            events_pb2.CardRetired(
                card_id=row.card_id,
                version=row.published_version,
                title=row.title,
                author_user_id=row.author_user_id,
                reason=reason,
                retired_by=who.user_id,
                iteration_report_id=iteration_report_id,
                retire_time=ts(at),
            ),
            subject=row.card_id,
        )
    elif action == "return_to_review":
        await uow.emit(
            EVENT_RETURNED,
            events_pb2.CardReturnedToReview(
                card_id=row.card_id,
                version=row.published_version,
                title=row.title,
                author_user_id=row.author_user_id,
                previous_status=before,  # type: ignore[arg-type]
                reason=reason,
                returned_by=who.user_id,
                iteration_report_id=iteration_report_id,
                return_time=ts(at),
            ),
            subject=row.card_id,
        )
