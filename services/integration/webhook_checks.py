"""Inbound webhooks' checks before any write: the connector as its deliveries are verified (a
`Receiver`: its row's snapshot, secret unsealed), and each delivery's size, signature and replay
window over the raw bytes (`check`). No I/O but `load_receiver`'s read, so on SQLite it all runs
outside the one writer's turn. A request failing a check is refused (UNAUTHENTICATED -> 401) and
nothing is stored; a snapshot is good only while the row's `stamp` is unchanged, which the write
transaction checks (webhooks.record).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from kit import secrets as sealing
from kit.errors import InvalidArgument, Unauthenticated, Unavailable
from kit.resources import UnitOfWork
from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import integration_service_pb2 as pb
from services.integration.connectors import unsealed_secrets
from services.integration.domain import signatures
from services.integration.domain.mapping import pointer
from services.integration.repositories.connectors import Connectors
from services.integration.store import ConnectorRow

log = logging.getLogger("salesops.integration.webhooks")
MAX_BODY = 1024 * 1024


def secret_of(row: ConnectorRow, inbound: c.InboundWebhookConfig) -> str:
    """The secret the connector's deliveries are verified with (unsealed): DingTalk's app secret
    for the provider-native scheme, else the signing secret."""
    if inbound.signature_scheme == c.SIGNATURE_SCHEME_PROVIDER_NATIVE:
        return unsealed_secrets(row).get("app_secret", "")
    return sealing.unseal(row.sealed_signing_secret)


def verify_with(
    inbound: c.InboundWebhookConfig, secret: str, headers: Mapping[str, str], body: bytes, now: datetime
) -> signatures.Checked:
    window = (
        inbound.replay_window.ToTimedelta()
        if inbound.HasField("replay_window")
        else signatures.DEFAULT_WINDOW
    )
    scheme = inbound.signature_scheme or c.SIGNATURE_SCHEME_HMAC_SHA256
    if scheme == c.SIGNATURE_SCHEME_PROVIDER_NATIVE:  # validated at create: dingtalk only, for now
        if not secret:
            return signatures.Checked(signatures.Verdict.MISSING_SIGNATURE)
        return signatures.verify_dingtalk(headers, secret=secret, now=now, window=window)
    if scheme == c.SIGNATURE_SCHEME_STANDARD_WEBHOOKS:
        return signatures.verify_standard(
            headers,
            body,
            secret=secret,
            public_key_text=inbound.verification_public_key,
            now=now,
            window=window,
        )
    return signatures.verify_salesops(headers, body, secret=secret, now=now, window=window)


def verify(
    row: ConnectorRow, inbound: c.InboundWebhookConfig, headers: Mapping[str, str], body: bytes, now: datetime
) -> signatures.Checked:
    return verify_with(inbound, secret_of(row, inbound), headers, body, now)


def _event_key(
    inbound: c.InboundWebhookConfig, headers: Mapping[str, str], doc: Any, body: bytes
) -> tuple[str, str]:
    """(event id, event type). Without an id anywhere, the body's SHA-256 is the id: the same bytes apply once."""
    header = inbound.event_id_header.lower() or (
        "webhook-id" if inbound.signature_scheme == c.SIGNATURE_SCHEME_STANDARD_WEBHOOKS else ""
    )
    event_id = headers.get(header, "") if header else ""
    if not event_id:
        found = pointer(doc, inbound.event_id_pointer or "/id")
        event_id = str(found) if isinstance(found, str | int) and not isinstance(found, bool) else ""
    if not event_id:
        event_id = "sha256:" + hashlib.sha256(body).hexdigest()
    found_type = pointer(doc, inbound.event_type_pointer or "/type")
    return event_id[:256], (found_type if isinstance(found_type, str) else "")[:128]


def stamp(conn: ConnectorRow | Row[Any]) -> tuple[object, ...]:
    """What must be unchanged for a delivery verified against `conn` to be taken: the version (every
    update, enable and disable bumps it), the creation time and the sealed secrets (a connector
    deleted and created again restarts at version 1; every sealing has a fresh IV)."""
    return (conn.version, conn.created_at, conn.sealed_signing_secret, conn.sealed_secrets)


@dataclass(frozen=True)
class Receiver:
    """A connector as its deliveries are verified: one version of its row, secret unsealed.

    Good only while the row's `stamp` is the same: the write transaction checks it, so a
    rotated, disabled or deleted connector's old secret never lets a delivery in."""

    connector_id: str
    provider: str
    inbound: c.InboundWebhookConfig
    secret: str = field(repr=False)
    stamp: tuple[object, ...] = field(repr=False)


def _usable(conn: ConnectorRow) -> c.Connector:
    stored = c.Connector.FromString(conn.body)
    if not stored.HasField("inbound") or not stored.inbound.enabled:
        raise Unavailable("this connector does not accept webhooks", reason="WEBHOOKS_OFF")
    if conn.state != c.CONNECTOR_STATE_ENABLED:
        raise Unavailable("the connector is disabled; retry later", reason="CONNECTOR_DISABLED")
    return stored


def receiver(conn: ConnectorRow) -> Receiver:
    """UNAVAILABLE when the connector takes no webhooks now (disabled, or inbound off)."""
    inbound = _usable(conn).inbound
    return Receiver(conn.connector_id, conn.provider, inbound, secret_of(conn, inbound), stamp(conn))


async def load_receiver(uow: UnitOfWork, connector_id: str) -> Receiver:
    """The connector's current receiver: NOT_FOUND (an unknown tenant too), or UNAVAILABLE."""
    return receiver(await Connectors(uow).get(connector_id))


@dataclass(frozen=True)
class Verified:
    """A delivery whose signature and window passed: what recording it needs."""

    connector_id: str
    provider: str
    inbound: c.InboundWebhookConfig
    event_id: str
    event_type: str
    checked: signatures.Checked
    stamp: tuple[object, ...] = field(repr=False)  # of the connector row it was verified against
    doc: Any = field(default=None, repr=False, compare=False)  # the body parsed (None: not JSON)


def check(
    tenant: str, found: Receiver, req: pb.IngestWebhookRequest, at: datetime, *, log_refusal: bool = True
) -> Verified:
    """Size, signature and replay window against `found`: no I/O, so it runs before the write
    transaction (on SQLite, outside the one writer's turn). UNAUTHENTICATED stores nothing."""
    if len(req.body) > MAX_BODY:
        raise InvalidArgument.field("body", f"at most {MAX_BODY} bytes")
    headers = {k.lower(): v for k, v in req.headers.items()}
    checked = verify_with(found.inbound, found.secret, headers, req.body, at)
    if not checked.ok:
        if log_refusal:  # without the body, headers or secret; the sender learns only "401"
            log.warning(
                "webhook refused",
                extra={"tenant": tenant, "connector_id": found.connector_id, "verdict": checked.verdict},
            )
        raise Unauthenticated("webhook signature not valid", reason=f"WEBHOOK_{checked.verdict}")
    try:
        doc: Any = json.loads(req.body) if req.body else None
    except ValueError:
        doc = None
    event_id, event_type = _event_key(found.inbound, headers, doc, req.body)
    return Verified(
        found.connector_id, found.provider, found.inbound, event_id, event_type, checked, found.stamp, doc
    )
