"""Inbound webhook use cases: store (de-duplicate, map, emit) and replay. Never commit.

Order matters: a delivery is written only once `webhook_checks.check` passed (the connector
exists and is enabled, the signature and replay window hold over the raw bytes), with the
tenant's other deliveries of the moment (`record`), and only if the connector row is still
the one it was verified against (its `stamp`). Its record and event are built before the write
transaction (`prepare`: no I/O), so the writer's turn holds only the group's statements. The
unique key (tenant, connector, event id) makes a re-delivery a counted duplicate whether it
comes 5 seconds or 5 days later, and two concurrent deliveries race on the constraint (the
loser re-runs and finds the winner). The record, its state and the domain event in the
outbox commit together.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from google.protobuf.message import Message
from opentelemetry import context as otel_context
from sqlalchemy import Row
from ulid import ULID

from kit.auth import Principal
from kit.events.envelope import EventEnvelope, new_envelope
from kit.events.outbox import add_events, emit
from kit.resources import UnitOfWork
from salesops.integration.v1 import connector_pb2 as c
from salesops.integration.v1 import events_pb2 as ev
from salesops.integration.v1 import integration_service_pb2 as pb
from salesops.integration.v1 import webhooks_pb2 as wh
from services.integration import links
from services.integration.domain import signatures
from services.integration.domain.mapping import MappingError, map_event
from services.integration.repositories.connectors import Connectors
from services.integration.repositories.webhooks import ReceivedWebhooks
from services.integration.store import ConnectorRow, ReceivedWebhookRow
from services.integration.webhook_checks import Verified, stamp

HEALTH_REFRESH = timedelta(minutes=1)
VERDICTS = {
    signatures.Verdict.VERIFIED: wh.WEBHOOK_VERIFICATION_VERIFIED,
    signatures.Verdict.MISSING_SIGNATURE: wh.WEBHOOK_VERIFICATION_MISSING_SIGNATURE,
    signatures.Verdict.BAD_SIGNATURE: wh.WEBHOOK_VERIFICATION_BAD_SIGNATURE,
    signatures.Verdict.STALE_TIMESTAMP: wh.WEBHOOK_VERIFICATION_STALE_TIMESTAMP,
}


@dataclass(frozen=True)
class Health:
    """What a mapping says about its connector: healthy, or degraded with the reason."""

    ok: bool
    error: str = ""


@dataclass(frozen=True)
class Mapped:
    """A stored payload's domain event, before its envelope."""

    event_type: str
    event: Message
    subject: str


def _mapped_event(
    connector_id: str,
    provider: str,
    inbound: c.InboundWebhookConfig,
    rec: ReceivedWebhookRow | NewRecord,
    doc: Any = None,
) -> tuple[Health | None, Mapped | None]:
    """The pure part of mapping (no I/O): the event, or the record marked IGNORED (no mapping names
    its type, no health news) or FAILED (with the health note). `doc`: the body already parsed."""
    rec.attempt_count += 1
    mapped = next(
        (m.mapped_event_type for m in inbound.mappings if m.external_event_type == rec.external_event_type), 0
    )
    if not mapped:
        rec.state, rec.last_error = wh.RECEIVED_WEBHOOK_STATE_IGNORED, ""
        return None, None
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
        return Health(False, f"webhook {rec.external_event_id}: {rec.last_error}"[:500]), None
    return Health(True), Mapped(event_type, event, subject)


def _processed(rec: ReceivedWebhookRow | NewRecord, envelope: EventEnvelope, m: Mapped, at: datetime) -> None:
    rec.emitted = (rec.emitted + "\n" if rec.emitted else "") + f"{envelope.id} {m.event_type}"
    rec.state, rec.last_error, rec.processed_at = wh.RECEIVED_WEBHOOK_STATE_PROCESSED, "", at
    rec.deal_id = getattr(m.event, "deal_id", "") or rec.deal_id


async def _linked(uow: UnitOfWork, m: Mapped) -> Mapped:
    """The sender named no deal: the external record (or its contract / order) may be linked to one."""
    fields = m.event.DESCRIPTOR.fields_by_name
    refs = [
        getattr(m.event, n) for n in ("payment", "invoice", "contract", "shipment", "order") if n in fields
    ]
    await links.resolve(uow, m.event, *refs)
    return Mapped(m.event_type, m.event, getattr(m.event, "deal_id", "") or m.subject)


async def _map(
    uow: UnitOfWork,
    connector_id: str,
    provider: str,
    inbound: c.InboundWebhookConfig,
    rec: ReceivedWebhookRow | NewRecord,
    at: datetime,
) -> Health | None:
    """Map the stored payload (replay) and stage its event in the outbox; IGNORED (kept, flagged)
    when no mapping names its type (no health news)."""
    health, m = _mapped_event(connector_id, provider, inbound, rec)
    if m is None:
        return health
    m = await _linked(uow, m)
    envelope = await emit(
        uow.session, m.event_type, m.event, source=uow.source, subject=m.subject, table=uow.outbox
    )
    _processed(rec, envelope, m, at)
    return health


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


