"""What one service process serves on `/metrics`, started and stopped by kit.runtime.serve."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from redis.asyncio import Redis

from kit.config import env_float
from kit.db import Database
from kit.metrics import temporal
from kit.metrics.endpoint import MetricsEndpoint, serve_metrics
from kit.metrics.events import EventGauges, Group, Outbox


class ProcessMetrics:
    def __init__(self, endpoint: MetricsEndpoint | None) -> None:
        self.endpoint = endpoint
        self._loops: list[tuple[EventGauges | temporal.TemporalMetrics, asyncio.Task[None]]] = []

    @classmethod
    def start(cls, *, temporal_worker: bool) -> ProcessMetrics:
        """The endpoint (if `SALESOPS_METRICS_PORT` is set) and, for a worker, the SDK's metrics.

        Call before the Temporal client connects: the SDK's runtime is chosen at connect time.
        """
        found = cls(serve_metrics())
        if found.endpoint is not None and temporal_worker:
            bridge = temporal.install()
            found._loops.append((bridge, asyncio.create_task(bridge.run(), name="temporal-metrics")))
        return found

    def watch_events(
        self, db: Database, redis: Redis, *, outbox: Outbox | None, groups: Sequence[Group]
    ) -> None:
        if self.endpoint is None or (outbox is None and not groups):
            return
        interval = env_float("SALESOPS_METRICS_EVENTS_INTERVAL_SECONDS", 15.0)
        gauges = EventGauges(db, redis, outbox=outbox, groups=groups, interval=interval)
        self._loops.append((gauges, asyncio.create_task(gauges.run(), name="event-gauges")))

    async def stop(self) -> None:
        for loop, task in self._loops:
            await loop.stop()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 5)
        self._loops.clear()
        if self.endpoint is not None:
            await asyncio.to_thread(self.endpoint.close)
            self.endpoint = None


__all__ = ["Group", "Outbox", "ProcessMetrics"]
