"""Gateway request metrics: every answer counted and timed by route template and status.

The route label is the matched template (``/v1/leads/{lead_id}``), which the proxy puts in
the ASGI scope under :data:`ROUTE_KEY`; fixed paths (``/healthz``, ``/openapi.json``...) are
their own label and anything else is ``unmatched``, so a scanner probing random paths cannot
grow the series. The duration is the time until the response starts (for an event stream,
until it is open).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import Scope

from kit.metrics import GATEWAY_IN_FLIGHT, GATEWAY_REQUESTS, GATEWAY_SECONDS

ROUTE_KEY = "salesops.route"
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class GatewayMetrics:
    """What the request middleware (gateway.app.RequestIdMiddleware) records of each request: one
    ASGI layer for the request id, the access log and these, so each answer passes one wrapper."""

    def __init__(self, fixed_paths: frozenset[str]) -> None:
        self.fixed = fixed_paths
        # Each label set's child, as `labels()` returns it (that call takes a lock and builds a key
        # every time); the label sets are bounded by methods x routes x statuses (see above).
        self._seconds: dict[tuple[str, str], Any] = {}
        self._requests: dict[tuple[str, str, str], Any] = {}

    @staticmethod
    def begin() -> None:
        GATEWAY_IN_FLIGHT.inc()

    def answered(self, scope: Scope, started: float) -> None:
        """The response starts (or the request ended without one): its duration."""
        key = (self._method(scope), self._route(scope))
        child = self._seconds.get(key)
        if child is None:
            child = self._seconds[key] = GATEWAY_SECONDS.labels(*key)
        child.observe(time.perf_counter() - started)

    def end(self, scope: Scope, status: int) -> None:
        GATEWAY_IN_FLIGHT.dec()
        key = (self._method(scope), self._route(scope), str(status))
        child = self._requests.get(key)
        if child is None:
            child = self._requests[key] = GATEWAY_REQUESTS.labels(*key)
        child.inc()

    def _route(self, scope: Scope) -> str:
        route = scope.get(ROUTE_KEY)
        if route:
            return str(route)
        path = scope.get("path", "")
        if path in self.fixed:
            return str(path)
        return "/docs/static" if path.startswith("/docs/static/") else UNMATCHED

    @staticmethod
    def _method(scope: Scope) -> str:
        method = str(scope.get("method", ""))
        return method if method in METHODS else "OTHER"


__all__ = ["ROUTE_KEY", "GatewayMetrics"]
