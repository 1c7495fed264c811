"""Deal use cases: create (direct, partner, import or from a lead) and update. Never commit.

Every write goes through the one gate engine: a create in a later stage runs the
gates of every stage up to it, an update recomputes the probability from the
stage and its rules. Every write appends the tracked changes to the history and
stages its event in the same transaction.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from google.protobuf.field_mask_pb2 import FieldMask
from ulid import ULID

from kit.auth import Principal
from kit.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Violations
from kit.resources import UnitOfWork, merge_update, output_only_paths, sanitize_create
from salesops.pipeline.v1 import deal_pb2, events_pb2, types_pb2
from services.pipeline import access, criteria, discipline, events, members, pipeline_settings, stage_models
from services.pipeline.convert import enum_name, to_date
from services.pipeline.documents import body_of, deal_of, store_editable, tracked
from services.pipeline.domain import history
from services.pipeline.domain import stages as s
from services.pipeline.gating import refusal
from services.pipeline.repositories.customers import Customers
from services.pipeline.repositories.deals import OPEN, Deals
from services.pipeline.repositories.history import DealChanges
from services.pipeline.repositories.members import MemberProfiles
from services.pipeline.store import DealRow

# A close date is "not in the past" in any zone: the earliest local date on Earth is UTC-12.
ZONE_SLACK = timedelta(hours=12)
USER_CATEGORIES = ("PIPELINE", "BEST_CASE", "COMMIT", "OMITTED")

LOCKED_PATHS = ("stage_id",)  # changed only by MoveStage

# One deal's amount at most 10^15 minor units (10 trillion in a two-decimal currency): sums of many
# deals then stay far inside int64, where forecasts, snapshots and lost-reason totals are carried.
MAX_AMOUNT_MINOR = 10**15
# The columns' widths (store.py): a longer value is INVALID_ARGUMENT, not a database error.
MAX_CHARS = {
    "deal_id": 64,
    "title": 300,
    "owner_user_id": 64,
    "customer.customer_id": 64,
    "customer.display_name": 300,
    "customer.industry": 64,
    "customer.city": 100,
    "next_step": 2000,
    "qualification.decision_process": 2000,
}
MAX_CUSTOM_FIELDS = 50
MAX_CUSTOM_KEY, MAX_CUSTOM_VALUE = 64, 2000
MAX_COMPETITORS, MAX_COMPETITOR = 20, 200
MAX_LINE_ITEMS = 200


def validate(deal: deal_pb2.Deal, at: datetime, currency: str, *, prefix: str = "deal") -> None:
    """The contract's required fields and value rules, every problem at once."""
    v = Violations()
    if not deal.title.strip():
        v.add(f"{prefix}.title", "required")
    if not deal.customer.display_name.strip():
        v.add(f"{prefix}.customer.display_name", "required")
    # One currency per tenant (the contract), so forecasts add up without FX.
    if not deal.HasField("amount") or deal.amount.currency != currency:
        v.add(f"{prefix}.amount", f"required, in the tenant's base currency {currency}")
    elif deal.amount.amount_minor < 0:
        v.add(f"{prefix}.amount", "must not be negative")
    elif deal.amount.amount_minor > MAX_AMOUNT_MINOR:
        v.add(f"{prefix}.amount", f"at most {MAX_AMOUNT_MINOR} minor units")
    _check_sizes(deal, v, prefix)
    if not deal.HasField("expected_close_date"):
        v.add(f"{prefix}.expected_close_date", "required: a real date, not 'ASAP'")
    else:
        try:
            close = to_date(deal.expected_close_date, f"{prefix}.expected_close_date")
        except InvalidArgument as exc:
            v.add(f"{prefix}.expected_close_date", exc.violations[0].description)
        else:
            if close < (at - ZONE_SLACK).date():
                v.add(f"{prefix}.expected_close_date", "must not be in the past")
    category = enum_name(types_pb2.ForecastCategory, deal.forecast_category)
    if category and category not in USER_CATEGORIES:
        v.add(
            f"{prefix}.forecast_category",
            f"one of {', '.join(USER_CATEGORIES)} (CLOSED is set by the service)",
        )
    v.raise_if_any("invalid deal")


def _check_sizes(deal: deal_pb2.Deal, v: Violations, prefix: str) -> None:
    """Bounded text and collections: a deal is a row plus a small body, whatever a client sends."""
    for path, limit in MAX_CHARS.items():
        value: object = deal
        for part in path.split("."):
            value = getattr(value, part)
        if len(str(value)) > limit:
            v.add(f"{prefix}.{path}", f"at most {limit} characters")
    if len(deal.custom_fields) > MAX_CUSTOM_FIELDS:
        v.add(f"{prefix}.custom_fields", f"at most {MAX_CUSTOM_FIELDS} entries")
    if any(len(k) > MAX_CUSTOM_KEY or len(x) > MAX_CUSTOM_VALUE for k, x in deal.custom_fields.items()):
        v.add(
            f"{prefix}.custom_fields",
            f"keys at most {MAX_CUSTOM_KEY}, values at most {MAX_CUSTOM_VALUE} characters",
        )
    if len(deal.competitors) > MAX_COMPETITORS or any(len(c) > MAX_COMPETITOR for c in deal.competitors):
        v.add(f"{prefix}.competitors", f"at most {MAX_COMPETITORS}, each at most {MAX_COMPETITOR} characters")
    if len(deal.line_items) > MAX_LINE_ITEMS:
        v.add(f"{prefix}.line_items", f"at most {MAX_LINE_ITEMS}")


