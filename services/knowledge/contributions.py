"""Co-creation use cases: submit, edit, withdraw, accept (into a LIGHT card), reject.

Reps submit field cases and see their own; managers read those of their org
subtree; admins (sales ops) review. A case the caller may not see answers
NOT_FOUND. Accepting creates, submits and publishes the LIGHT card through the
cards use cases (history, version and CardPublished like any card), credits the
contributor as its author and books the acceptance points. Each call takes the
unit of work and never commits.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from google.protobuf.field_mask_pb2 import FieldMask

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
from salesops.knowledge.v1.contribution_pb2 import (
    Contribution,
    ContributionRejectionReason,
    ContributionStatus,
    PointReason,
)
from salesops.knowledge.v1.sop_card_pb2 import CardKind, SopCard
from services.knowledge import access, cards, knowledge_settings, points
from services.knowledge.domain import contributions as rules
from services.knowledge.domain.cards import Problem
from services.knowledge.presenters import ts
from services.knowledge.repositories.contributions import Contributions
from services.knowledge.store import SopCardRow
from services.knowledge.store_contributions import ContributionRow

RESOURCE = "knowledge.Contribution"
ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_\-]{0,63}$")
EVENT_SUBMITTED = "knowledge.ContributionSubmitted"
EVENT_REVIEWED = "knowledge.ContributionReviewed"
# Server-set: never kept in the body (columns hold them).
SERVER_FIELDS = (
    "status",
    "contributor_user_id",
    "reviewer_user_id",
    "review_time",
    "rejection_reason",
    "review_comment",
    "published_card_id",
    "points_awarded",
    "etag",
    "audit",
)


def can_read(who: Principal, row: ContributionRow) -> bool:
    if who.is_admin or who.is_service or row.contributor_user_id == who.user_id:
        return True
    return access.is_manager(who) and bool(who.org) and who.org_contains(row.contributor_org)


async def visible(uow: UnitOfWork, who: Principal, contribution_id: str) -> ContributionRow:
    if not ID.match(contribution_id):
        raise InvalidArgument.field("contribution_id", "an id (letters, digits, _ and -, at most 64)")
    row = await Contributions(uow).find(contribution_id)
    if row is None or not can_read(who, row):
        raise NotFound(RESOURCE, contribution_id)
    return row


def _invalid(problems: list[Problem]) -> None:
    if problems:
        summary = "; ".join(f"{p.field}: {p.description}" for p in problems[:3])
        raise InvalidArgument(
            f"invalid contribution: {summary}", [FieldViolation(p.field, p.description) for p in problems]
        )


def _stored(c: Contribution) -> bytes:
    body = Contribution()
    body.CopyFrom(c)
    for name in SERVER_FIELDS:
        body.ClearField(name)  # type: ignore[arg-type]
    return body.SerializeToString(deterministic=True)


def _columns(row: ContributionRow, c: Contribution) -> None:
    row.kind, row.title, row.body = c.kind, c.title, _stored(c)


async def submit(uow: UnitOfWork, who: Principal, incoming: Contribution, at: datetime) -> ContributionRow:
    """SubmitContribution: idempotent on the client's id (same content returns it; other ALREADY_EXISTS)."""
    c = sanitize_create(incoming)
    c.ClearField("etag")
    if not c.contribution_id:
        raise InvalidArgument.field("contribution.contribution_id", "required: a client-made ULID")
    if not ID.match(c.contribution_id):
        raise InvalidArgument.field("contribution.contribution_id", "letters, digits, _ and -, at most 64")
    c.language_code = c.language_code or "zh-CN"
    digest = hashlib.sha256(_stored(c)).hexdigest()
    repo = Contributions(uow)
    found = await repo.find(c.contribution_id)
    if found is not None:
        if found.request_digest != digest or found.contributor_user_id != who.user_id:
            raise AlreadyExists(RESOURCE, c.contribution_id, "another contribution already has this id")
        return found
    _invalid(rules.check(c))
    submitted = c.submit_time.ToDatetime(tzinfo=at.tzinfo) if c.HasField("submit_time") else at
    if submitted > at:  # a device clock ahead of ours: the server's time
        submitted = at
    row = ContributionRow(
        contribution_id=c.contribution_id,
        contributor_user_id=who.user_id,
        contributor_org=who.org,
        status=rules.SUBMITTED,
        submitted_at=submitted,
        received_at=at,
        reviewer_user_id="",
        rejection_reason=0,
        review_comment="",
        published_card_id="",
        request_digest=digest,
        updated_at=at,
        updated_by=who.user_id,
        version=1,
    )
    _columns(row, c)
    await repo.add(row)
    settings = await knowledge_settings.current(uow)
    await points.book(
        uow,
        user_id=who.user_id,
        user_org=who.org,
        points=settings.points.contribution_submitted,
        reason=PointReason.POINT_REASON_CONTRIBUTION_SUBMITTED,
        source_key=f"submitted:{row.contribution_id}",
        at=at,
        by=who.user_id,
        contribution_id=row.contribution_id,
    )
    await uow.emit(
        EVENT_SUBMITTED,
        events_pb2.ContributionSubmitted(
            contribution_id=row.contribution_id,
            kind=row.kind,  # type: ignore[arg-type]
            title=row.title,
            contributor_user_id=who.user_id,
            submit_time=ts(submitted),
        ),
        subject=row.contribution_id,
    )
    return row


