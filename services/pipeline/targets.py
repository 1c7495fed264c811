"""Target use cases: create, update and sign a node of the cascade, and who may do what. Never commit.

A target is handed down by the level above (managers of the unit above it, admins)
and signed by its owner only (the rep for a rep's target): the signature fixes the
committed amount; a later change of it voids the signature. Every change is kept
in the append-only audit (`target_changes`); signing emits `TargetSigned`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime

from google.protobuf.field_mask_pb2 import FieldMask

from kit.auth import Principal
from kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Violations,
)
from kit.resources import UnitOfWork, merge_update, sanitize_create
from salesops.common.v1.types_pb2 import Money, Role
from salesops.pipeline.v1 import events_pb2, settings_pb2, target_pb2, types_pb2
from services.pipeline import access, pipeline_settings
from services.pipeline.convert import bounded_text, date_proto, enum_name, enum_value, optional_date, ts
from services.pipeline.domain import forecast as f
from services.pipeline.domain import targets as t
from services.pipeline.repositories.members import MemberProfiles
from services.pipeline.repositories.targets import TargetChanges, Targets
from services.pipeline.store_targets import TargetRow

TARGET_SIGNED = "pipeline.TargetSigned"
MAX_AMOUNT_MINOR = 10**15  # as a deal's: sums over a whole cascade stay far inside int64
MAX_CHARS = {"target_id": 64, "user_id": 128, "owner_user_id": 128, "org_path": 200}
EDITABLE = ("assigned_amount", "committed_amount", "challenge_amount", "owner_user_id")
MANAGING_PROFILES = (Role.ROLE_SUPERVISOR, Role.ROLE_DIRECTOR)


# ---------------------------------------------------------------- access


def can_view(who: Principal, row: TargetRow) -> bool:
    """Own and owned targets; a manager's org and below; the tenant for admins and partner systems."""
    return (
        access.sees_all(who)
        or who.user_id in (row.user_id, row.owner_user_id)
        or access.manages(who, row.org_path)
    )


def can_manage(who: Principal, level: str, org_path: str) -> bool:
    """Hand down a target: admins; a manager for the units below their own and the reps of their org.

    A manager does not set the target of their own unit (the level above does).
    """
    if who.is_admin:
        return True
    if not access.manages(who, org_path):
        return False
    return level == "REP" or f.segments(org_path) != f.segments(who.org)


def require_manage(who: Principal, row: TargetRow) -> None:
    if not can_view(who, row):
        raise NotFound(Targets.resource, row.target_id)
    if not can_manage(who, row.level, row.org_path):
        raise PermissionDenied(
            "targets are handed down by the managers above the unit and admins", reason="NOT_TARGET_MANAGER"
        )


async def visible(uow: UnitOfWork, who: Principal, target_id: str) -> TargetRow:
    row = await Targets(uow).find(target_id) if target_id else None
    if row is None or not can_view(who, row):
        raise NotFound(Targets.resource, target_id or "(empty)")
    return row


# ---------------------------------------------------------------- periods and money


@dataclass(frozen=True)
class Period:
    granularity: f.Granularity
    start: date
    end: date


def period_of(p: types_pb2.SalesPeriod, field: str = "period") -> Period:
    """A real month, quarter or year: the one holding start_date."""
    name = enum_name(types_pb2.PeriodGranularity, p.granularity)
    if name not in ("MONTH", "QUARTER", "YEAR"):
        raise InvalidArgument.field(f"{field}.granularity", "one of MONTH, QUARTER, YEAR")
    day = optional_date(p.start_date, f"{field}.start_date")
    if day is None:
        raise InvalidArgument.field(f"{field}.start_date", "required: any day inside the period")
    g = f.Granularity[name]
    start, end = f.period_bounds(g, day)
    return Period(g, start, end)


def period_proto(granularity: str, start: date, end: date) -> types_pb2.SalesPeriod:
    return types_pb2.SalesPeriod(
        granularity=enum_value(types_pb2.PeriodGranularity, granularity),
        start_date=date_proto(start),
        end_date=date_proto(end),
    )


def check_money(v: Violations, field: str, m: Money, currency: str, *, required: bool, present: bool) -> None:
    if not present:
        if required:
            v.add(field, f"required, in the tenant's base currency {currency}")
        return
    if m.currency != currency:
        v.add(field, f"in the tenant's base currency {currency}")
    elif not 0 <= m.amount_minor <= MAX_AMOUNT_MINOR:
        v.add(field, f"0 to {MAX_AMOUNT_MINOR} minor units")


def _money(minor: int, currency: str) -> Money:
    return Money(amount_minor=minor, currency=currency)


