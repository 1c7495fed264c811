"""Gauges of the event plumbing, read periodically: outbox backlog, consumer lag, dead letters.

Reading them costs one COUNT on the outbox's partial index and one XINFO GROUPS / XLEN per
stream and group, every `interval` seconds (not on scrape: a scrape must not wait on Redis
or the database). A failed read keeps the last value and counts in
``salesops_metrics_refresh_errors_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy import Table, func, select

from kit.db import Database
from kit.events.dead_letters import dlq_stream, text_of
from kit.metrics import CONSUMER_LAG, CONSUMER_PENDING, DEAD_LETTERS, OUTBOX_BACKLOG, REFRESH_ERRORS

log = logging.getLogger("salesops.metrics")


@dataclass(frozen=True)
class Outbox:
    table: Table
    stream: str  # the stream its relay feeds: the gauge's label


@dataclass(frozen=True)
class Group:
    name: str
    streams: Sequence[str]


class EventGauges:
    def __init__(
        self,
        db: Database,
        redis: Redis,
        *,
        outbox: Outbox | None,
        groups: Sequence[Group],
        interval: float = 15.0,
    ) -> None:
        self.db = db
        self.redis = redis
        self.outbox = outbox
        self.groups = list(groups)
        self.interval = interval
        self._stop = asyncio.Event()

    async def refresh(self) -> None:
        """Read every gauge once."""
        if self.outbox is not None:
            await self._guarded("outbox", self._outbox(self.outbox))
        for group in self.groups:
            await self._guarded("redis", self._group(group))

    async def _guarded(self, source: str, read: Awaitable[None]) -> None:
        try:
            await read
        except Exception as exc:  # the gauge keeps its last value; the next round tries again
            REFRESH_ERRORS.labels(source).inc()
            log.debug("metrics refresh of %s failed: %s", source, exc)

    async def _outbox(self, outbox: Outbox) -> None:
        t = outbox.table
        async with self.db.system_session() as session:
            count = await session.scalar(select(func.count()).where(t.c.published_at.is_(None)))
        OUTBOX_BACKLOG.labels(outbox.stream).set(int(count or 0))

    async def _group(self, group: Group) -> None:
        for stream in group.streams:
            try:
                infos = await self.redis.xinfo_groups(stream)
            except Exception as exc:
                if "no such key" in str(exc).lower():
                    continue  # nobody has produced to it yet
                raise
            for info in infos:
                if text_of(info.get("name")) != group.name:
                    continue
                CONSUMER_PENDING.labels(stream, group.name).set(int(info.get("pending") or 0))
                lag = info.get("lag")
                if lag is not None:  # Redis cannot tell after entries were deleted mid-stream
                    CONSUMER_LAG.labels(stream, group.name).set(int(lag))
        DEAD_LETTERS.labels(group.name).set(int(await self.redis.xlen(dlq_stream(group.name))))

    async def run(self) -> None:
        while not self._stop.is_set():
            await self.refresh()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    async def stop(self) -> None:
        self._stop.set()


__all__ = ["EventGauges", "Group", "Outbox"]
