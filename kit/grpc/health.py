"""Health that reflects real readiness: SERVING only while every dependency answers.

A monitor pings each dependency (database, Redis, Temporal...) on an interval
with a timeout and sets grpc.health.v1 status for "" and for each service name.

Liveness is apart (:data:`LIVENESS`, a Health/Check service name): SERVING while the process
answers and its readiness monitor still completes rounds. A dependency outage never makes it fail
(restarting the pod cures no database outage); a wedged process does: an event loop that cannot
answer times the probe out, and a monitor that stopped checking turns it NOT_SERVING.

Advisories are conditions an operator must act on that do not make the process
unready, such as a business calendar lacking next year's holiday schedule. They
are logged when they appear, listed by :meth:`ReadinessMonitor.details`, and sent
as JSON in the ``salesops-health-details-bin`` trailer of every Health/Check answer
when the server uses :class:`DetailedHealthServicer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2

from kit.calendar import CalendarConfigError, calendar_from_env, coverage_warning

log = logging.getLogger("salesops.health")

Check = Callable[[], Awaitable[object]]
Advisory = Callable[[], str | None]  # a warning text, or None when all is well
DETAILS_TRAILER = "salesops-health-details-bin"
# The Health/Check service name of liveness (deploy/k8s probes ask it); "" and the API's service names
# are readiness.
LIVENESS = "salesops.Liveness"


def business_calendar_advisory() -> str | None:
    """The deployment calendar's coverage warning for today in its zone (see kit.calendar.coverage)."""
    try:
        calendar = calendar_from_env()
    except CalendarConfigError as exc:
        return f"business calendar configuration is invalid: {exc}"
    return coverage_warning(datetime.now(calendar.zone).date(), calendar)


DEFAULT_ADVISORIES: Mapping[str, Advisory] = {"business-calendar": business_calendar_advisory}


class DetailedHealthServicer(health.aio.HealthServicer):  # type: ignore[misc,name-defined]  # untyped base
    """grpc.health.v1 Health whose Check answers carry the monitor's details in a binary trailer."""

    details: Callable[[], Mapping[str, Any]] | None = None
    alive: Callable[[], bool] | None = None  # liveness beyond answering at all (the readiness monitor's)

    async def Check(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        if request.service == LIVENESS:  # never the dependencies: answered here, never NOT_FOUND
            up = self.alive is None or self.alive()
            return health_pb2.HealthCheckResponse(
                status=health_pb2.HealthCheckResponse.SERVING
                if up
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
        answer = await super().Check(request, context)
        if self.details is not None:
            payload = json.dumps(self.details(), ensure_ascii=False, sort_keys=True).encode()
            context.set_trailing_metadata(((DETAILS_TRAILER, payload),))
        return answer


class ReadinessMonitor:
    def __init__(
        self,
        servicer: Any,  # grpc_health.v1.health.aio.HealthServicer (untyped)
        service_names: Iterable[str],
        checks: Mapping[str, Check],
        *,
        interval: float = 2.0,
        timeout: float = 2.0,
        advisories: Mapping[str, Advisory] | None = None,
        advisory_interval: float = 300.0,
        slow_rounds: int = 3,
    ) -> None:
        self.servicer = servicer
        # A dependency that was up and then answers nothing within `timeout` is failing only
        # after this many such rounds in a row: one slow answer under load (a busy pool, a
        # starved loop) is not an outage, and flipping readiness for it sheds a working replica.
        # A refusal or an error counts at once.
        self.slow_rounds = slow_rounds
        self._slow: dict[str, int] = {}
        self._up: set[str] = set()
        self.service_names = ["", *service_names]
        self.checks = checks
        self.interval = interval
        self.timeout = timeout
        self.advisories = DEFAULT_ADVISORIES if advisories is None else advisories
        self.advisory_interval = advisory_interval
        self.failing: dict[str, str] = {}
        self.warnings: dict[str, str] = {}
        self._advised_at: float | None = None
        if isinstance(servicer, DetailedHealthServicer):
            servicer.details = self.details
            servicer.alive = self.alive
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # Liveness: a round (every check bounded by `timeout`) ends at least this often, else we are wedged.
        self.stall_after = max(60.0, 10 * (interval + timeout))
        self._round_at = time.monotonic()

    async def _check_one(self, name: str, check: Check) -> tuple[str, bool] | None:
        """None when it answered; else the reason, and whether it was only slow (no answer in time)."""
        try:
            async with asyncio.timeout(self.timeout):
                await check()
        except TimeoutError as exc:
            return f"TimeoutError: no answer within {self.timeout:g} s {exc}".strip()[:300], True
        except Exception as exc:  # any failure means "not ready", with the reason logged
            return f"{type(exc).__name__}: {exc}"[:300], False
        return None

    async def check_now(self) -> bool:
        names = list(self.checks)
        results = await asyncio.gather(*(self._check_one(n, self.checks[n]) for n in names))
        failing: dict[str, str] = {}
        for name, result in zip(names, results, strict=True):
            if result is None:
                self._up.add(name)
                self._slow.pop(name, None)
                continue
            reason, slow = result
            if slow and name in self._up and name not in self.failing:
                self._slow[name] = self._slow.get(name, 0) + 1
                if self._slow[name] < self.slow_rounds:
                    log.info(
                        "dependency %s answered slowly (%d in a row): %s", name, self._slow[name], reason
                    )
                    continue
            self._up.discard(name)
            self._slow.pop(name, None)
            failing[name] = reason
        for name in set(failing) - set(self.failing):
            log.warning("dependency %s is down: %s", name, failing[name])
        for name in set(self.failing) - set(failing):
            log.info("dependency %s is back", name)
        self.failing = failing
        self.check_advisories()
        await self._publish(not failing and not self._stopping)
        self._round_at = time.monotonic()
        return not failing

    def alive(self) -> bool:
        """Liveness: rounds still complete (or we are draining). A dependency being down is readiness."""
        if self._stopping or self._task is None:
            return True
        return not self._task.done() and time.monotonic() - self._round_at <= self.stall_after

    def check_advisories(self, *, force: bool = False) -> dict[str, str]:
        """Re-evaluate the advisories (at most every `advisory_interval`); log the ones that appear."""
        now = time.monotonic()
        if not force and self._advised_at is not None and now - self._advised_at < self.advisory_interval:
            return self.warnings
        self._advised_at = now
        warnings: dict[str, str] = {}
        for name, advisory in self.advisories.items():
            try:
                text = advisory()
            except Exception as exc:  # a broken advisory is itself worth a warning
                text = f"advisory failed: {type(exc).__name__}: {exc}"[:300]
            if text:
                warnings[name] = text
        for name, text in warnings.items():
            if self.warnings.get(name) != text:
                log.warning("health advisory %s: %s", name, text)
        for name in set(self.warnings) - set(warnings):
            log.info("health advisory %s cleared", name)
        self.warnings = warnings
        return warnings

    def details(self) -> dict[str, Any]:
        """Readiness with its reasons: failing dependencies and advisories (shown, never blocking)."""
        return {
            "serving": not self.failing and not self._stopping,
            "failing": dict(self.failing),
            "warnings": dict(self.warnings),
        }

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
        self._round_at = time.monotonic()
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
