"""Stream consumers: one consumer group per consuming service, idempotent handlers, dead letters.

    consumer = StreamConsumer(redis, db, "notify", [service_stream("leads")], handle)
    task = asyncio.create_task(consumer.run())
    ...
    await consumer.stop()

For every entry the consumer opens `db.session(envelope.tenant)`, inserts
`(group, event id)` into `processed_events` and, only if that row is new, awaits
`handler(envelope, session)`; then it commits, and only after the commit it
XACKs. The handler must not commit itself. A crash anywhere before the commit
leaves no effect and an unacknowledged entry; a crash after the commit and
before the XACK leaves the processed row, so the redelivery is acknowledged
without running the handler again. Effect once, delivery at least once.

Entries left pending by a consumer that died are taken over with XAUTOCLAIM
once idle for `min_idle` seconds. A failed entry is retried by this consumer
after a backoff (`retry_delay`, doubling); the delivery count is the stream's
own (XPENDING). When a handler fails on delivery `max_deliveries` or later, the
entry is copied to `salesops:dlq:<group>` with the error and its origin, and
acknowledged, so a poison event never holds up the rest. Failures classified as
transient (database or Redis unreachable, timeouts) are retried without ever
being dead-lettered, so an outage does not empty the stream into the DLQ.
`replay_dead_letters` moves entries back onto their original stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.trace import Status, StatusCode, Tracer
from redis import exceptions as redis_errors
from redis.asyncio import Redis
from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from kit.db import Database
from kit.events.claims import claim_event
from kit.events.dead_letters import (
    DLQ_FIELD_PREFIX,
    DLQ_PREFIX,
    MAX_ERROR_CHARS,
    DeadLetter,
    dead_letters,
    dlq_stream,
    fields_of,
    replay_dead_letters,
    text_of,
)
from kit.events.entries import Delivery, default_consumer_name, is_transient, stream_entries
from kit.events.envelope import EventEnvelope, consumer_span, parse_envelope
from kit.events.grouping import TenantGroups
from kit.events.outbox import default_processed_events

log = logging.getLogger("kit.events.consumer")

Handler = Callable[[EventEnvelope, AsyncSession], Awaitable[None]]


class StreamConsumer(TenantGroups):
    """Consumes `streams` as consumer group `group` (the consuming service's name).

    handler: `async (envelope, session) -> None`; `session` is scoped to the
        envelope's tenant and already holds the processed-event row; don't commit.
    types: when given, entries of other event types are acknowledged unseen.
    min_idle: seconds an entry may stay unacknowledged with another consumer
        before it is taken over; keep it above the slowest handler's duration.
    before_ack: fault-injection hook for tests: awaited with the deliveries
        whose effects are committed, right before they are acknowledged.
    group_commit: apply the entries of one read that belong to the same tenant in one
        transaction (each still claims its own processed-event row); if that transaction
        fails as a whole, each entry is applied alone, as without it. Only for handlers
        whose in-memory side effects are safe to run again (an entry may be handled twice,
        once in the failed group, once alone): e.g. state kept per event id and flushed in
        `before_ack` for the acknowledged deliveries only.
    coalesce: after a read that was not full, the next read starts no sooner than this many
        seconds after it: entries arriving one by one (a burst's producer commits a few at a
        time) are then read, and with group_commit applied, together instead of a transaction
        each. The first entry after a quiet spell is read at once; a backlog (full reads) is not
        slowed. 0 (the default): read again at once.
    """

    def __init__(
        self,
        redis: Redis,
        db: Database,
        group: str,
        streams: Sequence[str],
        handler: Handler,
        *,
        name: str | None = None,
        types: Collection[str] | None = None,
        processed_table: Table | None = None,
        batch_size: int = 32,
        block: float = 1.0,
        min_idle: float = 60.0,
        claim_interval: float | None = None,
        max_deliveries: int = 5,
        retry_delay: float = 0.5,
        start_id: str = "0",
        dlq_maxlen: int | None = None,
        transient: Callable[[BaseException], bool] = is_transient,
        tracer: Tracer | None = None,
        before_ack: Callable[[Sequence[Delivery]], Awaitable[None]] | None = None,
        group_commit: bool = False,
        coalesce: float = 0.0,
    ) -> None:
        if not streams:
            raise ValueError("a consumer needs at least one stream")
        if max_deliveries < 1:
            raise ValueError("max_deliveries must be at least 1")
        if redis.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError(
                "the consumer needs a Redis client without decode_responses (envelopes are bytes)"
            )
        self.redis = redis
        self.db = db
        self.group = group
        self.streams = list(dict.fromkeys(streams))
        self.handler = handler
        self.name = name or default_consumer_name()
        self.types = frozenset(types) if types is not None else None
        self.processed = default_processed_events if processed_table is None else processed_table
        self.batch_size = batch_size
        self.block = block
        self.min_idle = min_idle
        self.claim_interval = claim_interval if claim_interval is not None else max(min_idle / 2, 0.05)
        self.max_deliveries = max_deliveries
        self.retry_delay = retry_delay
        self.start_id = start_id
        self.dlq = dlq_stream(group)
        self.dlq_maxlen = dlq_maxlen
        self.transient = transient
        self.tracer = tracer
        self.before_ack = before_ack
        self.group_commit = group_commit
        self.coalesce = coalesce
        self.groups = 0  # transactions that applied more than one entry (group_commit)
        self.handled = 0  # handler ran and committed
        self.skipped = 0  # already processed: acknowledged without the handler
        self.dead_lettered = 0
        self._retry: dict[tuple[str, str], float] = {}
        self._stopping = False
        self._stop_event = asyncio.Event()
        self._done = asyncio.Event()
        self._done.set()

    # -- lifecycle --------------------------------------------------------------

    async def ensure_groups(self) -> None:
        """XGROUP CREATE ... MKSTREAM for each stream; an existing group is left as it is."""
        for stream in self.streams:
            try:
                await self.redis.xgroup_create(stream, self.group, id=self.start_id, mkstream=True)
            except redis_errors.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def stop(self) -> None:
        """Finish the entry in flight, acknowledge what is committed, return from `run()`."""
        self._stopping = True
        self._stop_event.set()
        await self._done.wait()

    async def run(self) -> None:
        """Consume until `stop()`. Redis or database outages are logged and retried with backoff."""
        self._stopping = False
        self._stop_event.clear()
        self._done.clear()
        backoff = 0.1
        next_claim = 0.0
        try:
            await self._with_backoff(self._start)
            while not self._stopping:
                try:
                    now = time.monotonic()
                    if now >= next_claim:
                        await self.reclaim()
                        next_claim = time.monotonic() + self.claim_interval
                    await self._retry_due()
                    if self._stopping:
                        break
                    wait = min(self.block, max(next_claim - time.monotonic(), 0.0))
                    if self._retry:
                        wait = min(wait, max(min(self._retry.values()) - time.monotonic(), 0.0))
                    batch = await self._read_new(wait)
                    if batch:
                        read_at = time.monotonic()
                        await self._process(batch)
                        rest = read_at + self.coalesce - time.monotonic()
                        if rest > 0 and len(batch) < self.batch_size:
                            await self._sleep(rest)
                    backoff = 0.1
                except Exception as exc:
                    if isinstance(exc, redis_errors.ResponseError) and "NOGROUP" in str(exc):
                        log.warning("consumer group %s missing (stream deleted?); recreating", self.group)
                        await self._sleep(backoff)
                        await self._with_backoff(self.ensure_groups)
                        continue
                    log.exception("consumer %s/%s failed; retrying in %.2fs", self.group, self.name, backoff)
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            self._done.set()

    async def _start(self) -> None:
        await self.ensure_groups()
        await self._process_own_history()

    async def _with_backoff(self, step: Callable[[], Awaitable[None]]) -> None:
        backoff = 0.1
        while not self._stopping:
            try:
                await step()
                return
            except Exception:
                log.exception(
                    "consumer %s/%s cannot start; retrying in %.2fs", self.group, self.name, backoff
                )
                await self._sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop_event.wait(), seconds)

    # -- reading ----------------------------------------------------------------

    async def _read_new(self, wait: float) -> list[Delivery]:
        """XREADGROUP '>' blocking up to `wait` s; returns early (empty) when stopped."""
        block_ms = max(int(wait * 1000), 1)
        read = asyncio.ensure_future(
            self.redis.xreadgroup(
                self.group,
                self.name,
                dict.fromkeys(self.streams, ">"),
                count=self.batch_size,
                block=block_ms,
            )
        )
        stopped = asyncio.ensure_future(self._stop_event.wait())
        try:
            await asyncio.wait({read, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            if not read.done():
                # Entries the server may have delivered meanwhile stay pending with
                # this consumer; a restart under the same name or XAUTOCLAIM gets them.
                read.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await read
        if read.cancelled():
            return []
        return [
            Delivery(stream, entry_id, fields, 1)
            for stream, entries in stream_entries(read.result())
            for entry_id, fields in entries
        ]

    async def _process_own_history(self) -> None:
        """Entries delivered to this consumer name before a restart and never acknowledged."""
        for stream in self.streams:
            last = "0"
            while not self._stopping:
                response = await self.redis.xreadgroup(
                    self.group, self.name, {stream: last}, count=self.batch_size
                )
                entries = [e for _, found in stream_entries(response) for e in found]
                if not entries:
                    break
                last = entries[-1][0]
                await self._process(await self._with_counts(stream, entries))

    async def reclaim(self) -> int:
        """XAUTOCLAIM entries idle longer than `min_idle` (dead or stuck consumers) and process them."""
        min_idle_ms = int(self.min_idle * 1000)
        total = 0
        for stream in self.streams:
            start = "0-0"
            for _ in range(100):  # bounded: at most 100 pages per pass
                if self._stopping:
                    return total
                reply = await self.redis.xautoclaim(
                    stream, self.group, self.name, min_idle_ms, start, count=self.batch_size
                )
                start = text_of(reply[0])
                entries = [(text_of(eid), fields_of(f)) for eid, f in reply[1] if eid is not None]
                deleted = reply[2] if len(reply) > 2 else []
                for entry_id in deleted:  # Redis dropped them from the pending list already
                    await self._record_vanished(Delivery(stream, text_of(entry_id), {}, 0))
                if entries:
                    total += len(entries)
                    for entry_id, _ in entries:
                        self._retry.pop((stream, entry_id), None)
                    await self._process(await self._with_counts(stream, entries))
                if start == "0-0":
                    break
        return total

    async def _retry_due(self) -> None:
        now = time.monotonic()
        due = [key for key, at in self._retry.items() if at <= now]
        if not due:
            return
        by_stream: dict[str, list[str]] = {}
        for stream, entry_id in due:
            self._retry.pop((stream, entry_id), None)
            by_stream.setdefault(stream, []).append(entry_id)
        for stream, ids in by_stream.items():
            claimed: Any = await self.redis.xclaim(stream, self.group, self.name, 0, ids)  # type: ignore[arg-type]
            entries = [(text_of(eid), fields_of(f)) for eid, f in claimed if eid is not None]
            if entries:
                await self._process(await self._with_counts(stream, entries))

    async def _with_counts(
        self, stream: str, entries: Sequence[tuple[str, dict[str, bytes]]]
    ) -> list[Delivery]:
        """Attach XPENDING's delivery count to entries that may have been delivered before."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for entry_id, _ in entries:
                pipe.xpending_range(stream, self.group, entry_id, entry_id, 1)
            replies = await pipe.execute()
        out: list[Delivery] = []
        for (entry_id, fields), reply in zip(entries, replies, strict=True):
            count = int(reply[0]["times_delivered"]) if reply else 1
            out.append(Delivery(stream, entry_id, fields, count))
        return out

    # -- processing -------------------------------------------------------------

    async def _process(self, batch: Iterable[Delivery]) -> None:
        done: list[Delivery] = []
        try:
            if self.group_commit:
                await self._process_grouped(batch, done)
            else:
                for delivery in batch:
                    if self._stopping:
                        break  # the rest stays pending: a restart under this name or XAUTOCLAIM takes it
                    if await self._handle(delivery):
                        done.append(delivery)
        finally:
            if done:
                await self._ack(done)

    async def _ack(self, done: Sequence[Delivery]) -> None:
        if self.before_ack is not None:
            await self.before_ack(done)
        by_stream: dict[str, list[str]] = {}
        for delivery in done:
            by_stream.setdefault(delivery.stream, []).append(delivery.entry_id)
        async with self.redis.pipeline(transaction=False) as pipe:
            for stream, ids in by_stream.items():
                pipe.xack(stream, self.group, *ids)
            await pipe.execute()

    async def _handle(self, delivery: Delivery) -> bool:
        """Apply one entry. True: acknowledge it now. False: it stays pending (retry or DLQ'd)."""
        envelope = await self._prepare(delivery)
        if isinstance(envelope, bool):
            return envelope
        return await self._apply_one(delivery, envelope)

    async def _prepare(self, delivery: Delivery) -> EventEnvelope | bool:
        """The entry's envelope, or whether to acknowledge it unapplied (True: not our type;
        False: vanished or undecodable, dead-lettered)."""
        if not delivery.fields:
            await self._record_vanished(delivery)
            return False
        if self.types is not None and delivery.event_type not in self.types:
            return True
        raw = delivery.fields.get("envelope")
        try:
            if raw is None:
                raise DecodeError("stream entry has no 'envelope' field")
            return parse_envelope(raw)
        except DecodeError as exc:
            await self._dead_letter(delivery, exc)
            return False

    async def _apply_one(self, delivery: Delivery, envelope: EventEnvelope) -> bool:
        """Apply one entry in its own transaction; a failure schedules its retry or dead-letters it."""
        with consumer_span(
            envelope, tracer=self.tracer, attributes={"messaging.consumer.group.name": self.group}
        ) as span:
            try:
                applied = await self._apply(envelope)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, str(exc)[:200]))
                if not self.transient(exc) and delivery.deliveries >= self.max_deliveries:
                    await self._dead_letter(delivery, exc)
                else:
                    self._schedule_retry(delivery, exc)
                return False
            span.set_attribute("salesops.event.duplicate", not applied)
        if applied:
            self.handled += 1
        else:
            self.skipped += 1
        return True

    async def _apply(self, envelope: EventEnvelope) -> bool:
        async with self.db.session(envelope.tenant) as session:
            if not await self._claim_event(session, envelope.id):
                return False
            await self.handler(envelope, session)
            await session.commit()
        return True

    async def _claim_event(self, session: AsyncSession, event_id: str) -> bool:
        """Insert the processed-event row; False if this group has already applied the event."""
        return await claim_event(session, self.processed, self.group, event_id)

    def _schedule_retry(self, delivery: Delivery, exc: BaseException) -> None:
        delay = min(
            self.retry_delay * 2 ** max(delivery.deliveries - 1, 0), max(self.min_idle / 2, self.retry_delay)
        )
        log.warning(
            "event %s (%s) from %s failed on delivery %d, retry in %.2fs: %r",
            delivery.event_id,
            delivery.event_type,
            delivery.stream,
            delivery.deliveries,
            delay,
            exc,
        )
        self._retry[(delivery.stream, delivery.entry_id)] = time.monotonic() + delay

    async def _record_vanished(self, delivery: Delivery) -> None:
        """An entry deleted from the stream before this group processed it: a dead letter, never a silent ack.

        The relay only trims what every group has read and acknowledged, so this means
        someone deleted or trimmed the stream by hand; the dead letter (with no event
        to replay) makes the loss visible in `dead_letters()`.
        """
        await self._dead_letter(
            delivery,
            LookupError(
                f"entry {delivery.entry_id} was deleted from {delivery.stream} before group "
                f"{self.group} processed it; its event is lost to this group"
            ),
        )

    async def _dead_letter(self, delivery: Delivery, exc: BaseException) -> None:
        error = "".join(traceback.format_exception_only(exc)).strip()[:MAX_ERROR_CHARS]
        log.error(
            "event %s (%s) from %s dead-lettered to %s after %d deliveries: %s",
            delivery.event_id,
            delivery.event_type,
            delivery.stream,
            self.dlq,
            delivery.deliveries,
            error,
        )
        fields: dict[str, bytes | str] = dict(delivery.fields)
        fields.update(
            {
                f"{DLQ_FIELD_PREFIX}error": error,
                f"{DLQ_FIELD_PREFIX}stream": delivery.stream,
                f"{DLQ_FIELD_PREFIX}entry_id": delivery.entry_id,
                f"{DLQ_FIELD_PREFIX}group": self.group,
                f"{DLQ_FIELD_PREFIX}consumer": self.name,
                f"{DLQ_FIELD_PREFIX}deliveries": str(delivery.deliveries),
                f"{DLQ_FIELD_PREFIX}failed_at": datetime.now(UTC).isoformat(),
            }
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dlq, fields, maxlen=self.dlq_maxlen, approximate=True)  # type: ignore[arg-type]
            pipe.xack(delivery.stream, self.group, delivery.entry_id)
            await pipe.execute()
        self._retry.pop((delivery.stream, delivery.entry_id), None)
        self.dead_lettered += 1


__all__ = [
    "DLQ_PREFIX",
    "DeadLetter",
    "Delivery",
    "Handler",
    "StreamConsumer",
    "dead_letters",
    "default_consumer_name",
    "dlq_stream",
    "is_transient",
    "replay_dead_letters",
]
