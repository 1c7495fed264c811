"""The event envelope: build one (id, tenant, time, trace context, payload) and read it back.

Producers call `new_envelope` (usually through `kit.events.emit`) inside the
span of the request that changes state; the envelope carries that span's W3C
trace context. Consumers call `consumer_span(envelope)` so the handler's span is
a child of the producer's span (same trace id) and also links to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar

from google.protobuf.message import Message
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from ulid import ULID

from salesops.common.v1.events_pb2 import EventEnvelope

M = TypeVar("M", bound=Message)

# Always W3C trace context: the envelope has `traceparent`/`tracestate` fields,
# whatever propagators OTEL_PROPAGATORS configures for HTTP/gRPC headers.
_PROPAGATOR = TraceContextTextMapPropagator()
_TRACER_NAME = "kit.events"


class PayloadTypeError(TypeError):
    """The envelope's payload is not the message type the caller asked for."""


def new_event_id() -> str:
    """A new ULID string (sortable; monotonic within this process)."""
    return str(ULID())


def new_envelope(
    event_type: str,
    tenant: str,
    payload: Message,
    *,
    source: str,
    subject: str = "",
    event_id: str | None = None,
    occurred_at: datetime | None = None,
    context: otel_context.Context | None = None,
) -> EventEnvelope:
    """Build an envelope; trace context comes from `context` or the current OpenTelemetry context."""
    if not event_type:
        raise ValueError("an event needs a type")
    if not tenant:
        raise ValueError("an event needs a tenant")
    envelope = EventEnvelope(
        id=event_id or new_event_id(),
        type=event_type,
        tenant=tenant,
        source=source,
        subject=subject,
    )
    when = occurred_at or datetime.now(UTC)
    if when.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware (UTC)")
    envelope.occurred_at.FromDatetime(when.astimezone(UTC))
    envelope.payload.Pack(payload)
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=context)
    envelope.traceparent = carrier.get("traceparent", "")
    envelope.tracestate = carrier.get("tracestate", "")
    return envelope


def parse_envelope(data: bytes) -> EventEnvelope:
    """Deserialize an envelope (raises `google.protobuf.message.DecodeError` on garbage)."""
    envelope = EventEnvelope()
    envelope.ParseFromString(data)
    return envelope


def occurred_at(envelope: EventEnvelope) -> datetime:
    """The envelope's `occurred_at` as an aware UTC datetime."""
    return envelope.occurred_at.ToDatetime(tzinfo=UTC)


def payload_type(envelope: EventEnvelope) -> str:
    """Full proto name of the payload, e.g. `salesops.leads.v1.LeadCreated`."""
    return envelope.payload.TypeName()


def unpack_payload(envelope: EventEnvelope, message_type: type[M]) -> M:
    """The payload as `message_type`; `PayloadTypeError` if it holds another message."""
    message = message_type()
    if not envelope.payload.Unpack(message):
        raise PayloadTypeError(
            f"event {envelope.id} ({envelope.type}) carries {payload_type(envelope)!r}, "
            f"not {message_type.DESCRIPTOR.full_name!r}"
        )
    return message


def extract_context(envelope: EventEnvelope) -> otel_context.Context:
    """An OpenTelemetry context whose current span is the producer's (remote) span."""
    carrier = {"traceparent": envelope.traceparent}
    if envelope.tracestate:
        carrier["tracestate"] = envelope.tracestate
    return _PROPAGATOR.extract(carrier)


@contextmanager
def consumer_span(
    envelope: EventEnvelope,
    *,
    name: str | None = None,
    tracer: Tracer | None = None,
    attributes: dict[str, str] | None = None,
) -> Iterator[Span]:
    """Run the block in a CONSUMER span that is a child of, and linked to, the producer's span.

    Without a trace context in the envelope the span starts a new trace.
    """
    parent = extract_context(envelope)
    producer = trace.get_current_span(parent).get_span_context()
    links = [Link(producer)] if producer.is_valid else []
    attrs = {
        "messaging.system": "redis",
        "messaging.operation.type": "process",
        "messaging.message.id": envelope.id,
        "salesops.event.type": envelope.type,
        "salesops.tenant": envelope.tenant,
        **(attributes or {}),
    }
    active = tracer or trace.get_tracer(_TRACER_NAME)
    with active.start_as_current_span(
        name or f"process {envelope.type}",
        context=parent,
        kind=SpanKind.CONSUMER,
        links=links,
        attributes=attrs,
    ) as span:
        yield span


__all__ = [
    "EventEnvelope",
    "PayloadTypeError",
    "consumer_span",
    "extract_context",
    "new_envelope",
    "new_event_id",
    "occurred_at",
    "parse_envelope",
    "payload_type",
    "unpack_payload",
]
