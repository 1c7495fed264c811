"""Outbound subscription use cases: create, update, delete, enable, disable, rotate the secret. Never commit.

The signing secret (a `v1` whsec_ secret, or a `v1a` ed25519 private key the server
makes) is sealed with kit.secrets into its own column, never stored in the body,
never logged, never returned except once: a server-made secret in the create or
rotate answer. A rotation keeps the previous secret signing alongside for the
overlap. Every change writes an audit row naming the fields, never their values.
The endpoint URL's DNS check happens in the API before the transaction opens.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any, cast

from google.protobuf.field_mask_pb2 import FieldMask
from ulid import ULID

from kit import secrets as sealing
from kit.auth import Principal
from kit.errors import AlreadyExists, FieldViolation, InvalidArgument
from kit.net import Blocked, OutboundPolicy, parse_target
from kit.resources import UnitOfWork, merge_update, sanitize_create
from salesops.integration.v1 import webhooks_pb2 as wh
from services.integration.domain import outbound, outbound_signing
from services.integration.repositories.outbound import Deliveries, SubscriptionChanges, Subscriptions
from services.integration.store_outbound import WebhookSubscriptionChangeRow, WebhookSubscriptionRow

ED25519 = wh.WEBHOOK_SIGNING_SCHEME_ED25519
HMAC = wh.WEBHOOK_SIGNING_SCHEME_HMAC_SHA256
# Fields the server owns or keeps in columns: never in the stored body.
_COLUMNS = (
    "subscription_id", "display_name", "endpoint_url", "event_types", "signing_secret", "owner_user_id",
    "etag", "signing_scheme",
)  # fmt: skip


def validate(msg: wh.WebhookSubscription, policy: OutboundPolicy) -> None:
    """Every problem at once (INVALID_ARGUMENT, one field violation each); the URL without DNS here."""
    problems: list[tuple[str, str]] = []
    sid = msg.subscription_id
    if not sid or len(sid) > 64 or not sid.replace("-", "").replace("_", "").isalnum():
        problems.append(("subscription_id", "required: at most 64 letters, digits, '-' or '_'"))
    if not msg.display_name.strip() or len(msg.display_name) > 200:
        problems.append(("display_name", "required, at most 200 characters"))
    try:
        parse_target(msg.endpoint_url, policy)
    except Blocked as exc:
        problems.append(("endpoint_url", f"not an allowed destination: {exc.reason}"))
    problems += [("event_types", p) for p in outbound.type_problems(list(msg.event_types))]
    problems += [("headers", p) for p in outbound.header_problems(dict(msg.headers))]
    if msg.signing_secret and not outbound_signing.valid_hmac_secret(msg.signing_secret):
        problems.append(("signing_secret", "whsec_ + base64 of 24 to 64 random bytes"))
    if msg.signing_secret and msg.signing_scheme == ED25519:
        problems.append(("signing_secret", "ED25519 keys are made by the server; leave it empty"))
    policy_ = msg.retry_policy
    if not 0 <= policy_.max_attempts <= outbound.MAX_ATTEMPTS:
        problems.append(
            ("retry_policy.max_attempts", f"0 (= {outbound.MAX_ATTEMPTS}) to {outbound.MAX_ATTEMPTS}")
        )
    if policy_.HasField("initial_backoff") or policy_.HasField("max_backoff") or policy_.multiplier:
        problems.append(
            ("retry_policy", "only max_attempts: deliveries follow the Standard Webhooks schedule")
        )
    if msg.HasField("timeout") and not (timedelta(0) < msg.timeout.ToTimedelta() <= outbound.MAX_TIMEOUT):
        problems.append(("timeout", "more than 0 and at most 30 s"))
    if problems:
        raise InvalidArgument(
            "invalid webhook subscription", [FieldViolation(f"subscription.{p}", d) for p, d in problems]
        )


def _body(msg: wh.WebhookSubscription) -> bytes:
    body = wh.WebhookSubscription()
    body.CopyFrom(msg)
    for name in _COLUMNS:
        body.ClearField(name)  # type: ignore[arg-type]
    return body.SerializeToString(deterministic=True)


def _hint(secret: str) -> str:
    return secret[-4:]


def _new_secret(scheme: int, given: str) -> tuple[str, str, str]:
    """(secret to seal, public key or "", the secret to show once or "")."""
    if scheme == ED25519:
        private, public = outbound_signing.new_ed25519_key()
        return private, public, ""
    secret = given or outbound_signing.new_hmac_secret()
    return secret, "", "" if given else secret


async def _audit(
    uow: UnitOfWork, who: Principal, sid: str, action: str, fields: list[str], at: datetime, reason: str = ""
) -> None:
    await SubscriptionChanges(uow).add(
        WebhookSubscriptionChangeRow(
            change_id=str(ULID()),
            subscription_id=sid,
            action=action,
            fields=",".join(sorted(fields))[:1000],
            reason=reason[:500],
            changed_by=who.user_id,
            changed_at=at,
        )
    )


async def create(
    uow: UnitOfWork, who: Principal, incoming: wh.WebhookSubscription, policy: OutboundPolicy, at: datetime
) -> tuple[WebhookSubscriptionRow, str]:
    """The subscription (ENABLED) and the secret the server made, shown this once."""
    msg = sanitize_create(incoming)
    validate(msg, policy)
    scheme = msg.signing_scheme or HMAC
    digest = hashlib.sha256(msg.SerializeToString(deterministic=True)).hexdigest()
    repo = Subscriptions(uow)
    found = await repo.find(msg.subscription_id)
    if found is not None:
        if found.request_digest == digest:
            return found, ""  # a replay of the same create: the secret is not shown twice
        raise AlreadyExists("integration.WebhookSubscription", msg.subscription_id)
    secret, public, shown = _new_secret(scheme, msg.signing_secret)
    row = WebhookSubscriptionRow(
        subscription_id=msg.subscription_id,
        display_name=msg.display_name.strip(),
        endpoint_url=msg.endpoint_url,
        event_types=" ".join(msg.event_types),
        state=wh.SUBSCRIPTION_STATE_ENABLED,
        state_reason="",
        signing_scheme=scheme,
        sealed_secret=sealing.seal(secret),
        sealed_previous_secret="",
        public_key=public,
        previous_public_key="",
        secret_hint="" if scheme == ED25519 else _hint(secret),
        owner_user_id=msg.owner_user_id or who.user_id,
        consecutive_failures=0,
        created_at=at,
        created_by=who.user_id,
        updated_at=at,
        updated_by=who.user_id,
        version=1,
        request_digest=digest,
        body=_body(msg),
    )
    await repo.add(row)
    await _audit(uow, who, row.subscription_id, "create", [], at)
    return row, shown


def as_message(row: WebhookSubscriptionRow) -> wh.WebhookSubscription:
    """The stored subscription as the contract's message (no secret, no server state)."""
    msg = wh.WebhookSubscription.FromString(row.body)
    msg.subscription_id, msg.display_name, msg.endpoint_url = (
        row.subscription_id,
        row.display_name,
        row.endpoint_url,
    )
    msg.event_types.extend(row.event_types.split())
    msg.owner_user_id, msg.signing_scheme = row.owner_user_id, cast(Any, row.signing_scheme)
    return msg


