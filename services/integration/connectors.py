"""Connector use cases: create, update, enable, disable, delete, record a test. Never commit.

Secrets (provider secrets and the inbound signing secret) are sealed with
kit.secrets before they touch a row, never stored in the body, never logged,
never returned except a server-made signing secret once, in the create answer.
Every change writes an audit row naming the fields, never their values.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets as random
from datetime import datetime

from google.protobuf import json_format
from google.protobuf.field_mask_pb2 import FieldMask
from ulid import ULID

from kit import secrets as sealing
from kit.auth import Principal
from kit.errors import AlreadyExists, FailedPrecondition, FieldViolation, InvalidArgument
from kit.resources import UnitOfWork, merge_update, sanitize_create
from salesops.integration.v1 import connector_pb2 as c
from services.integration.domain import signatures
from services.integration.domain.providers import PROVIDERS, check_settings
from services.integration.repositories.connectors import ConnectorChanges, Connectors
from services.integration.store import ConnectorChangeRow, ConnectorRow

SECRET_PATHS = ("secrets", "inbound.signing_secret")


def new_signing_secret() -> str:
    return signatures.SECRET_PREFIX + base64.b64encode(random.token_bytes(24)).decode()


def _validate(msg: c.Connector, secret_names: set[str]) -> None:
    problems: list[tuple[str, str]] = []
    if not msg.connector_id:
        problems.append(("connector_id", "required (a client-made ULID)"))
    elif len(msg.connector_id) > 64 or not msg.connector_id.replace("-", "").replace("_", "").isalnum():
        problems.append(("connector_id", "at most 64 letters, digits, '-' or '_'"))
    if not msg.display_name.strip() or len(msg.display_name) > 200:
        problems.append(("display_name", "required, at most 200 characters"))
    if not msg.kind:
        problems.append(("kind", "required"))
    settings = json_format.MessageToDict(msg.settings)
    problems.extend(check_settings(msg.provider, msg.kind, settings, secret_names))
    if msg.HasField("inbound"):
        inbound = msg.inbound
        window = inbound.replay_window.ToTimedelta()
        if inbound.HasField("replay_window") and not (
            0 < window.total_seconds() <= signatures.MAX_WINDOW.total_seconds()
        ):
            problems.append(("inbound.replay_window", "more than 0 and at most 1 h"))
        if inbound.signature_scheme == c.SIGNATURE_SCHEME_PROVIDER_NATIVE:
            provider = PROVIDERS.get(msg.provider)
            if provider is None or not provider.native_inbound:
                problems.append(("inbound.signature_scheme", f"provider {msg.provider} has no native scheme"))
        if inbound.verification_public_key and not signatures.valid_public_key(
            inbound.verification_public_key
        ):
            problems.append(
                ("inbound.verification_public_key", "must be whpk_ + base64 of a 32-byte ed25519 key")
            )
        if inbound.event_id_pointer and not inbound.event_id_pointer.startswith("/"):
            problems.append(("inbound.event_id_pointer", "a JSON pointer starting with '/'"))
        seen: set[str] = set()
        for i, m in enumerate(inbound.mappings):
            if not m.external_event_type or m.external_event_type in seen:
                problems.append((f"inbound.mappings[{i}].external_event_type", "required and unique"))
            seen.add(m.external_event_type)
            if not m.mapped_event_type:
                problems.append((f"inbound.mappings[{i}].mapped_event_type", "required"))
    if problems:
        raise InvalidArgument("invalid connector", [FieldViolation(f"connector.{p}", d) for p, d in problems])


def _body(msg: c.Connector) -> bytes:
    body = c.Connector()
    body.CopyFrom(msg)
    body.ClearField("secrets")
    body.ClearField("etag")
    if body.HasField("inbound"):
        body.inbound.signing_secret = ""
    return body.SerializeToString(deterministic=True)


async def _audit(
    uow: UnitOfWork,
    who: Principal,
    row: ConnectorRow,
    action: str,
    fields: list[str],
    at: datetime,
    reason: str = "",
) -> None:
    await ConnectorChanges(uow).add(
        ConnectorChangeRow(
            change_id=str(ULID()),
            connector_id=row.connector_id,
            action=action,
            fields=",".join(sorted(fields))[:1000],
            reason=reason[:500],
            changed_by=who.user_id,
            changed_at=at,
        )
    )


def _hint(secret: str) -> str:
    return secret[-4:] if len(secret) >= 12 else ""


async def create_connector(
    uow: UnitOfWork, who: Principal, incoming: c.Connector, at: datetime
) -> tuple[ConnectorRow, str]:
    """The connector (DISABLED) and the signing secret the server made, if it made one."""
    msg = sanitize_create(incoming)
    _validate(msg, set(msg.secrets))
    digest = hashlib.sha256(msg.SerializeToString(deterministic=True)).hexdigest()
    repo = Connectors(uow)
    found = await repo.find(msg.connector_id)
    if found is not None:
        if found.request_digest == digest:
            return found, ""  # a replay of the same create: the secret is not shown twice
        raise AlreadyExists("integration.Connector", msg.connector_id)
    generated = ""
    signing = ""
    if msg.HasField("inbound") and msg.inbound.signature_scheme != c.SIGNATURE_SCHEME_PROVIDER_NATIVE:
        signing = msg.inbound.signing_secret or new_signing_secret()
        generated = "" if msg.inbound.signing_secret else signing
    row = ConnectorRow(
        connector_id=msg.connector_id,
        display_name=msg.display_name,
        kind=msg.kind,
        provider=msg.provider,
        state=c.CONNECTOR_STATE_DISABLED,
        health=c.CONNECTOR_HEALTH_UNKNOWN,
        sealed_secrets=json.dumps({k: sealing.seal(v) for k, v in sorted(msg.secrets.items())}),
        sealed_signing_secret=sealing.seal(signing),
        signing_secret_hint=_hint(signing),
        secrets_updated_at=at if (msg.secrets or signing) else None,
        created_at=at,
        created_by=who.user_id,
        updated_at=at,
        updated_by=who.user_id,
        version=1,
        request_digest=digest,
        body=_body(msg),
    )
    await repo.add(row)
    fields = [f.name for f, _ in msg.ListFields() if f.name != "secrets"] + [
        f"secrets.{k}" for k in msg.secrets
    ]
    await _audit(uow, who, row, "create", fields, at)
    return row, generated


async def update_connector(
    uow: UnitOfWork, who: Principal, incoming: c.Connector, mask: FieldMask, at: datetime
) -> ConnectorRow:
    repo = Connectors(uow)
    row = await repo.get(incoming.connector_id)
    repo.check_etag(row, incoming.etag)
    paths = list(mask.paths)
    if not paths:
        raise InvalidArgument.field("update_mask", "required: name the fields to change")
    secret_paths = [
        p for p in paths if p == "secrets" or p.startswith("secrets.") or p == "inbound.signing_secret"
    ]
    plain = FieldMask(paths=[p for p in paths if p not in secret_paths])
    current = c.Connector.FromString(row.body)
    merged = merge_update(current, incoming, plain) if plain.paths else current
    sealed: dict[str, str] = json.loads(row.sealed_secrets or "{}")
    for path in secret_paths:
        if path == "secrets":
            sealed = {k: sealing.seal(v) for k, v in incoming.secrets.items()}
        elif path.startswith("secrets."):
            name = path.removeprefix("secrets.")
            value = incoming.secrets.get(name, "")
            if value:
                sealed[name] = sealing.seal(value)
            else:
                sealed.pop(name, None)
    _validate(merged, set(sealed))
    if "inbound.signing_secret" in secret_paths:
        value = incoming.inbound.signing_secret
        if not value:
            raise InvalidArgument.field("connector.inbound.signing_secret", "required when named in the mask")
        row.sealed_signing_secret, row.signing_secret_hint = sealing.seal(value), _hint(value)
    if secret_paths:
        row.sealed_secrets, row.secrets_updated_at = json.dumps(dict(sorted(sealed.items()))), at
    row.display_name, row.body = merged.display_name, _body(merged)
    row.updated_at, row.updated_by = at, who.user_id
    await repo.update_if_etag(row, incoming.etag)
    await _audit(uow, who, row, "update", paths, at)
    return row


async def set_state(
    uow: UnitOfWork, who: Principal, connector_id: str, state: int, etag: str, reason: str, at: datetime
) -> ConnectorRow:
    repo = Connectors(uow)
    row = await repo.get(connector_id)
    if row.state == state:
        repo.check_etag(row, etag)
        return row
    row.state, row.updated_at, row.updated_by = state, at, who.user_id
    await repo.update_if_etag(row, etag)
    await _audit(
        uow, who, row, "enable" if state == c.CONNECTOR_STATE_ENABLED else "disable", ["state"], at, reason
    )
    return row


async def delete_connector(
    uow: UnitOfWork, who: Principal, connector_id: str, etag: str, at: datetime
) -> None:
    repo = Connectors(uow)
    row = await repo.get(connector_id)
    if row.state == c.CONNECTOR_STATE_ENABLED:
        raise FailedPrecondition("disable the connector before deleting it", reason="CONNECTOR_ENABLED")
    await _audit(uow, who, row, "delete", [], at)
    await repo.delete_if_etag(row, etag)


def unsealed_secrets(row: ConnectorRow) -> dict[str, str]:
    return {k: sealing.unseal(v) for k, v in json.loads(row.sealed_secrets or "{}").items()}


async def record_test(
    uow: UnitOfWork, who: Principal, connector_id: str, result: c.ConnectionTestResult, at: datetime
) -> ConnectorRow:
    """The test result becomes the connector's last test and moves its health."""
    repo = Connectors(uow)
    row = await repo.get(connector_id)
    row.last_test = result.SerializeToString(deterministic=True)
    if result.ok:
        row.health, row.last_success_at = c.CONNECTOR_HEALTH_HEALTHY, at
    else:
        failed = next((ch for ch in result.checks if not ch.ok), None)
        row.health, row.last_error_at = c.CONNECTOR_HEALTH_FAILING, at
        row.last_error = f"test: {failed.name}: {failed.message}"[:500] if failed else "test failed"
    await repo.update_if_etag(row, "")
    await _audit(uow, who, row, "test", ["last_test", "health"], at)
    return row


def check_candidate(row: ConnectorRow, candidate: c.Connector) -> tuple[dict[str, object], dict[str, str]]:
    """Settings and secrets to test: the stored ones, overridden by a candidate's (not saved)."""
    stored = c.Connector.FromString(row.body)
    settings = json_format.MessageToDict(
        candidate.settings if candidate.HasField("settings") else stored.settings
    )
    secrets = {**unsealed_secrets(row), **dict(candidate.secrets)}
    problems = check_settings(row.provider, row.kind, settings, set(secrets))
    if problems:
        raise InvalidArgument("invalid candidate", [FieldViolation(f"candidate.{p}", d) for p, d in problems])
    return settings, secrets