async def _check_customer(uow: UnitOfWork, who: Principal, customer_id: str) -> None:
    """A named customer must be one the caller sees: a deal makes its customer visible to the deal's
    holders, so naming another team's account would open it. Unknown and unseen read alike."""
    if not customer_id:
        return  # a deal may name its customer only by display name
    try:
        await Customers(uow).visible(who, customer_id)
    except NotFound:
        raise InvalidArgument.field(
            "deal.customer.customer_id", "no such customer among yours: create or find it first"
        ) from None


def _digest(deal: deal_pb2.Deal) -> str:
    return hashlib.sha256(deal.SerializeToString(deterministic=True)).hexdigest()


async def _replay(repo: Deals, who: Principal, deal_id: str, digest: str) -> DealRow | None:
    found = await repo.find(deal_id)
    if found is None:
        return None
    if found.request_digest != digest or not access.can_view(who, found.owner_user_id, found.org_path):
        raise AlreadyExists(repo.resource, deal_id, "a different deal already has this deal_id")
    return found


async def create_deal(
    uow: UnitOfWork,
    who: Principal,
    incoming: deal_pb2.Deal,
    at: datetime,
    *,
    origin: str = "MANUAL",
    org_path: str | None = None,
) -> DealRow:
    """A new deal through the gates up to its stage; a replay of the same id and content returns it.

    `org_path` is the owner's team when the caller knows it (a lead conversion does); else the
    owner's member profile says it, else the caller's own org.
    """
    deal = sanitize_create(incoming)
    deal.ClearField("etag")
    validate(deal, at, await pipeline_settings.base_currency(uow))
    repo = Deals(uow)
    digest = _digest(deal)
    deal_id = deal.deal_id or str(ULID())
    if deal.deal_id and (replayed := await _replay(repo, who, deal_id, digest)):
        return replayed
    deal.deal_id = deal_id
    await _check_customer(uow, who, deal.customer.customer_id)
    if deal.source.lead_id and origin != "LEAD_CONVERSION":
        # The lead's deal is made by its conversion alone (one deal per lead): a claimed lead id
        # would take that place and swallow the real conversion.
        raise InvalidArgument.field("deal.source.lead_id", "set by lead conversion only: convert the lead")
    if who.is_service and not deal.owner_user_id:
        raise InvalidArgument.field(
            "deal.owner_user_id", "required from partner systems: a deal belongs to a rep"
        )
    owner = deal.owner_user_id or who.user_id
    # Read once: the owner's team places the deal, their manager goes into the event's context.
    profile = await MemberProfiles(uow).find(owner)
    if org_path is None:
        # The owner's team from the directory (an active member's); else the caller's own org.
        org_path = (profile.org_path if profile is not None and profile.active else None) or who.org
    org_path = org_path.strip("/")
    if owner != who.user_id:
        access.require_assign(who, org_path)
    deal.owner_user_id = owner
    model, domain = await stage_models.domain_model(uow)
    stage_id = deal.stage_id or domain.first.stage_id
    try:
        review = s.review_move(domain, "", stage_id, criteria.facts_of(domain, deal, ()))
    except s.UnknownStage:
        raise InvalidArgument.field("deal.stage_id", f"no stage {stage_id!r} in the stage model") from None
    if not review.passed:
        raise refusal(review, "")
    stage = domain.stage(stage_id)
    assert stage is not None
    if not deal.forecast_category:
        default = stage.default_category if stage.default_category != "FORECAST_CATEGORY_UNSPECIFIED" else ""
        deal.forecast_category = types_pb2.ForecastCategory.Value(default or "FORECAST_CATEGORY_PIPELINE")
    deal.stage_history.add(to_stage_id=stage_id, moved_by=who.user_id).transition_time.FromDatetime(at)
    row = DealRow(
        deal_id=deal_id,
        org_path=org_path,
        stage_id=stage_id,
        stage_model_version=model.version,
        probability=review.probability.percent,
        stage_probability=review.probability.base,
        status=OPEN,
        lead_id=deal.source.lead_id or None,
        origin=origin,
        frozen=False,
        lost_category="",
        lost_reason_code="",
        lost_competitor="",
        lost_stage_id="",
        stage_entered_at=at,
        last_confirm_at=at,
        created_at=at,
        created_by=who.user_id,
        updated_at=at,
        updated_by=who.user_id,
        version=1,
        request_digest=digest,
    )
    store_editable(row, deal)
    await repo.add(row)
    await DealChanges(uow).append(deal_id, history.changes(None, tracked(row)), who.user_id, at)
    created = events_pb2.DealCreated(
        deal=events.context_with(row, profile),
        origin=deal_pb2.DealOrigin.Value(f"DEAL_ORIGIN_{origin}"),
        product_lines=sorted({li.product_line for li in deal.line_items if li.product_line}),
        skus=sorted({li.sku for li in deal.line_items if li.sku}),
        created_by=who.user_id,
    )
    await uow.emit(events.DEAL_CREATED, created, subject=deal_id)
    return row