@dataclass(frozen=True)
class Prepared:
    """A delivery's record, mapped, and its event's envelope, built before the write transaction
    (no I/O), so the group holding the writer only runs its statements. Never mutated: each run
    of the transaction (a retry, a failed group's lone runs) writes a copy of the record.
    `linking`: the event names no deal; its links are read, and its envelope built, in the
    transaction."""

    record: NewRecord
    health: Health | None
    envelope: EventEnvelope | None = None
    linking: Mapped | None = None


@dataclass(frozen=True)
class Delivery:
    """A verified delivery waiting for its write, with the trace context of its call."""

    request: pb.IngestWebhookRequest
    verified: Verified
    at: datetime
    trace: otel_context.Context | None = None
    prepared: Prepared | None = field(default=None, repr=False)


def prepare(tenant: str, source: str, d: Delivery) -> Prepared:
    """`d`'s record and event as its write will store them, if it is not a duplicate."""
    v = d.verified
    rec = _new_record(d.request, v, d.at)
    health, m = _mapped_event(v.connector_id, v.provider, v.inbound, rec, v.doc)
    if m is None:
        return Prepared(rec, health)
    if not getattr(m.event, "deal_id", ""):
        return Prepared(rec, health, linking=m)
    envelope = new_envelope(m.event_type, tenant, m.event, source=source, subject=m.subject, context=d.trace)
    _processed(rec, envelope, m, d.at)
    return Prepared(rec, health, envelope)


def delivery(
    tenant: str,
    source: str,
    request: pb.IngestWebhookRequest,
    verified: Verified,
    at: datetime,
    trace: otel_context.Context | None,
) -> Delivery:
    d = Delivery(request, verified, at, trace)
    return Delivery(request, verified, at, trace, prepare(tenant, source, d))


async def _written(uow: UnitOfWork, d: Delivery, envelopes: list[EventEnvelope]) -> Prepared:
    """`d`'s prepared record (a copy) and event (kept in `envelopes`), its links read if it needs them."""
    p = d.prepared or prepare(uow.tenant, uow.source, d)
    rec = replace(p.record)
    if p.envelope is not None:
        envelopes.append(p.envelope)
    elif p.linking is not None:
        event = type(p.linking.event)()
        event.CopyFrom(p.linking.event)  # resolved on a copy: the prepared one serves every run
        m = await _linked(uow, Mapped(p.linking.event_type, event, p.linking.subject))
        envelope = new_envelope(
            m.event_type, uow.tenant, m.event, source=uow.source, subject=m.subject, context=d.trace
        )
        envelopes.append(envelope)
        _processed(rec, envelope, m, d.at)
    return Prepared(rec, p.health)


Recorded = tuple[ReceivedWebhookRow | NewRecord, bool]  # the record (stored or new), duplicate


async def record(
    uow: UnitOfWork, deliveries: list[Delivery], *, look_up: bool = True
) -> list[Recorded | None]:
    """Store verified deliveries (in arrival order) and map them, or count each as a duplicate
    of its event id: one answer each, None for one whose connector changed (rotated, disabled,
    deleted) since it was verified: it must be verified again against the current row.

    Few statements for the whole group (on SQLite, the one writer's turn): the connectors,
    the earlier records of these event ids, then every new record and every event in one
    insert each; records and events were built before (`prepare`). `look_up=False` skips the
    earlier records: the insert's unique key finds a re-delivery (or a concurrent twin in
    another process), the unit of work rolls back and its second run (look_up=True) counts it,
    so only groups holding one pay the extra run.
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
    repeated: dict[str, int] = {}  # stored records' re-deliveries in this group, by record id
    for d in live:
        v = d.verified
        twin = earlier.get((v.connector_id, v.event_id))
        if twin is not None:  # a re-delivery, perhaps of one earlier in this very group
            if isinstance(twin, NewRecord):
                twin.duplicate_count += 1
            else:  # counted in SQL: another replica's group may be counting it at the same time
                repeated[twin.received_webhook_id] = repeated.get(twin.received_webhook_id, 0) + 1
            answers[id(d)] = (twin, True)
            continue
        written = await _written(uow, d, envelopes)
        rec = written.record
        notes.setdefault(v.connector_id, []).append((written.health, d.at))
        earlier[(v.connector_id, v.event_id)] = rec
        added.append(rec)
        answers[id(d)] = (rec, False)
    await received.count_duplicates(repeated)
    # In key order: concurrent groups inserting the same ids (PostgreSQL) wait for each other in
    # one order, never in a cycle (a deadlock, found only after deadlock_timeout).
    added.sort(key=lambda r: (r.connector_id, r.external_event_id))
    await received.insert_new([r.values() for r in added])
    await add_events(uow.session, envelopes, table=uow.outbox)
    for cid, noted in sorted(notes.items()):  # connector rows locked in one order, as the records
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