def _require_submitted(row: ContributionRow, doing: str) -> None:
    if row.status != rules.SUBMITTED:
        status = ContributionStatus.Name(row.status)  # type: ignore[arg-type]
        raise FailedPrecondition(
            f"cannot {doing} a contribution in {status}",
            [PreconditionViolation("CONTRIBUTION_STATUS", row.contribution_id, f"it is {status}")],
            reason="CONTRIBUTION_STATUS",
        )


def _require_contributor(who: Principal, row: ContributionRow) -> None:
    if row.contributor_user_id != who.user_id:
        raise PermissionDenied("only the contributor changes a contribution", reason="NOT_CONTRIBUTOR")


async def update(
    uow: UnitOfWork, who: Principal, incoming: Contribution, mask: FieldMask, at: datetime
) -> ContributionRow:
    """UpdateContribution: the contributor, while SUBMITTED; merged then checked whole."""
    row = await visible(uow, who, incoming.contribution_id)
    _require_contributor(who, row)
    _require_submitted(row, "edit")
    unknown = [p for p in mask.paths if p.split(".")[0] not in rules.EDITABLE]
    if unknown:
        raise InvalidArgument.field("update_mask", f"not editable: {', '.join(unknown)}")
    merged = merge_update(Contribution.FromString(row.body), incoming, mask)
    merged.contribution_id = row.contribution_id
    merged.language_code = merged.language_code or "zh-CN"
    _invalid(rules.check(merged))
    _columns(row, merged)
    row.updated_at, row.updated_by = at, who.user_id
    return await Contributions(uow).update_if_etag(row, incoming.etag)


async def withdraw(
    uow: UnitOfWork, who: Principal, contribution_id: str, etag: str, at: datetime
) -> ContributionRow:
    row = await visible(uow, who, contribution_id)
    _require_contributor(who, row)
    if row.status == rules.WITHDRAWN:
        return row  # a repeated withdraw
    _require_submitted(row, "withdraw")
    row.status, row.updated_at, row.updated_by = rules.WITHDRAWN, at, who.user_id
    return await Contributions(uow).update_if_etag(row, etag)


def _comment(text: str, required: bool) -> str:
    text = text.strip()
    if required and not text:
        raise InvalidArgument.field("review_comment", "required: tell the contributor why")
    if len(text) > rules.COMMENT_MAX:
        raise InvalidArgument.field("review_comment", f"at most {rules.COMMENT_MAX} characters")
    return text