def _check_mask(mask: FieldMask, incoming: deal_pb2.Deal, current: deal_pb2.Deal) -> None:
    """The contract refuses (rather than ignores) a named stage_id or output-only path."""
    output_only = set(output_only_paths(deal_pb2.Deal.DESCRIPTOR))
    for path in mask.paths:
        top = path.split(".")[0]
        if top in LOCKED_PATHS:
            raise InvalidArgument.field("update_mask", "stage_id changes only through MoveStage")
        if top in output_only:
            raise InvalidArgument.field("update_mask", f"{path} is output only: the service sets it")
    if not mask.paths and incoming.stage_id and incoming.stage_id != current.stage_id:
        raise InvalidArgument.field("deal.stage_id", "stage_id changes only through MoveStage")


async def update_deal(
    uow: UnitOfWork, who: Principal, incoming: deal_pb2.Deal, mask: FieldMask, at: datetime
) -> DealRow:
    repo = Deals(uow)
    row = await repo.visible(who, incoming.deal_id)
    repo.check_etag(row, incoming.etag)
    if row.status != OPEN:
        raise FailedPrecondition(
            "only open deals are edited; reopen a lost deal first", reason="DEAL_NOT_OPEN"
        )
    current = deal_of(row)
    _check_mask(mask, incoming, current)
    merged = merge_update(current, incoming, mask)
    if merged.stage_id != current.stage_id:  # e.g. a "*" mask: the stage moves only through its gates
        raise InvalidArgument.field("deal.stage_id", "stage_id changes only through MoveStage")
    validate(merged, at, row.currency)
    if merged.customer.customer_id != current.customer.customer_id:
        await _check_customer(uow, who, merged.customer.customer_id)
    before = tracked(row)
    previous = events.context(row)
    if merged.owner_user_id != row.owner_user_id:
        access.require_assign(who, row.org_path)
        # The deal follows its new owner's team when the directory knows it; that team must be the caller's too.
        row.org_path = await members.org_of(uow, merged.owner_user_id) or row.org_path
        access.require_assign(who, row.org_path)
    _, domain = await stage_models.domain_model(uow)
    stage = domain.stage(row.stage_id)
    if stage is not None:
        # Rules may raise (or, once their condition no longer holds, stop raising) the probability.
        evidence = await repo.evidence_types(row.deal_id)
        p = s.probability(stage, criteria.facts_of(domain, merged, evidence))
        row.probability, row.stage_probability = p.percent, p.base
    store_editable(row, merged)
    await discipline.touched(uow, row, who.user_id, at)  # an update is the weekly update: it thaws
    row.updated_at, row.updated_by = at, who.user_id
    await repo.update_if_etag(row, incoming.etag)
    changed = history.changes(before, tracked(row))
    await DealChanges(uow).append(row.deal_id, changed, who.user_id, at)
    await _announce_update(uow, row, previous, changed, list(mask.paths), who.user_id)
    return row


async def _announce_update(
    uow: UnitOfWork,
    row: DealRow,
    previous: events_pb2.DealContext,
    changed: list[history.Change],
    paths: list[str],
    actor: str,
) -> None:
    names = {c.field for c in changed}
    if history.OWNER in names:
        moved = events_pb2.DealOwnerChanged(
            deal=await events.deal_context(uow, row),
            previous_owner_user_id=previous.owner_user_id,
            previous_org_path=previous.org_path,
            changed_by=actor,
        )
        await uow.emit(events.DEAL_OWNER_CHANGED, moved, subject=row.deal_id)
    updated = events_pb2.DealUpdated(
        deal=await events.deal_context(uow, row), changed_fields=paths, updated_by=actor
    )
    if history.AMOUNT in names:
        updated.previous_amount.CopyFrom(previous.amount)
    if history.CLOSE_DATE in names:
        updated.previous_expected_close_date.CopyFrom(previous.expected_close_date)
    if history.CATEGORY in names:
        updated.previous_forecast_category = previous.forecast_category
    await uow.emit(events.DEAL_UPDATED, updated, subject=row.deal_id)


__all__ = ["body_of", "create_deal", "update_deal", "validate"]
