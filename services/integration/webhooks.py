"""Inbound webhook use cases: ingest (verify, de-duplicate, store, map, emit) and replay. Never commit.

Order matters: the connector must exist and be enabled, then the signature and
replay window are checked over the raw bytes; a request failing either is
refused (UNAUTHENTICATED -> 401) and nothing is stored. Only then is the sender's
event id looked up: the unique key (tenant, connector, event id) makes a
re-delivery a counted duplicate whether it comes 5 seconds or 5 days later, and
two concurrent deliveries race on the constraint (the loser re-runs and finds
the winner). Mapping runs in the same transaction: the record, its state and
the domain event in the outbox commit together.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ulid import ULID

from kit import secrets as sealing
from kit.auth import Principal
from kit.errors import InvalidArgument, Unauthenticated, Unavailable
from kit.events.outbox import emit
from kit.resources import UnitOfWork
from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import events_pb2 as ev
from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import webhooks_pb2 as wh
from services.integration import links
from services.integration.connectors import unsealed_secrets
from services.integration.domain import signatures
from services.integration.domain.mapping import MappingError, map_event, pointer
from services.integration.repositories.connectors import Connectors
from services.integration.repositories.webhooks import ReceivedWebhooks
from services.integration.store import ConnectorRow, ReceivedWebhookRow

log = logging.getLogger("salesops.integration.webhooks")
MAX_BODY = 1024 * 1024
HEALTH_REFRESH = timedelta(minutes=1)
VERDICTS = {
    signatures.Verdict.VERIFIED: wh.WEBHOOK_VERIFICATION_VERIFIED,
    signatures.Verdict.MISSING_SIGNATURE: wh.WEBHOOK_VERIFICATION_MISSING_SIGNATURE,
    signatures.Verdict.BAD_SIGNATURE: wh.WEBHOOK_VERIFICATION_BAD_SIGNATURE,
    signatures.Verdict.STALE_TIMESTAMP: wh.WEBHOOK_VERIFICATION_STALE_TIMESTAMP,
}


def verify(
    row: ConnectorRow, inbound: c.InboundWebhookConfig, headers: Mapping[str, str], body: bytes, now: datetime
) -> signatures.Checked:
    window = (
        inbound.replay_window.ToTimedelta()
        if inbound.HasField("replay_window")
        else signatures.DEFAULT_WINDOW
    )
    scheme = inbound.signature_scheme or c.SIGNATURE_SCHEME_HMAC_SHA256
    if scheme == c.SIGNATURE_SCHEME_PROVIDER_NATIVE:  # validated at create: dingtalk only, for now
        secret = unsealed_secrets(row).get("app_secret", "")
        if not secret:
            return signatures.Checked(signatures.Verdict.MISSING_SIGNATURE)
        return signatures.verify_dingtalk(headers, secret=secret, now=now, window=window)
    secret = sealing.unseal(row.sealed_signing_secret)
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


@dataclass(frozen=True)
class Health:
    """What a mapping says about its connector: healthy, or degraded with the reason."""

    ok: bool
    error: str = ""


async def _map(
    uow: UnitOfWork,
    connector_id: str,
    provider: str,
    inbound: c.InboundWebhookConfig,
    rec: ReceivedWebhookRow,
    at: datetime,
) -> Health | None:
    """Map the stored payload; IGNORED (kept, flagged) when no mapping names its type (no health news)."""
    rec.attempt_count += 1
    mapped = next(
        (m.mapped_event_type for m in inbound.mappings if m.external_event_type == rec.external_event_type), 0
    )
    if not mapped:
        rec.state, rec.last_error = wh.RECEIVED_WEBHOOK_STATE_IGNORED, ""
        return None
    origin = ev.DataOrigin(
        connector_id=connector_id,
        provider=provider,
        channel=ev.DATA_CHANNEL_WEBHOOK,
        received_webhook_id=rec.received_webhook_id,
    )
    try:
        doc = json.loads(rec.body)
        event_type, event, subject = map_event(
            mapped, doc, connector_id=connector_id, provider=provider, origin=origin
        )
    except (ValueError, MappingError) as exc:  # json errors are ValueErrors
        rec.state, rec.last_error = wh.RECEIVED_WEBHOOK_STATE_FAILED, str(exc)[:500]
        return Health(False, f"webhook {rec.external_event_id}: {rec.last_error}"[:500])
    # The sender named no deal: the external record (or its contract / order) may be linked to one.
    fields = event.DESCRIPTOR.fields_by_name
    refs = [getattr(event, n) for n in ("payment", "invoice", "contract", "shipment", "order") if n in fields]
    await links.resolve(uow, event, *refs)
    subject = getattr(event, "deal_id", "") or subject
    envelope = await emit(
        uow.session, event_type, event, source=uow.source, subject=subject, table=uow.outbox
    )
    rec.emitted = (rec.emitted + "\n" if rec.emitted else "") + f"{envelope.id} {event_type}"
    rec.state, rec.last_error, rec.processed_at = wh.RECEIVED_WEBHOOK_STATE_PROCESSED, "", at
    rec.deal_id = getattr(event, "deal_id", "") or rec.deal_id
    return Health(True)


def _health_due(conn: ConnectorRow, at: datetime) -> bool:
    """Health is refreshed at most once a minute while healthy: a connector row rewrite per
    webhook would serialise a busy sender's deliveries on that row (and on SQLite's writer)."""
    last = conn.last_success_at
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=at.tzinfo)  # SQLite hands times back naive
    return conn.health != c.CONNECTOR_HEALTH_HEALTHY or last is None or at - last >= HEALTH_REFRESH


def _note(conn: ConnectorRow, health: Health | None, at: datetime) -> None:
    if health is None:
        return
    if not health.ok:
        conn.health, conn.last_error_at, conn.last_error = c.CONNECTOR_HEALTH_DEGRADED, at, health.error
    elif _health_due(conn, at):
        conn.health, conn.last_success_at = c.CONNECTOR_HEALTH_HEALTHY, at


@dataclass(frozen=True)
class Verified:
    """A delivery whose signature and window passed: what recording it needs."""

    connector_id: str
    provider: str
    inbound: c.InboundWebhookConfig
    event_id: str
    event_type: str
    checked: signatures.Checked
    health_due: bool  # the connector's health needs writing even if this one maps fine


def _usable(conn: ConnectorRow) -> c.Connector:
    stored = c.Connector.FromString(conn.body)
    if not stored.HasField("inbound") or not stored.inbound.enabled:
        raise Unavailable("this connector does not accept webhooks", reason="WEBHOOKS_OFF")
    if conn.state != c.CONNECTOR_STATE_ENABLED:
        raise Unavailable("the connector is disabled; retry later", reason="CONNECTOR_DISABLED")
    return stored


async def check(uow: UnitOfWork, req: pb.IngestWebhookRequest, at: datetime) -> Verified:
    """Connector, size, signature and replay window: reads only, so it runs before the write
    transaction (on SQLite, outside the one writer's turn). UNAUTHENTICATED stores nothing."""
    conn = await Connectors(uow).get(req.connector_id)
    stored = _usable(conn)
    if len(req.body) > MAX_BODY:
        raise InvalidArgument.field("body", f"at most {MAX_BODY} bytes")
    headers = {k.lower(): v for k, v in req.headers.items()}
    checked = verify(conn, stored.inbound, headers, req.body, at)
    if not checked.ok:
        # Logged without the body, headers or secret; the sender learns only "401".
        log.warning(
            "webhook refused",
            extra={"tenant": uow.tenant, "connector_id": conn.connector_id, "verdict": checked.verdict},
        )
        raise Unauthenticated("webhook signature not valid", reason=f"WEBHOOK_{checked.verdict}")
    try:
        doc: Any = json.loads(req.body) if req.body else None
    except ValueError:
        doc = None
    event_id, event_type = _event_key(stored.inbound, headers, doc, req.body)
    return Verified(
        conn.connector_id, conn.provider, stored.inbound, event_id, event_type, checked, _health_due(conn, at)
    )


async def record(
    uow: UnitOfWork, req: pb.IngestWebhookRequest, verified: Verified, at: datetime, *, look_up: bool = True
) -> tuple[ReceivedWebhookRow, bool]:
    """Store a verified delivery and map it, or count it as a duplicate of its event id.

    Few round trips inside the write (on SQLite, the one writer's turn): the connector as
    checked is used (a delivery racing a disable is taken, as one a moment earlier would be)
    and is read again only when its health changes. `look_up=False` skips the duplicate
    lookup: the insert's unique key finds a duplicate, the unit of work rolls back and its
    second run (look_up=True) counts it, so only duplicates pay the extra run.
    """
    received = ReceivedWebhooks(uow)
    if look_up:
        earlier = await received.by_event(verified.connector_id, verified.event_id)
        if earlier is not None:
            earlier.duplicate_count += 1
            return earlier, True
    rec = ReceivedWebhookRow(
        received_webhook_id=str(ULID()),
        connector_id=verified.connector_id,
        external_event_id=verified.event_id,
        external_event_type=verified.event_type,
        signature_time=verified.checked.signed_at,
        received_at=req.receive_time.ToDatetime(tzinfo=at.tzinfo) if req.HasField("receive_time") else at,
        verification=VERDICTS[verified.checked.verdict],
        state=wh.RECEIVED_WEBHOOK_STATE_ACCEPTED,
        duplicate_count=0,
        attempt_count=0,
        emitted="",
        deal_id="",
        last_error="",
        content_type=req.content_type[:128],
        body_size=len(req.body),
        body_sha256=hashlib.sha256(req.body).hexdigest(),
        body=req.body,
        remote_address=req.remote_address[:64],
        replay_count=0,
    )
    # Mapped before the insert, so the record is written once, in its final state. The unique
    # key still decides a race: a concurrent twin fails at the insert, its whole unit of work
    # (its event in the outbox included) rolls back, and its retry finds this row.
    health = await _map(uow, verified.connector_id, verified.provider, verified.inbound, rec, at)
    await received.add(rec)
    if health is not None and (not health.ok or verified.health_due):
        _note(await Connectors(uow).get(verified.connector_id), health, at)
    return rec, False


async def ingest(
    uow: UnitOfWork, req: pb.IngestWebhookRequest, at: datetime
) -> tuple[ReceivedWebhookRow, bool]:
    """`check` then `record` in one unit of work. The API runs them in two (read, then write)."""
    return await record(uow, req, await check(uow, req, at), at)


async def replay(
    uow: UnitOfWork, who: Principal, received_webhook_id: str, at: datetime
) -> ReceivedWebhookRow:
    """Map a stored record again, without re-verifying (it was verified when it came)."""
    rec = await ReceivedWebhooks(uow).get(received_webhook_id)
    conn = await Connectors(uow).get(rec.connector_id)
    stored = c.Connector.FromString(conn.body)
    rec.replay_count, rec.last_replay_at = rec.replay_count + 1, at
    _note(conn, await _map(uow, conn.connector_id, conn.provider, stored.inbound, rec, at), at)
    return rec
