"""Partner key use cases: create, update, revoke, rotate, and the exchange's checks. Never commit.

A secret is made here, returned once (create, rotate) and only its SHA-256 is kept
(`partner_key_secrets`, unique across tenants so the exchange finds the key by it).
Rotation keeps the previous secret's hash with an end (`valid_until`): it works until the
grace ends. Revocation ends every secret at once and announces PartnerKeyRevoked; the
API then marks the key revoked in Redis, which every service checks on each partner call.
Every change writes an audit row naming the fields changed, never a secret.
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf import descriptor_pool
from google.protobuf.field_mask_pb2 import FieldMask
from ulid import ULID

from kit.auth import Principal
from kit.auth.principal import org_segments
from kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
    Unauthenticated,
)
from kit.resources import UnitOfWork, merge_update, sanitize_create
from salesops.integration.v1 import events_pb2 as ev
from salesops.integration.v1 import partner_pb2 as p
from services.integration import integration_settings
from services.integration.domain import partner_keys as rules
from services.integration.repositories.partner_keys import PartnerKeyChanges, PartnerKeys, PartnerKeySecrets
from services.integration.store_partner_keys import PartnerKeyChangeRow, PartnerKeyRow, PartnerKeySecretRow

UPDATABLE = frozenset(
    {
        "display_name",
        "partner_name",
        "scopes",
        "org_path",
        "allowed_cidrs",
        "rate_limit_per_minute",
        "expire_time",
    }
)


def _method_exists(area: str, method: str) -> bool:
    service = f"salesops.{area}.v1.{area.capitalize()}Service"
    try:
        importlib.import_module(f"salesops.{area}.v1.{area}_service_pb2")  # loads its descriptors
        descriptor_pool.Default().FindMethodByName(f"{service}.{method}")
    except (ImportError, KeyError):
        return False
    return True


def _problems(msg: p.PartnerKey, now: datetime) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    key_id = msg.key_id
    if not key_id or len(key_id) > 64 or not key_id.replace("-", "").replace("_", "").isalnum():
        problems.append(("key_id", "required: a client-made ULID (at most 64 letters, digits, '-' or '_')"))
    if not msg.display_name.strip() or len(msg.display_name) > 200:
        problems.append(("display_name", "required, at most 200 characters"))
    if len(msg.partner_name) > 200:
        problems.append(("partner_name", "at most 200 characters"))
    scopes = list(msg.scopes)
    problems += [("scopes", d) for d in rules.scope_problems(scopes)]
    for scope in scopes:
        area, _, name = scope.partition(".")
        if name[:1].isupper() and not _method_exists(area, name):
            problems.append(("scopes", f"{scope!r} names no method of the {area} service"))
    if msg.org_path and (len(msg.org_path) > 256 or org_segments(msg.org_path) is None):
        problems.append(("org_path", "an org-unit path such as east/team-a, or empty for the whole tenant"))
    problems += [("allowed_cidrs", d) for d in rules.cidr_problems(list(msg.allowed_cidrs))]
    rate = rules.rate_problem(msg.rate_limit_per_minute)
    if rate:
        problems.append(("rate_limit_per_minute", rate))
    expiry = msg.expire_time.ToDatetime(tzinfo=UTC) if msg.HasField("expire_time") else None
    problem = rules.expiry_problem(expiry, now)
    if problem:
        problems.append(("expire_time", problem))
    return problems


def _check(msg: p.PartnerKey, now: datetime) -> None:
    problems = _problems(msg, now)
    if problems:
        raise InvalidArgument(
            "invalid partner key", [FieldViolation(f"partner_key.{f}", d) for f, d in problems]
        )


def as_message(row: PartnerKeyRow) -> p.PartnerKey:
    """The stored, admin-settable fields as a PartnerKey (for merges and digests)."""
    msg = p.PartnerKey(
        key_id=row.key_id,
        display_name=row.display_name,
        partner_name=row.partner_name,
        scopes=row.scopes.split(),
        org_path=row.org_path,
        allowed_cidrs=row.allowed_cidrs.split(),
        rate_limit_per_minute=row.rate_limit_per_minute,
    )
    msg.expire_time.FromDatetime(row.expire_at)
    return msg


def _apply(row: PartnerKeyRow, msg: p.PartnerKey) -> None:
    row.display_name, row.partner_name = msg.display_name.strip(), msg.partner_name
    row.scopes = " ".join(sorted(set(msg.scopes)))
    row.org_path = msg.org_path.strip("/")
    row.allowed_cidrs = " ".join(msg.allowed_cidrs)
    row.rate_limit_per_minute = msg.rate_limit_per_minute or rules.DEFAULT_RATE
    row.expire_at = msg.expire_time.ToDatetime(tzinfo=UTC)


async def _audit(
    uow: UnitOfWork,
    who: Principal,
    key_id: str,
    action: str,
    fields: list[str],
    at: datetime,
    reason: str = "",
) -> None:
    await PartnerKeyChanges(uow).add(
        PartnerKeyChangeRow(
            change_id=str(ULID()),
            key_id=key_id,
            action=action,
            fields=",".join(sorted(fields))[:1000],
            reason=reason[:500],
            changed_by=who.user_id,
            changed_at=at,
        )
    )


async def _new_secret(uow: UnitOfWork, key_id: str, at: datetime, live: bool) -> str:
    secret = rules.new_secret(live=live)
    await PartnerKeySecrets(uow).add(
        PartnerKeySecretRow(
            secret_hash=rules.secret_hash(secret), key_id=key_id, valid_until=None, created_at=at
        )
    )
    return secret


async def create_key(
    uow: UnitOfWork, who: Principal, incoming: p.PartnerKey, at: datetime, *, live: bool
) -> tuple[PartnerKeyRow, str]:
    """The key and its secret; a retry of the same create returns the key and no secret."""
    msg = sanitize_create(incoming)
    msg.ClearField("etag")
    _check(msg, at)
    digest = hashlib.sha256(msg.SerializeToString(deterministic=True)).hexdigest()
    repo = PartnerKeys(uow)
    found = await repo.find(msg.key_id)
    if found is not None:
        if found.request_digest == digest:
            return found, ""  # shown once: a retry does not reveal it again
        raise AlreadyExists("integration.PartnerKey", msg.key_id)
    row = PartnerKeyRow(
        key_id=msg.key_id,
        key_prefix="",
        revoked_by="",
        revoke_reason="",
        created_at=at,
        created_by=who.user_id,
        updated_at=at,
        updated_by=who.user_id,
        version=1,
        request_digest=digest,
    )
    _apply(row, msg)
    secret = await _new_secret(uow, msg.key_id, at, live)
    row.key_prefix = rules.hint(secret)
    await repo.add(row)
    await _audit(uow, who, row.key_id, "create", [f.name for f, _ in msg.ListFields()], at)
    return row, secret


def _require_active(row: PartnerKeyRow, at: datetime) -> None:
    state = rules.state_of(rules.KeyFacts(row.revoked_at, row.expire_at), at)
    if state != rules.KeyState.ACTIVE:
        raise FailedPrecondition(
            f"the partner key is {state.name.lower()}", reason=f"PARTNER_KEY_{state.name}"
        )


async def update_key(
    uow: UnitOfWork, who: Principal, incoming: p.PartnerKey, mask: FieldMask, at: datetime
) -> PartnerKeyRow:
    paths = list(mask.paths)
    if not paths:
        raise InvalidArgument.field("update_mask", "required: name the fields to change")
    other = sorted(set(paths) - UPDATABLE)
    if other:
        raise InvalidArgument.field(
            "update_mask", f"cannot change {', '.join(other)}; changeable: {', '.join(sorted(UPDATABLE))}"
        )
    repo = PartnerKeys(uow)
    row = await repo.get(incoming.key_id)
    repo.check_etag(row, incoming.etag)
    _require_active(row, at)
    merged = merge_update(as_message(row), incoming, mask)
    _check(merged, at)
    _apply(row, merged)
    row.updated_at, row.updated_by = at, who.user_id
    await repo.update_if_etag(row, incoming.etag)
    await _audit(uow, who, row.key_id, "update", paths, at)
    return row


async def revoke_key(
    uow: UnitOfWork, who: Principal, key_id: str, reason: str, at: datetime
) -> PartnerKeyRow:
    """Ends every secret of the key now and announces it; revoking twice changes nothing."""
    if not reason.strip():
        raise InvalidArgument.field("reason", "required: why the key is revoked")
    repo = PartnerKeys(uow)
    row = await repo.get(key_id)
    if row.revoked_at is not None:
        return row
    row.revoked_at, row.revoked_by, row.revoke_reason = at, who.user_id, reason.strip()[:500]
    row.updated_at, row.updated_by = at, who.user_id
    for secret in await PartnerKeySecrets(uow).of_key(key_id):
        secret.valid_until = at
    await repo.update_if_etag(row, "")
    await _audit(uow, who, key_id, "revoke", [], at, reason)
    revoked = ev.PartnerKeyRevoked(
        key_id=key_id,
        key_prefix=row.key_prefix,
        display_name=row.display_name,
        partner_name=row.partner_name,
        revoked_by=who.user_id,
        reason=row.revoke_reason,
    )
    revoked.revoke_time.FromDatetime(at)
    await uow.emit("integration.PartnerKeyRevoked", revoked, subject=key_id)
    return row


async def rotate_key(
    uow: UnitOfWork, who: Principal, key_id: str, grace: timedelta | None, at: datetime, *, live: bool
) -> tuple[PartnerKeyRow, str]:
    """A new secret; the current one keeps working for the grace period (0 = ends now)."""
    if grace is None:  # the tenant's default (IntegrationSettings.rotation_grace_period)
        grace = integration_settings.duration(await integration_settings.get(uow), "rotation_grace_period")
    try:
        period = rules.grace_period(grace)
    except ValueError as exc:
        raise InvalidArgument.field("previous_secret_grace", str(exc)) from None
    repo = PartnerKeys(uow)
    row = await repo.get(key_id)
    _require_active(row, at)
    ends = at + period
    secrets = PartnerKeySecrets(uow)
    for old in await secrets.of_key(key_id):
        if old.valid_until is not None and rules.utc(old.valid_until) <= at:
            await secrets.drop(old)  # long over: nothing can use it
        elif old.valid_until is None or rules.utc(old.valid_until) > ends:
            old.valid_until = ends
    secret = await _new_secret(uow, key_id, at, live)
    row.key_prefix = rules.hint(secret)
    row.previous_secret_expire_at = ends if period else None
    row.updated_at, row.updated_by = at, who.user_id
    await repo.update_if_etag(row, "")
    await _audit(uow, who, key_id, "rotate", ["secret"], at, f"previous secret valid for {period}")
    return row, secret


@dataclass(frozen=True)
class Grant:
    """What the exchange mints: for which key, tenant, org, scopes, rate and until when."""

    tenant: str
    key_id: str
    org_path: str
    scopes: list[str]
    rate_limit_per_minute: int
    key_expires: datetime
    touch: bool


async def check_exchange(
    uow: UnitOfWork,
    key_id: str,
    valid_until: datetime | None,
    address: str,
    requested: list[str],
    at: datetime,
) -> Grant:
    """Refuse a revoked or expired key, an ended previous secret, an address or scope outside the key's."""
    row = await PartnerKeys(uow).find(key_id)
    if row is None or not rules.secret_usable(valid_until, at):
        raise Unauthenticated("the partner secret is not valid", reason="PARTNER_SECRET_INVALID")
    state = rules.state_of(rules.KeyFacts(row.revoked_at, row.expire_at), at)
    if state != rules.KeyState.ACTIVE:
        raise Unauthenticated(f"the partner key is {state.name.lower()}", reason=f"PARTNER_KEY_{state.name}")
    if not rules.address_allowed(address, row.allowed_cidrs.split()):
        raise PermissionDenied("this address may not use the partner key", reason="PARTNER_ADDRESS_REFUSED")
    granted = rules.granted_scopes(row.scopes.split(), requested)
    if granted is None:
        raise PermissionDenied("a requested scope is not granted to the key", reason="SCOPE_NOT_GRANTED")
    return Grant(
        tenant=uow.tenant,
        key_id=key_id,
        org_path=row.org_path,
        scopes=granted,
        rate_limit_per_minute=row.rate_limit_per_minute,
        key_expires=rules.utc(row.expire_at),
        touch=rules.last_used_due(row.last_used_at, at),
    )


async def touch(uow: UnitOfWork, key_id: str, at: datetime) -> None:
    await PartnerKeys(uow).touch(key_id, at)
