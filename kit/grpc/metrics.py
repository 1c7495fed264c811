"""Per-method RPC metrics for the server pipeline: labelled children made once per method, at its first call.

The pipeline wraps each method once (kit.grpc.interceptors) and keeps its children, so the label lookups happen
once; a call costs two counter increments and one histogram observation.
"""

from __future__ import annotations

import time
from typing import Any

import grpc

from kit.metrics import RPC_HANDLED, RPC_SECONDS, RPC_STARTED


class MethodMetrics:
    __slots__ = ("_handled", "_labels", "_seconds", "_started")

    def __init__(self, method: str, kind: str) -> None:
        service, _, name = method.strip("/").rpartition("/")
        self._labels = (service, name, kind)
        # Children are made at the first call: a server wraps every method at startup, and a
        # series (a histogram's dozen) per method never called would only bloat each scrape.
        self._started: Any = None
        self._seconds: Any = None
        self._handled: dict[str, Any] = {}

    def start(self) -> float:
        if self._started is None:
            self._started = RPC_STARTED.labels(*self._labels)
            # A stream's lifetime is not a latency: only unary calls are timed.
            if self._labels[2] == "unary":
                self._seconds = RPC_SECONDS.labels(*self._labels)
        self._started.inc()
        return time.perf_counter()

    def done(self, ctx: Any, started: float | None, cancelled: bool) -> None:
        if cancelled:
            code = "CANCELLED"
        else:
            found = ctx.code()  # set by abort(); None when the handler returned normally
            code = found.name if isinstance(found, grpc.StatusCode) else "OK" if found is None else str(found)
        counter = self._handled.get(code)
        if counter is None:
            counter = self._handled[code] = RPC_HANDLED.labels(*self._labels, code)
        counter.inc()
        if self._seconds is not None and started is not None:
            self._seconds.observe(time.perf_counter() - started)
