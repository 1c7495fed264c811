"""Event plumbing: envelope, transactional outbox, relay to Redis Streams, idempotent consumers.

Producer:  `emit(session, type, payload, source=...)` in the state change's transaction.
Relay:     `OutboxRelay(db, redis, service_stream("leads")).run()` publishes committed rows.
Consumer:  `StreamConsumer(redis, db, "notify", [service_stream("leads")], handler).run()`.
Dead letters: `dead_letters(redis, group)`, `replay_dead_letters(redis, group)`.
"""

from kit.events.consumer import (
    DLQ_PREFIX,
    DeadLetter,
    Delivery,
    Handler,
    StreamConsumer,
    dead_letters,
    dlq_stream,
    is_transient,
    replay_dead_letters,
)
from kit.events.envelope import (
    EventEnvelope,
    PayloadTypeError,
    consumer_span,
    extract_context,
    new_envelope,
    new_event_id,
    occurred_at,
    parse_envelope,
    payload_type,
    unpack_payload,
)
from kit.events.outbox import (
    OUTBOX_TABLE,
    PROCESSED_EVENTS_TABLE,
    add_event,
    emit,
    outbox_table,
    processed_events_table,
)
from kit.events.relay import DEFAULT_MAXLEN, STREAM_PREFIX, OutboxRelay, service_stream

__all__ = [
    "DEFAULT_MAXLEN",
    "DLQ_PREFIX",
    "OUTBOX_TABLE",
    "PROCESSED_EVENTS_TABLE",
    "STREAM_PREFIX",
    "DeadLetter",
    "Delivery",
    "EventEnvelope",
    "Handler",
    "OutboxRelay",
    "PayloadTypeError",
    "StreamConsumer",
    "add_event",
    "consumer_span",
    "dead_letters",
    "dlq_stream",
    "emit",
    "extract_context",
    "is_transient",
    "new_envelope",
    "new_event_id",
    "occurred_at",
    "outbox_table",
    "parse_envelope",
    "payload_type",
    "processed_events_table",
    "replay_dead_letters",
    "service_stream",
    "unpack_payload",
]
