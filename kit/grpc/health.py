"""Health that reflects real readiness: SERVING only while every dependency answers.

A monitor pings each dependency (database, Redis, Temporal...) on an interval
with a timeout and sets grpc.health.v1 status for "" and for each service name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from grpc_health.v1 import health_pb2

log = logging.getLogger("salesops.health")

Check = Callable[[], Awaitable[object]]


class ReadinessMonitor:
    def __init__(
        self,
        servicer: Any,  # grpc_health.v1.health.aio.HealthServicer (untyped)
        service_names: Iterable[str],
        checks: Mapping[str, Check],
        *,
        interval: float = 2.0,
        timeout: float = 2.0,
    ) -> None:
        self.servicer = servicer
        self.service_names = ["", *service_names]
        self.checks = checks
        self.interval = interval
        self.timeout = timeout
        self.failing: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def _check_one(self, name: str, check: Check) -> str | None:
        try:
            async with asyncio.timeout(self.timeout):
                await check()
        except Exception as exc:  # any failure means "not ready", with the reason logged
            return f"{type(exc).__name__}: {exc}"[:300]
        return None

    async def check_now(self) -> bool:
        names = list(self.checks)
        results = await asyncio.gather(*(self._check_one(n, self.checks[n]) for n in names))
        failing = {n: r for n, r in zip(names, results, strict=True) if r is not None}
        for name in set(failing) - set(self.failing):
            log.warning("dependency %s is down: %s", name, failing[name])
        for name in set(self.failing) - set(failing):
            log.info("dependency %s is back", name)
        self.failing = failing
        await self._publish(not failing and not self._stopping)
        return not failing

    async def _publish(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self.service_names:
            await self.servicer.set(name, status)

    async def _loop(self) -> None:
        while True:
            await self.check_now()
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="readiness-monitor")

    async def stop(self) -> None:
        """Turn NOT_SERVING first so load balancers drain us before the server stops."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._publish(False)
        await self.servicer.enter_graceful_shutdown()