async def update(
    uow: UnitOfWork,
    who: Principal,
    incoming: wh.WebhookSubscription,
    mask: FieldMask,
    policy: OutboundPolicy,
    at: datetime,
) -> WebhookSubscriptionRow:
    repo = Subscriptions(uow)
    row = await repo.get(incoming.subscription_id)
    repo.check_etag(row, incoming.etag)
    if "signing_secret" in mask.paths:
        raise InvalidArgument.field("update_mask", "the secret changes with RotateWebhookSubscriptionSecret")
    merged = merge_update(as_message(row), incoming, mask)
    validate(merged, policy)
    row.display_name, row.endpoint_url = merged.display_name.strip(), merged.endpoint_url
    row.event_types, row.owner_user_id = (
        " ".join(merged.event_types),
        merged.owner_user_id or row.owner_user_id,
    )
    row.body = _body(merged)
    row.updated_at, row.updated_by = at, who.user_id
    await repo.update_if_etag(row, incoming.etag)
    await _audit(uow, who, row.subscription_id, "update", list(mask.paths), at)
    return row


async def delete(uow: UnitOfWork, who: Principal, sid: str, etag: str, at: datetime) -> None:
    repo = Subscriptions(uow)
    row = await repo.get(sid)
    await Deliveries(uow).cancel_open(sid)
    await repo.delete_if_etag(row, etag)
    await _audit(uow, who, sid, "delete", [], at)


async def set_state(
    uow: UnitOfWork, who: Principal, sid: str, enable: bool, etag: str, reason: str, at: datetime
) -> WebhookSubscriptionRow:
    repo = Subscriptions(uow)
    row = await repo.get(sid)
    repo.check_etag(row, etag)
    if enable:
        row.state, row.state_reason = wh.SUBSCRIPTION_STATE_ENABLED, ""
        row.consecutive_failures, row.failing_since = 0, None
    else:
        row.state, row.state_reason = wh.SUBSCRIPTION_STATE_DISABLED, reason[:500]
        await Deliveries(uow).cancel_open(sid)
    row.updated_at, row.updated_by = at, who.user_id
    await repo.update_if_etag(row, etag)
    await _audit(uow, who, sid, "enable" if enable else "disable", [], at, reason)
    return row


async def rotate(
    uow: UnitOfWork, who: Principal, sid: str, given: str, overlap: timedelta | None, at: datetime
) -> tuple[WebhookSubscriptionRow, str]:
    """A new secret (or key pair); the previous one keeps signing alongside until `at + overlap`."""
    grace = outbound.DEFAULT_OVERLAP if overlap is None else overlap
    problems = []
    if not timedelta(0) < grace <= outbound.MAX_OVERLAP:
        problems.append(FieldViolation("overlap", "more than 0 and at most 7 days"))
    if given and not outbound_signing.valid_hmac_secret(given):
        problems.append(FieldViolation("new_signing_secret", "whsec_ + base64 of 24 to 64 random bytes"))
    if problems:
        raise InvalidArgument("invalid rotation", problems)
    repo = Subscriptions(uow)
    row = await repo.get(sid)
    if given and row.signing_scheme == ED25519:
        raise InvalidArgument.field(
            "new_signing_secret", "ED25519 keys are made by the server; leave it empty"
        )
    secret, public, shown = _new_secret(row.signing_scheme, given)
    row.sealed_previous_secret, row.previous_public_key = row.sealed_secret, row.public_key
    row.previous_expires_at = at + grace
    row.sealed_secret, row.public_key = sealing.seal(secret), public
    row.secret_hint = "" if row.signing_scheme == ED25519 else _hint(secret)
    row.updated_at, row.updated_by = at, who.user_id
    await repo.update_if_etag(row, "")
    await _audit(uow, who, sid, "rotate_secret", ["signing_secret"], at)
    return row, shown


def live_secrets(row: WebhookSubscriptionRow, at: datetime) -> list[str]:
    """The secrets that sign a delivery made at `at`: the current one, and the previous one in its overlap."""
    secrets = [sealing.unseal(row.sealed_secret)]
    until = outbound.aware(row.previous_expires_at)
    if row.sealed_previous_secret and until is not None and at < until:
        secrets.append(sealing.unseal(row.sealed_previous_secret))
    return secrets
