"""Inbound webhook use cases: ingest (verify, de-duplicate, store, map, emit) and replay. Never commit.

Order matters: the connector must exist and be enabled, then the signature and
replay window are checked over the raw bytes (`check`, against a `Receiver`: the
connector row's snapshot, secret unsealed); a request failing either is refused
(UNAUTHENTICATED -> 401) and nothing is stored. Only then is it written (`record`,
with the tenant's other deliveries of the moment), and only if the connector row
is still the one it was verified against (its `stamp`). The unique key (tenant,
connector, event id) makes a re-delivery a counted duplicate whether it comes 5
seconds or 5 days later, and two concurrent deliveries race on the constraint (the
loser re-runs and finds the winner). Mapping runs in the same transaction: the
record, its state and the domain event in the outbox commit together.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from opentelemetry import context as otel_context
from sqlalchemy import Row
from ulid import ULID

from kit import secrets as sealing
from kit.auth import Principal
from kit.errors import InvalidArgument, Unauthenticated, Unavailable
from kit.events.envelope import EventEnvelope, new_envelope
from kit.events.outbox import add_events, emit
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
# Events mapped in a group's transaction, and the trace context of the call the next one is for.
Gathered = tuple[list[EventEnvelope], otel_context.Context | None]
MAX_BODY = 1024 * 1024
HEALTH_REFRESH = timedelta(minutes=1)
VERDICTS = {
    signatures.Verdict.VERIFIED: wh.WEBHOOK_VERIFICATION_VERIFIED,
    signatures.Verdict.MISSING_SIGNATURE: wh.WEBHOOK_VERIFICATION_MISSING_SIGNATURE,
    signatures.Verdict.BAD_SIGNATURE: wh.WEBHOOK_VERIFICATION_BAD_SIGNATURE,
    signatures.Verdict.STALE_TIMESTAMP: wh.WEBHOOK_VERIFICATION_STALE_TIMESTAMP,
}


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
    rec: ReceivedWebhookRow | NewRecord,
    at: datetime,
    gathered: Gathered | None = None,
    doc: Any = None,
) -> Health | None:
    """Map the stored payload; IGNORED (kept, flagged) when no mapping names its type (no health news).

    With `gathered`, the event is kept there (written with its group's in one statement, under the
    trace context of the call it belongs to) instead of going to the outbox at once. `doc`: the
    body already parsed (by `check`), else it is parsed here."""
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
        if doc is None:
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
    if gathered is None:
        envelope = await emit(
            uow.session, event_type, event, source=uow.source, subject=subject, table=uow.outbox
        )
    else:
        envelopes, trace = gathered
        envelope = new_envelope(
            event_type, uow.tenant, event, source=uow.source, subject=subject, context=trace
        )
        envelopes.append(envelope)
    rec.emitted = (rec.emitted + "\n" if rec.emitted else "") + f"{envelope.id} {event_type}"
    rec.state, rec.last_error, rec.processed_at = wh.RECEIVED_WEBHOOK_STATE_PROCESSED, "", at
    rec.deal_id = getattr(event, "deal_id", "") or rec.deal_id
    return Health(True)


def _health_due(conn: ConnectorRow | Row[Any], at: datetime) -> bool:
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


@dataclass(frozen=True)
class Delivery:
    """A verified delivery waiting for its write, with the trace context of its call."""

    request: pb.IngestWebhookRequest
    verified: Verified
    at: datetime
    trace: otel_context.Context | None = None


@dataclass(slots=True)
class NewRecord:
    """A received webhook's record before its insert: the row's columns (but the tenant), as plain
    attributes. A group's records go in one Core insert; ORM rows (instrumented attributes, the
    unit of work's flush) cost a measurable share of every delivery's CPU."""

    received_webhook_id: str
    connector_id: str
    external_event_id: str
    external_event_type: str
    signature_time: datetime | None
    received_at: datetime
    verification: int
    state: int
    duplicate_count: int
    attempt_count: int
    emitted: str
    deal_id: str
    last_error: str
    content_type: str
    body_size: int
    body_sha256: str
    body: bytes
    remote_address: str
    replay_count: int
    processed_at: datetime | None = None
    last_replay_at: datetime | None = None

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]


def _new_record(req: pb.IngestWebhookRequest, verified: Verified, at: datetime) -> NewRecord:
    return NewRecord(
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


Recorded = tuple[ReceivedWebhookRow | NewRecord, bool]  # the record (stored or new), duplicate


async def record(
    uow: UnitOfWork, deliveries: list[Delivery], *, look_up: bool = True
) -> list[Recorded | None]:
    """Store verified deliveries (in arrival order) and map them, or count each as a duplicate
    of its event id: one answer each, None for one whose connector changed (rotated, disabled,
    deleted) since it was verified: it must be verified again against the current row.

    Few statements for the whole group (on SQLite, the one writer's turn): the connectors,
    the earlier records of these event ids, then every new record and every event in one
    insert each. `look_up=False` skips the earlier records: the insert's unique key finds a
    re-delivery (or a concurrent twin in another process), the unit of work rolls back and its
    second run (look_up=True) counts it, so only groups holding one pay the extra run.
    """
    connectors = Connectors(uow)
    conns: dict[str, Row[Any] | None] = {}
    for cid in dict.fromkeys(d.verified.connector_id for d in deliveries):
        conns[cid] = await connectors.receiving(cid)
    live = [
        d
        for d in deliveries
        if (conn := conns[d.verified.connector_id]) is not None and stamp(conn) == d.verified.stamp
    ]
    received = ReceivedWebhooks(uow)
    earlier: dict[tuple[str, str], ReceivedWebhookRow | NewRecord] = {}
    for cid in dict.fromkeys(d.verified.connector_id for d in live) if look_up else ():
        ids = list(dict.fromkeys(d.verified.event_id for d in live if d.verified.connector_id == cid))
        earlier.update(((cid, r.external_event_id), r) for r in await received.by_events(cid, ids))
    envelopes: list[EventEnvelope] = []
    added: list[NewRecord] = []
    answers: dict[int, Recorded] = {}
    notes: dict[str, list[tuple[Health | None, datetime]]] = {}
    for d in live:
        v = d.verified
        twin = earlier.get((v.connector_id, v.event_id))
        if twin is not None:  # a re-delivery, perhaps of one earlier in this very group
            twin.duplicate_count += 1
            answers[id(d)] = (twin, True)
            continue
        # Mapped before the insert, so the record is written once, in its final state.
        rec = _new_record(d.request, v, d.at)
        health = await _map(
            uow, v.connector_id, v.provider, v.inbound, rec, d.at, (envelopes, d.trace), v.doc
        )
        notes.setdefault(v.connector_id, []).append((health, d.at))
        earlier[(v.connector_id, v.event_id)] = rec
        added.append(rec)
        answers[id(d)] = (rec, False)
    await received.insert_new([r.values() for r in added])
    await add_events(uow.session, envelopes, table=uow.outbox)
    for cid, noted in notes.items():
        # The connector row is loaded and rewritten only when its health changes (a failure, or
        # the once-a-minute success refresh), not in every group.
        light = conns[cid]
        if light is not None and any(
            h is not None and (not h.ok or _health_due(light, at)) for h, at in noted
        ):
            row = await connectors.find(cid)
            if row is not None:
                for h, at in noted:
                    _note(row, h, at)
    return [answers.get(id(d)) for d in deliveries]


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