async def _reviewed(uow: UnitOfWork, row: ContributionRow, booked: int) -> None:
    await uow.emit(
        EVENT_REVIEWED,
        events_pb2.ContributionReviewed(
            contribution_id=row.contribution_id,
            title=row.title,
            contributor_user_id=row.contributor_user_id,
            outcome=row.status,  # type: ignore[arg-type]
            reviewer_user_id=row.reviewer_user_id,
            published_card_id=row.published_card_id,
            rejection_reason=row.rejection_reason,  # type: ignore[arg-type]
            points_awarded=booked,
            review_time=ts(row.reviewed_at),
        ),
        subject=row.contribution_id,
    )


async def accept(
    uow: UnitOfWork,
    who: Principal,
    contribution_id: str,
    edited: SopCard,
    comment: str,
    etag: str,
    at: datetime,
) -> tuple[ContributionRow, SopCardRow]:
    """AcceptContribution (admin): publish the LIGHT card, credit the contributor, book points.

    A replay with the same card id returns the accepted contribution and its card.
    """
    access.require_admin(who)
    row = await visible(uow, who, contribution_id)
    if not edited.card_id:
        raise InvalidArgument.field("card.card_id", "required: a client-made ULID")
    if row.status == rules.ACCEPTED and row.published_card_id == edited.card_id:
        card_row, _ = await cards.visible(uow, who, edited.card_id)
        return row, card_row
    _require_submitted(row, "accept")
    comment = _comment(comment, required=False)
    Contributions(uow).check_etag(row, etag)
    card = rules.light_card(Contribution.FromString(row.body), edited)
    card.author_user_id = row.contributor_user_id  # credited: use and praise points follow the author
    card.owner_user_id = card.owner_user_id or who.user_id
    created = await cards.create_card(
        uow, who, card, at, kind=CardKind.CARD_KIND_LIGHT, source_contribution_id=row.contribution_id
    )
    await cards.change_status(uow, who, "submit", created.card_id, "from a field contribution", "", at)
    published, _ = await cards.change_status(
        uow, who, "publish", created.card_id, f"accepted contribution {row.contribution_id}", "", at
    )
    row.status, row.reviewer_user_id, row.reviewed_at = rules.ACCEPTED, who.user_id, at
    row.review_comment, row.published_card_id = comment, published.card_id
    row.updated_at, row.updated_by = at, who.user_id
    await Contributions(uow).update_if_etag(row, etag)
    settings = await knowledge_settings.current(uow)
    booked = await points.book(
        uow,
        user_id=row.contributor_user_id,
        user_org=row.contributor_org,
        points=settings.points.contribution_accepted,
        reason=PointReason.POINT_REASON_CONTRIBUTION_ACCEPTED,
        source_key=f"accepted:{row.contribution_id}",
        at=at,
        by=who.user_id,
        contribution_id=row.contribution_id,
        card_id=published.card_id,
    )
    await _reviewed(uow, row, booked.points if booked else 0)
    return row, published


async def reject(
    uow: UnitOfWork,
    who: Principal,
    contribution_id: str,
    reason: int,
    comment: str,
    etag: str,
    at: datetime,
) -> ContributionRow:
    """RejectContribution (admin): a reason category and a comment to the contributor."""
    access.require_admin(who)
    row = await visible(uow, who, contribution_id)
    if reason == 0 or reason not in ContributionRejectionReason.values():
        raise InvalidArgument.field("rejection_reason", "required: a ContributionRejectionReason")
    comment = _comment(comment, required=True)
    if row.status == rules.REJECTED and (row.rejection_reason, row.review_comment) == (reason, comment):
        return row  # a repeated reject
    _require_submitted(row, "reject")
    row.status, row.reviewer_user_id, row.reviewed_at = rules.REJECTED, who.user_id, at
    row.rejection_reason, row.review_comment = reason, comment
    row.updated_at, row.updated_by = at, who.user_id
    await Contributions(uow).update_if_etag(row, etag)
    await _reviewed(uow, row, 0)
    return row