# ---------------------------------------------------------------- the document


def document(row: TargetRow) -> target_pb2.Target:
    """The stored target as the message, with its parent, status, signature, audit and etag."""
    msg = target_pb2.Target(
        target_id=row.target_id,
        period=period_proto(row.granularity, row.period_start, row.period_end),
        level=enum_value(types_pb2.OrgLevel, row.level),
        org_path=row.org_path,
        user_id=row.user_id,
        owner_user_id=row.owner_user_id,
        parent_target_id=row.parent_target_id or "",
        assigned_amount=_money(row.assigned_minor, row.currency),
        committed_amount=_money(row.committed_minor, row.currency),
        status=enum_value(target_pb2.TargetStatus, row.status),
        etag=str(row.version),
    )
    if row.challenge_minor is not None:
        msg.challenge_amount.CopyFrom(_money(row.challenge_minor, row.currency))
    if row.signed_at is not None:
        msg.signature.signer_user_id = row.signed_by
        msg.signature.sign_time.CopyFrom(ts(row.signed_at))
        msg.signature.signed_amount.CopyFrom(_money(row.signed_minor or 0, row.currency))
        msg.signature.statement = row.statement
    a = msg.audit
    a.create_time.CopyFrom(ts(row.created_at))
    a.created_by = row.created_by
    a.update_time.CopyFrom(ts(row.updated_at))
    a.updated_by = row.updated_by
    return msg


# ---------------------------------------------------------------- create


def _check(msg: target_pb2.Target, currency: str) -> tuple[str, Period | None]:
    """Every problem of a target at once; its level name and period."""
    v = Violations()
    if not msg.target_id.strip():
        v.add("target.target_id", "required (a client-made ULID)")
    for name, limit in MAX_CHARS.items():
        if len(getattr(msg, name)) > limit:
            v.add(f"target.{name}", f"at most {limit} characters")
    period = None
    try:
        period = period_of(msg.period, "target.period")
    except InvalidArgument as exc:
        for fv in exc.violations:
            v.add(fv.field, fv.description)
    level = enum_name(types_pb2.OrgLevel, msg.level)
    if level not in t.LEVELS:
        v.add("target.level", "one of COMPANY, REGION, CITY, TEAM, REP")
    elif level == "REP":
        if not msg.user_id.strip():
            v.add("target.user_id", "required for a rep's target")
        if msg.owner_user_id and msg.owner_user_id != msg.user_id:
            v.add("target.owner_user_id", "a rep's target is signed by the rep")
    else:
        if msg.user_id:
            v.add("target.user_id", "only for a rep's target")
        problem = t.path_problem(level, msg.org_path.strip("/"))
        if problem or any(p in (".", "..") for p in msg.org_path.split("/")):
            v.add("target.org_path", problem or "a plain path such as east/team-a")
    _check_amounts(v, msg, currency)
    v.raise_if_any("invalid target")
    return level, period


def _check_amounts(v: Violations, msg: target_pb2.Target, currency: str) -> None:
    check_money(
        v,
        "target.committed_amount",
        msg.committed_amount,
        currency,
        required=True,
        present=msg.HasField("committed_amount"),
    )
    check_money(
        v,
        "target.assigned_amount",
        msg.assigned_amount,
        currency,
        required=False,
        present=msg.HasField("assigned_amount"),
    )
    has_challenge = msg.HasField("challenge_amount")
    check_money(
        v, "target.challenge_amount", msg.challenge_amount, currency, required=False, present=has_challenge
    )
    if has_challenge and msg.challenge_amount.amount_minor < msg.committed_amount.amount_minor:
        v.add("target.challenge_amount", "at least the committed amount")


async def _check_owner(
    uow: UnitOfWork, owner: str, org_path: str, field: str = "target.owner_user_id"
) -> None:
    """A unit's owner is an active member placed at the unit or above it (who else could sign it)."""
    profile = await MemberProfiles(uow).find(owner)
    if profile is None or not profile.active or not t.under(org_path, profile.org_path):
        raise InvalidArgument.field(field, f"an active member at {org_path or 'the company'!r} or above it")


async def _default_owner(uow: UnitOfWork, org_path: str) -> str:
    """The one supervisor or director profiled at the unit (the company: the one admin at "")."""
    wanted = (Role.ROLE_ADMIN,) if not org_path else MANAGING_PROFILES
    found = [
        p.user_id
        for p in await Targets(uow).profiles_at(org_path)
        if settings_pb2.MemberProfile.FromString(p.body).role in wanted
    ]
    if len(found) != 1:
        raise InvalidArgument.field(
            "target.owner_user_id",
            f"required: the member profiles name {len(found)} managers of {org_path or 'the company'!r}",
        )
    return found[0]


