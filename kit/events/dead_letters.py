"""Dead letters: where a consumer group's poison events go, how to list them and replay them.

An entry a handler keeps failing on (or one deleted before its group processed it)
is copied to `salesops:dlq:<group>` with the error and its origin and acknowledged,
so it never holds up the rest. `replay_dead_letters` moves entries back onto their
original stream, where every group sees them again (groups that applied them skip).
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

log = logging.getLogger("kit.events.consumer")

DLQ_PREFIX = "salesops:dlq:"
DLQ_FIELD_PREFIX = "dlq_"
MAX_ERROR_CHARS = 4000


def dlq_stream(group: str) -> str:
    """The dead-letter stream of a consumer group: `salesops:dlq:<group>`."""
    if not group:
        raise ValueError("a dead-letter stream needs a group name")
    return DLQ_PREFIX + group


def text_of(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def fields_of(raw: Any) -> dict[str, bytes]:
    if not raw:
        return {}
    return {text_of(k): v if isinstance(v, bytes) else str(v).encode() for k, v in dict(raw).items()}


@dataclass(frozen=True)
class DeadLetter:
    """An entry of a dead-letter stream."""

    dlq_id: str
    stream: str
    entry_id: str
    group: str
    consumer: str
    event_id: str
    event_type: str
    tenant: str
    error: str
    deliveries: int
    failed_at: str
    fields: dict[str, bytes]


def _letter(dlq_id: str, fields: dict[str, bytes]) -> DeadLetter:
    def meta(name: str) -> str:
        return text_of(fields.get(DLQ_FIELD_PREFIX + name))

    return DeadLetter(
        dlq_id=dlq_id,
        stream=meta("stream"),
        entry_id=meta("entry_id"),
        group=meta("group"),
        consumer=meta("consumer"),
        event_id=text_of(fields.get("id")),
        event_type=text_of(fields.get("type")),
        tenant=text_of(fields.get("tenant")),
        error=meta("error"),
        deliveries=int(meta("deliveries") or 0),
        failed_at=meta("failed_at"),
        fields=fields,
    )


async def dead_letters(redis: Redis, group: str, *, count: int = 100, start: str = "-") -> list[DeadLetter]:
    """The oldest `count` dead letters of `group` from `start` on."""
    entries = await redis.xrange(dlq_stream(group), min=start, max="+", count=count)
    return [_letter(text_of(eid), fields_of(f)) for eid, f in entries or []]


async def replay_dead_letters(
    redis: Redis,
    group: str,
    *,
    ids: Collection[str] | None = None,
    limit: int = 1000,
) -> int:
    """Move dead letters of `group` (all, or only `ids`) back to their original streams.

    Each entry is re-added to the end of its stream with its original fields and
    deleted from the DLQ in one MULTI. Every group on that stream sees it again;
    groups that applied it already skip it (processed events). Returns how many moved.
    """
    moved = 0
    wanted = set(ids) if ids is not None else None
    start = "-"
    while moved < limit:
        batch = await dead_letters(redis, group, count=min(500, limit - moved), start=start)
        if not batch:
            break
        for letter in batch:
            if wanted is not None and letter.dlq_id not in wanted:
                continue
            original = {k: v for k, v in letter.fields.items() if not k.startswith(DLQ_FIELD_PREFIX)}
            if not letter.stream or not original:
                log.error("dead letter %s has no origin stream or no event; left in place", letter.dlq_id)
                continue
            async with redis.pipeline(transaction=True) as pipe:
                pipe.xadd(letter.stream, original)  # type: ignore[arg-type]
                pipe.xdel(dlq_stream(group), letter.dlq_id)
                await pipe.execute()
            moved += 1
            if moved >= limit:
                break
        start = "(" + batch[-1].dlq_id
    return moved


__all__ = [
    "DLQ_FIELD_PREFIX",
    "DLQ_PREFIX",
    "MAX_ERROR_CHARS",
    "DeadLetter",
    "dead_letters",
    "dlq_stream",
    "fields_of",
    "replay_dead_letters",
    "text_of",
]