def _digest(msg: target_pb2.Target) -> str:
    clean = target_pb2.Target()
    clean.CopyFrom(msg)
    clean.ClearField("etag")
    return hashlib.sha256(clean.SerializeToString(deterministic=True)).hexdigest()


async def create(uow: UnitOfWork, who: Principal, incoming: target_pb2.Target, at: datetime) -> TargetRow:
    msg = sanitize_create(incoming)
    msg.org_path = msg.org_path.strip("/")
    currency = await pipeline_settings.base_currency(uow)
    level, period = _check(msg, currency)
    assert period is not None
    repo = Targets(uow)
    digest = _digest(msg)
    found = await repo.find(msg.target_id)
    if found is not None:
        if found.request_digest == digest and can_view(who, found):
            return found  # a replay of the same create
        raise AlreadyExists(repo.resource, msg.target_id)
    if level == "REP":
        profile = await MemberProfiles(uow).find(msg.user_id)
        if profile is None or not profile.active:
            raise FailedPrecondition(
                f"{msg.user_id!r} has no active member profile placing them in a team",
                reason="NO_MEMBER_PROFILE",
            )
        msg.org_path, msg.owner_user_id = profile.org_path, msg.user_id
    if not can_manage(who, level, msg.org_path):
        raise PermissionDenied(
            "targets are handed down by the managers above the unit and admins", reason="NOT_TARGET_MANAGER"
        )
    if not msg.owner_user_id:
        msg.owner_user_id = await _default_owner(uow, msg.org_path)
    elif level != "REP":
        await _check_owner(uow, msg.owner_user_id, msg.org_path)
    key = t.unit_key(level, msg.org_path, msg.user_id)
    existing = await repo.by_unit(period.granularity.value, period.start, key)
    if existing is not None:
        raise AlreadyExists(
            repo.resource,
            existing.target_id,
            f"{key[2:] or 'the company'} already has a {period.granularity.value} target for {period.start}",
        )
    committed = msg.committed_amount.amount_minor
    row = TargetRow(
        target_id=msg.target_id,
        granularity=period.granularity.value,
        period_start=period.start,
        period_end=period.end,
        level=level,
        org_path=msg.org_path,
        user_id=msg.user_id,
        unit_key=key,
        owner_user_id=msg.owner_user_id,
        currency=currency,
        assigned_minor=msg.assigned_amount.amount_minor if msg.HasField("assigned_amount") else committed,
        committed_minor=committed,
        challenge_minor=msg.challenge_amount.amount_minor if msg.HasField("challenge_amount") else None,
        status="ASSIGNED",
        signed_by="",
        statement="",
        created_at=at,
        created_by=who.user_id,
        updated_at=at,
        updated_by=who.user_id,
        version=1,
        request_digest=digest,
    )
    parents = await repo.units_at(row.granularity, row.period_start, t.ancestor_paths(level, row.org_path))
    parents.sort(key=lambda p: -len(f.segments(p.org_path)))
    row.parent_target_id = parents[0].target_id if parents else None
    await repo.add(row)
    if level != "REP":
        await repo.adopt(row)  # descendants that hung under our parent now hang under us
    await check_cascade(repo, row, parents[0] if parents else None)
    await TargetChanges(uow).record(
        row.target_id, "CREATED", who.user_id, at, "committed_amount", "", str(committed)
    )
    return row


async def check_cascade(repo: Targets, row: TargetRow, parent: TargetRow | None) -> None:
    """What is handed down stays within the parent's challenge (else committed), here and below."""
    over: list[str] = []
    if parent is not None:
        await repo.lock(parent.target_id)
        given = await repo.children_assigned(parent.target_id)
        limit = t.hand_down_limit(parent.committed_minor, parent.challenge_minor)
        if given > limit:
            over.append(f"the children of {parent.target_id} would be handed {given}, over its {limit}")
    given = await repo.children_assigned(row.target_id)
    limit = t.hand_down_limit(row.committed_minor, row.challenge_minor)
    if given > limit:
        over.append(f"the children of {row.target_id} were handed {given}, over its {limit}")
    if over:
        raise FailedPrecondition("; ".join(over), reason="CASCADE_EXCEEDS_PARENT")


# ---------------------------------------------------------------- update and sign


async def update(
    uow: UnitOfWork, who: Principal, incoming: target_pb2.Target, mask: FieldMask, at: datetime
) -> TargetRow:
    for path in mask.paths:
        if path not in EDITABLE and path != "etag":
            raise InvalidArgument.field(
                "update_mask", f"{path!r} cannot change; editable: {', '.join(EDITABLE)}"
            )
    repo = Targets(uow)
    row = await visible(uow, who, incoming.target_id)
    require_manage(who, row)
    before = document(row)
    merged = merge_update(before, incoming, mask)
    currency = row.currency
    v = Violations()
    _check_amounts(v, merged, currency)
    if row.level == "REP" and merged.owner_user_id != row.user_id:
        v.add("target.owner_user_id", "a rep's target is signed by the rep")
    if not merged.owner_user_id.strip() or len(merged.owner_user_id) > MAX_CHARS["owner_user_id"]:
        v.add("target.owner_user_id", "required, at most 128 characters")
    v.raise_if_any("invalid target")
    changes: list[tuple[str, str, str]] = []
    for name in ("assigned_amount", "committed_amount", "challenge_amount"):
        old_m, new_m = getattr(before, name), getattr(merged, name)
        has_new = merged.HasField(name)
        if (before.HasField(name), old_m.amount_minor) != (has_new, new_m.amount_minor):
            old = str(old_m.amount_minor) if before.HasField(name) else ""
            changes.append((name, old, str(new_m.amount_minor) if has_new else ""))
    if merged.owner_user_id != row.owner_user_id:
        await _check_owner(uow, merged.owner_user_id, row.org_path)
        changes.append(("owner_user_id", row.owner_user_id, merged.owner_user_id))
    if not changes:
        repo.check_etag(row, incoming.etag)
        return row
    row.assigned_minor = merged.assigned_amount.amount_minor
    row.committed_minor = merged.committed_amount.amount_minor
    row.challenge_minor = (
        merged.challenge_amount.amount_minor if merged.HasField("challenge_amount") else None
    )
    row.owner_user_id = merged.owner_user_id
    row.updated_at, row.updated_by = at, who.user_id
    audit = TargetChanges(uow)
    for name, old, new in changes:
        await audit.record(row.target_id, "UPDATED", who.user_id, at, name, old, new)
    if row.status == "COMMITTED" and any(n in ("committed_amount", "owner_user_id") for n, _, _ in changes):
        # The signature was on another amount or by another owner: void it, the owner signs again.
        await audit.record(
            row.target_id, "SIGNATURE_VOIDED", who.user_id, at, "status", "COMMITTED", "ASSIGNED"
        )
        row.status, row.signed_by, row.signed_at, row.signed_minor, row.statement = (
            "ASSIGNED",
            "",
            None,
            None,
            "",
        )
    await repo.update_if_etag(row, incoming.etag)
    parent = await repo.find(row.parent_target_id) if row.parent_target_id else None
    await check_cascade(repo, row, parent)
    return row


async def sign(
    uow: UnitOfWork, who: Principal, target_id: str, seen: Money, statement: str, etag: str, at: datetime
) -> TargetRow:
    repo = Targets(uow)
    row = await visible(uow, who, target_id)
    if row.owner_user_id != who.user_id:
        raise PermissionDenied("only the target's owner signs it", reason="NOT_TARGET_OWNER")
    bounded_text(statement, "statement")
    repo.check_etag(row, etag)
    if (seen.amount_minor, seen.currency) != (row.committed_minor, row.currency):
        raise FailedPrecondition(
            f"the committed amount is now {row.committed_minor} {row.currency}: read it again before signing",
            reason="COMMITTED_AMOUNT_CHANGED",
        )
    if row.status == "COMMITTED":
        return row  # signed already, on this very amount
    row.status, row.signed_by, row.signed_at = "COMMITTED", who.user_id, at
    row.signed_minor, row.statement = row.committed_minor, statement
    row.updated_at, row.updated_by = at, who.user_id
    await repo.update_if_etag(row, etag)
    await TargetChanges(uow).record(
        row.target_id, "SIGNED", who.user_id, at, "committed_amount", "", str(row.committed_minor)
    )
    event = events_pb2.TargetSigned(
        target_id=row.target_id,
        period=period_proto(row.granularity, row.period_start, row.period_end),
        level=enum_value(types_pb2.OrgLevel, row.level),
        org_path=row.org_path,
        user_id=row.user_id,
        signer_user_id=who.user_id,
        committed_amount=_money(row.committed_minor, row.currency),
    )
    if row.challenge_minor is not None:
        event.challenge_amount.CopyFrom(_money(row.challenge_minor, row.currency))
    await uow.emit(TARGET_SIGNED, event, subject=row.target_id)
    return row


__all__ = [
    "TARGET_SIGNED",
    "Period",
    "can_manage",
    "can_view",
    "check_money",
    "create",
    "document",
    "period_of",
    "period_proto",
    "sign",
    "update",
    "visible",
]
